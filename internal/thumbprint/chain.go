package thumbprint

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// served is one handshake's chain as the server sent it, and the version
// negotiated.
type served struct {
	certs   []*x509.Certificate
	version uint16
}

// probeHost samples the chains hostport serves with Options.Handshakes
// handshakes in all and learns whether it accepts TLS 1.2, with one
// handshake for both: the first sampling handshake is capped at TLS 1.2, so
// it records a chain and proves the host accepts 1.2 (a server may send TLS
// 1.2 clients another chain, and STS may be one). The others, when more are
// asked for, are not capped and run beside it. Only a host that refuses TLS
// 1.2 (it requires TLS 1.3) takes one more handshake, not capped, in place of
// the refused one.
//
// seed, when not nil, waits for the discovery request's handshake with this
// very host (nil when there was none): it is the first sample, so one fewer
// handshake is made, unless the discovery failed, and then one more is made
// after all. The TLS 1.2 check is always made (the discovery negotiates the
// highest version), so with one handshake asked for and a seed, the host sees
// two and both chains count. The handshakes start at once, beside the
// discovery request. Distinct chains are kept in the order of the
// handshakes: the discovery's, the TLS 1.2 check's, the others.
func (r *Run) probeHost(ctx context.Context, hostport string, seed func() *served) (HostResult, error) {
	p := r.p
	hr := HostResult{Host: hostport, ServerName: serverName(hostport)}
	var got []served
	own := p.handshakes
	if seed != nil {
		own--
	}
	own = max(own, 1)
	// The first handshake, capped at TLS 1.2, is the check.
	results, errs := r.handshakes(ctx, hostport, own, tls.VersionTLS12, func() {
		if seed != nil {
			if s := seed(); s != nil {
				got = append(got, *s)
			}
		}
	})
	switch err := errs[0]; {
	case err == nil:
		got = append(got, results[0])
	case hasKind(err, KindTLS):
		// The host answered and refused a TLS 1.2 session: it requires TLS 1.3.
		hr.TLS12Error = err.Error()
	default:
		return HostResult{}, fmt.Errorf("TLS 1.2 check: %w", err)
	}
	for i := 1; i < own; i++ {
		if errs[i] != nil {
			return HostResult{}, errs[i]
		}
		got = append(got, results[i])
	}
	// A refused check or a failed discovery left fewer samples than asked.
	if missing := p.handshakes - len(got); missing > 0 {
		results, errs := r.handshakes(ctx, hostport, missing, 0, nil)
		for i := range missing {
			if errs[i] != nil {
				return HostResult{}, errs[i]
			}
			got = append(got, results[i])
		}
	}
	hr.Handshakes = len(got)
	seen := make(map[string]bool)
	for _, s := range got {
		if s.version == tls.VersionTLS12 {
			hr.AcceptsTLS12 = true
		}
		c := p.chain(s.certs, hostOnly(hostport))
		key := chainKey(c)
		if seen[key] {
			continue
		}
		seen[key] = true
		hr.Chains = append(hr.Chains, c)
	}
	if hr.AcceptsTLS12 {
		hr.TLS12Error = ""
	}
	return hr, nil
}

// handshakes makes n handshakes with hostport at once, the first capped at
// firstMax (0: any version), the others at the highest version, and returns
// their chains and errors in that order. meanwhile, when not nil, runs while
// they are in flight.
func (r *Run) handshakes(ctx context.Context, hostport string, n int, firstMax uint16, meanwhile func()) ([]served, []error) {
	results := make([]served, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		var maxVersion uint16 // the highest crypto/tls supports
		if i == 0 {
			maxVersion = firstMax
		}
		wg.Go(func() { results[i], errs[i] = r.handshake(ctx, hostport, maxVersion) })
	}
	if meanwhile != nil {
		meanwhile()
	}
	wg.Wait()
	return results, errs
}

// handshake makes one TLS handshake (at most maxVersion; 0: any) and returns
// the certificates as served. It hangs up as soon as it has them: in TLS 1.2
// that is before the client's key exchange, which saves the handshake's
// second round trip (the server sees an alert instead of Finished). A TLS 1.3
// handshake is already complete when the chain has been read and verified,
// so it is finished and closed normally.
func (r *Run) handshake(ctx context.Context, hostport string, maxVersion uint16) (_ served, err error) {
	g, err := r.sched.acquire(ctx, hostport)
	if err != nil {
		return served{}, err
	}
	defer g.release()
	caller := ctx
	ctx, cancel := r.p.bounded(ctx)
	defer cancel()
	defer func() { err = overTime(caller, ctx, err) }()
	var got served
	cfg := probeConfig(hostport, maxVersion)
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		got = served{certs: cs.PeerCertificates, version: cs.Version}
		if cs.Version <= tls.VersionTLS12 {
			return errChainRead
		}
		return nil
	}
	tc, err := r.p.dialTLS(ctx, hostport, cfg)
	switch {
	case errors.Is(err, errChainRead):
	case err != nil:
		return served{}, err
	default:
		tc.Close()
	}
	if len(got.certs) == 0 {
		return served{}, errorf(KindTLS, "%s served no certificate", hostport)
	}
	return got, nil
}

// chain summarises certs as served, takes the thumbprint of the last one and
// verifies the chain for host.
func (p *Prober) chain(certs []*x509.Certificate, host string) Chain {
	c := Chain{Certificates: make([]Certificate, len(certs))}
	for i, cert := range certs {
		c.Certificates[i] = Certificate{
			Subject:    cert.Subject.String(),
			CommonName: cert.Subject.CommonName,
			Issuer:     cert.Issuer.String(),
			NotAfter:   cert.NotAfter.UTC(),
			SHA1:       sha1Hex(cert.Raw),
		}
	}
	c.Thumbprint = c.Certificates[len(certs)-1].SHA1
	if err := p.verify(certs, host); err != nil {
		c.VerifyError = err.Error()
	} else {
		c.Verified = true
	}
	return c
}

// verify checks a served chain (leaf first, the rest as intermediates) for
// host at Options.Now against Options.RootCAs or the system pool.
func (p *Prober) verify(certs []*x509.Certificate, host string) error {
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		DNSName:       host,
		Intermediates: inter,
		Roots:         p.opts.RootCAs,
		CurrentTime:   p.now(),
	})
	return err
}

// chainKey identifies a chain by the sequence of its certificates' hashes.
func chainKey(c Chain) string {
	var b strings.Builder
	for _, cert := range c.Certificates {
		b.WriteString(cert.SHA1)
		b.WriteByte(',')
	}
	return b.String()
}

func sha1Hex(der []byte) string {
	sum := sha1.Sum(der)
	return hex.EncodeToString(sum[:])
}

// clone returns a deep copy, so that results handed out share no slices.
func (h HostResult) clone() HostResult {
	h.Chains = append([]Chain(nil), h.Chains...)
	for i := range h.Chains {
		h.Chains[i].Certificates = append([]Certificate(nil), h.Chains[i].Certificates...)
	}
	return h
}
