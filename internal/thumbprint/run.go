package thumbprint

import (
	"context"
	"strings"
)

// Run probes many providers and fetches each discovery URL, and handshakes
// with each host:port, once, however many providers share them. It is safe
// for concurrent use; a caller asking for work in flight waits for it.
type Run struct {
	p     *Prober
	docs  group[fetched]
	hosts group[HostResult]
}

// NewRun returns a Run: a cache that lives as long as one check of all providers.
func (p *Prober) NewRun() *Run {
	return &Run{p: p}
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
		return r.p.fetchDiscovery(ctx, t.discoveryURL)
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
	seen := make(map[string]bool)
	for _, host := range hosts {
		hr, err := r.hosts.do(ctx, host, func() (HostResult, error) {
			return r.p.probeHost(ctx, host)
		})
		if err != nil {
			return nil, newError(ctx, StepHandshake, "https://"+host, err)
		}
		hr = hr.clone()
		res.Hosts = append(res.Hosts, hr)
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
	return res, nil
}
