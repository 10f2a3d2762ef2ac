package drift

import (
	"strings"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/thumbprint"
)

// TestExpiringSoonOnlyLiveThumbprints: only a certificate whose thumbprint
// is live (the last certificate of a served chain) makes a provider
// expiring; a leaf or a lower intermediate renewed under the same CA keeps
// the thumbprint and is never a reason, however soon it expires. The detail
// names the certificate, its thumbprint, host and position.
func TestExpiringSoonOnlyLiveThumbprints(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	const day = 24 * time.Hour
	cert := func(cn, sha string, in time.Duration) thumbprint.Certificate {
		return thumbprint.Certificate{Subject: "CN=" + cn, CommonName: cn, NotAfter: now.Add(in), SHA1: sha}
	}
	chain := func(certs ...thumbprint.Certificate) thumbprint.Chain {
		return thumbprint.Chain{Certificates: certs, Thumbprint: certs[len(certs)-1].SHA1}
	}
	host := func(h string, chains ...thumbprint.Chain) thumbprint.HostResult {
		return thumbprint.HostResult{Host: h, Chains: chains}
	}
	tests := []struct {
		name  string
		hosts []thumbprint.HostResult
		want  []string // detail parts; none: not expiring
	}{
		{name: "one-day ACME leaf under a long-lived CA",
			hosts: []thumbprint.HostResult{host("idp.example:443", chain(cert("idp.example", t1, day), cert("Corp CA", t2, 3650*day)))}},
		{name: "90-day leaf and a lower intermediate expiring, root long-lived",
			hosts: []thumbprint.HostResult{host("idp.example:443", chain(cert("idp.example", t1, 2*day), cert("Issuing CA", t3, 5*day), cert("Corp Root", t2, 3650*day)))}},
		{name: "the last certificate expires",
			hosts: []thumbprint.HostResult{host("idp.example:443", chain(cert("idp.example", t1, 200*day), cert("Corp CA", t2, 10*day)))},
			want:  []string{`"Corp CA"`, t2, "idp.example", "2 of 2", "2026-12-17T00:00:00Z", "in 10d0h"}},
		{name: "self-signed: the leaf is the last certificate",
			hosts: []thumbprint.HostResult{host("idp.example:8443", chain(cert("idp.example", t1, 3*day)))},
			want:  []string{`"idp.example"`, t1, "idp.example:8443", "1 of 1"}},
		{name: "last certificate outside the horizon",
			hosts: []thumbprint.HostResult{host("idp.example:443", chain(cert("idp.example", t1, day), cert("Corp CA", t2, 31*day)))}},
		{name: "the first to expire of two alternating chains, counted",
			hosts: []thumbprint.HostResult{host("idp.example:443",
				chain(cert("idp.example", t1, day), cert("Old Root", t4, 20*day)),
				chain(cert("idp.example", t1, day), cert("Cross Root", t5, 12*day)))},
			want: []string{`"Cross Root"`, t5, "(2 certificates with a live thumbprint expire within 720h0m0s)"}},
		{name: "the issuer host's chain counts too",
			hosts: []thumbprint.HostResult{
				host("jwks.example:443", chain(cert("jwks.example", t1, day), cert("Public CA", t2, 3650*day))),
				host("issuer.example:443", chain(cert("issuer.example", t3, day), cert("Issuer CA", t6, 7*day)))},
			want: []string{`"Issuer CA"`, t6, "issuer.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			detail, ok := ExpiringSoon(&thumbprint.Result{Hosts: tt.hosts}, now, 30*day)
			if ok != (len(tt.want) > 0) {
				t.Fatalf("expiring %v (%q), want %v", ok, detail, len(tt.want) > 0)
			}
			for _, w := range tt.want {
				if !strings.Contains(detail, w) {
					t.Errorf("detail %q does not name %q", detail, w)
				}
			}
			if strings.Contains(detail, "leaf") {
				t.Errorf("detail %q speaks of a leaf", detail)
			}
		})
	}
}
