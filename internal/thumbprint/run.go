package thumbprint

import (
	"context"
	"strings"
	"sync"
)

// Run probes many providers and fetches each discovery URL, and handshakes
// with each host:port, once, however many providers share them. Its
// connections are scheduled: at most Options.Concurrency distinct hosts at
// once, at most MaxConnsPerHost connections to one host, each host's
// handshakes in parallel. It is safe for concurrent use; a caller asking for
// work in flight waits for it.
type Run struct {
	p     *Prober
	sched *scheduler
	docs  group[fetched]
	hosts group[HostResult]
}

// NewRun returns a Run: a cache that lives as long as one check of all providers.
func (p *Prober) NewRun() *Run {
	return &Run{p: p, sched: newScheduler(p.concurrency, MaxConnsPerHost)}
}

// Probe is Prober.Probe with the Run's cache. The Result is the caller's own.
func (r *Run) Probe(ctx context.Context, providerURL string) (*Result, error) {
	t, err := parseProviderURL(providerURL)
	if err != nil {
		return nil, newError(ctx, StepDiscovery, strings.TrimSpace(providerURL), err)
	}
	if r.p.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.p.opts.Timeout)
		defer cancel()
	}
	doc, err := r.docs.do(ctx, t.discoveryURL, func() (fetched, error) {
		return r.fetchDiscovery(ctx, t)
	})
	if err != nil {
		return nil, newError(ctx, StepDiscovery, t.discoveryURL, err)
	}
	if err := checkIssuer(doc.issuer, t.issuer); err != nil {
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
	if t.host != doc.jwksHost {
		hosts = append(hosts, t.host)
	}
	// Both hosts at once; the discovery request's handshake is one of the
	// issuer host's, never another host's.
	hrs := make([]HostResult, len(hosts))
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, host := range hosts {
		var seed *served
		if host == t.host {
			seed = doc.seed
		}
		probe := func() {
			hrs[i], errs[i] = r.hosts.do(ctx, host, func() (HostResult, error) {
				return r.probeHost(ctx, host, seed)
			})
		}
		if i == len(hosts)-1 {
			probe()
			continue
		}
		wg.Go(probe)
	}
	wg.Wait()
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
