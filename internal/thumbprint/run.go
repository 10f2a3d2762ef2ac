package thumbprint

import (
	"context"
	"strings"
)

// Run probes many providers and fetches each discovery URL, and handshakes
// with each host:port, once, however many providers share them. Its
// connections are scheduled: at most Options.Concurrency distinct hosts at
// once, at most MaxConnsPerHost connections to one host, each host's
// handshakes in parallel. Discovery requests to one host reuse each other's
// connections: one HTTP/2 connection when the host chooses h2, HTTP/1.1
// ones otherwise (at most MaxIdlePerHost kept idle per host, within the
// same bounds), so Close must be called once the Run is done. It is safe for
// concurrent use; a caller asking for work in flight waits for it.
type Run struct {
	p     *Prober
	sched *scheduler
	// Pointers: every pointer type shares one instantiation of group (the
	// function binary's size).
	docs  group[*fetched]
	hosts group[*HostResult]
	h2    h2State
}

// NewRun returns a Run: a cache that lives as long as one check of all
// providers. The caller closes it when the check is over.
func (p *Prober) NewRun() *Run {
	return &Run{p: p, sched: newScheduler(p.concurrency, MaxConnsPerHost, MaxIdlePerHost)}
}

// Close closes the Run's idle connections; connections finished with later
// (by probes still in flight) are closed at once. The cache stays usable:
// a later Probe opens new connections and does not keep them. No connection
// outlives a check (a Lambda function's process is frozen between
// invocations, and its idle connections with it).
func (r *Run) Close() {
	r.sched.close()
}

// Probe is Prober.Probe with the Run's cache. The Result is the caller's own.
func (r *Run) Probe(ctx context.Context, providerURL string) (*Result, error) {
	t, err := parseProviderURL(providerURL)
	if err != nil {
		return nil, newError(ctx, StepDiscovery, strings.TrimSpace(providerURL), err)
	}
	fetch := func() (*fetched, error) {
		return r.docs.do(ctx, t.discoveryURL, func() (*fetched, error) {
			f, err := r.fetchDiscovery(ctx, t)
			return &f, err
		})
	}
	// The issuer host is probed whatever the document says (as the jwks_uri
	// host or beside it), so its handshakes start now, beside the discovery
	// request, whose own handshake with that host is one of them.
	issuerCtx, stopIssuer := context.WithCancel(ctx)
	defer stopIssuer()
	var issuer *HostResult
	var issuerErr error
	issuerDone := make(chan struct{})
	go func() {
		defer close(issuerDone)
		issuer, issuerErr = r.hosts.do(issuerCtx, t.host, func() (*HostResult, error) {
			return hostResult(r.probeHost(issuerCtx, t.host, func() *served {
				// The leader's own discovery: joined, not fetched again.
				if doc, err := fetch(); err == nil {
					return doc.seed
				}
				return nil
			}))
		})
	}()
	doc, err := fetch()
	if err == nil {
		err = checkIssuer(doc.issuer, t.issuer)
	}
	if err != nil {
		stopIssuer()
		<-issuerDone
		return nil, newError(ctx, StepDiscovery, t.discoveryURL, err)
	}
	res := &Result{
		URL:                  t.url,
		Issuer:               t.issuer,
		JWKSURI:              doc.jwksURI,
		DiscoveryVerified:    doc.verified,
		DiscoveryVerifyError: doc.verifyErr,
		Hosts:                []HostResult{},
		Thumbprints:          []string{},
		PubliclyTrusted:      true,
	}
	hosts := []string{doc.jwksHost}
	hrs := []*HostResult{nil}
	errs := []error{nil}
	if doc.jwksHost != t.host {
		// Another host: the discovery request did not handshake with it.
		hrs[0], errs[0] = r.hosts.do(ctx, doc.jwksHost, func() (*HostResult, error) {
			return hostResult(r.probeHost(ctx, doc.jwksHost, nil))
		})
		hosts, hrs, errs = append(hosts, t.host), append(hrs, nil), append(errs, nil)
	}
	<-issuerDone
	hrs[len(hrs)-1], errs[len(errs)-1] = issuer, issuerErr
	seen := make(map[string]bool)
	for i, host := range hosts {
		if errs[i] != nil {
			e := *newError(ctx, StepHandshake, "https://"+host, errs[i]) // a copy: the cache shares errors
			e.JWKSHost = doc.jwksHost
			return nil, &e
		}
		hr := hrs[i].clone()
		res.Hosts = append(res.Hosts, hr)
		if !hr.AcceptsTLS12 {
			res.ThumbprintEnforced = true
		}
		for _, c := range hr.Chains {
			if !c.Verified {
				res.PubliclyTrusted = false
			}
			if !seen[c.Thumbprint] {
				seen[c.Thumbprint] = true
				res.Thumbprints = append(res.Thumbprints, c.Thumbprint)
			}
		}
	}
	if !res.PubliclyTrusted {
		res.ThumbprintEnforced = true
	}
	return res, nil
}

// hostResult is probeHost's outcome as the Run's cache holds it.
func hostResult(h HostResult, err error) (*HostResult, error) { return &h, err }
