package thumbprint

import (
	"context"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"strings"
)

// probeHost makes the configured number of handshakes with hostport and keeps
// the distinct chains in the order seen.
func (p *Prober) probeHost(ctx context.Context, hostport string) (HostResult, error) {
	hr := HostResult{Host: hostport, ServerName: serverName(hostport)}
	seen := make(map[string]bool)
	for range p.handshakes {
		certs, err := p.handshake(ctx, hostport)
		if err != nil {
			return HostResult{}, err
		}
		hr.Handshakes++
		c := p.chain(certs, hostOnly(hostport))
		key := chainKey(c)
		if seen[key] {
			continue
		}
		seen[key] = true
		hr.Chains = append(hr.Chains, c)
	}
	return hr, nil
}

// handshake makes one TLS handshake and returns the certificates as served.
func (p *Prober) handshake(ctx context.Context, hostport string) ([]*x509.Certificate, error) {
	tc, err := p.dialTLS(ctx, hostport)
	if err != nil {
		return nil, err
	}
	certs := tc.ConnectionState().PeerCertificates
	tc.Close()
	return certs, nil
}

// chain summarises certs as served, takes the thumbprint of the last one and
// verifies the chain for host.
func (p *Prober) chain(certs []*x509.Certificate, host string) Chain {
	c := Chain{Certificates: make([]Certificate, len(certs))}
	for i, cert := range certs {
		c.Certificates[i] = Certificate{
			Subject:  cert.Subject.String(),
			Issuer:   cert.Issuer.String(),
			NotAfter: cert.NotAfter.UTC(),
			SHA1:     sha1Hex(cert.Raw),
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
