package thumbprint_test

import (
	"crypto/tls"
	"crypto/x509"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/thumbprint"
)

// TestProbeChains: the thumbprint is the SHA-1 of the last certificate served,
// whatever the chain, and trust is decided separately.
func TestProbeChains(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	const ip = "127.0.0.1"
	good := leaf(t, k.int1, ip)
	deep := leaf(t, k.int2, ip)
	expired, err := k.int1.Leaf([]string{ip}, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	self, err := testidp.SelfSigned([]string{ip}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	intercepted := leaf(t, k.proxyInt, ip)
	wrongName := leaf(t, k.int1, "127.0.0.9")

	tests := []struct {
		name      string
		chain     tls.Certificate
		want      []byte // DER whose SHA-1 is the thumbprint
		verified  bool
		verifyErr string
	}{
		{"leaf and intermediate", testidp.Chain(good, k.int1), k.int1.DER, true, ""},
		{"root sent too", testidp.Chain(good, k.int1, k.root), k.root.DER, true, ""},
		{"two intermediates without root", testidp.Chain(deep, k.int2, k.int1), k.int1.DER, true, ""},
		{"self-signed leaf", testidp.Chain(self), self.DER, false, "unknown authority"},
		{"expired leaf", testidp.Chain(expired, k.int1), k.int1.DER, false, "expired"},
		{"unknown proxy CA", testidp.Chain(intercepted, k.proxyInt), k.proxyInt.DER, false, "unknown authority"},
		{"name mismatch", testidp.Chain(wrongName, k.int1), k.int1.DER, false, "valid for 127.0.0.9, not 127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, testidp.ServerOptions{Chains: []tls.Certificate{tt.chain}})
			p := thumbprint.New(thumbprint.Options{RootCAs: k.root.Pool(), Proxy: direct, Timeout: 10 * time.Second})
			res, err := p.Probe(t.Context(), srv.URL())
			if err != nil {
				t.Fatal(err)
			}
			want := sha1Hex(tt.want)
			if got := res.Thumbprints; !slices.Equal(got, []string{want}) {
				t.Errorf("Thumbprints = %v, want [%s]", got, want)
			}
			if got := opensslThumbprint(t, srv.Host(), ""); got != want {
				t.Errorf("openssl procedure gives %s, want %s", got, want)
			}
			if len(res.Hosts) != 1 || len(res.Hosts[0].Chains) != 1 {
				t.Fatalf("Hosts = %+v, want one host with one chain", res.Hosts)
			}
			h := res.Hosts[0]
			if h.Host != srv.Host() || h.ServerName != "" || h.Handshakes != 2 {
				t.Errorf("host %q server name %q handshakes %d, want %q, no SNI for an IP, 2", h.Host, h.ServerName, h.Handshakes, srv.Host())
			}
			c := h.Chains[0]
			var served []string
			for _, der := range tt.chain.Certificate {
				served = append(served, sha1Hex(der))
			}
			var got []string
			for _, cert := range c.Certificates {
				got = append(got, cert.SHA1)
			}
			if !slices.Equal(got, served) {
				t.Errorf("chain hashes %v, want as served %v", got, served)
			}
			last, _ := x509.ParseCertificate(tt.want)
			if lc := c.Certificates[len(c.Certificates)-1]; lc.Subject != last.Subject.String() || !lc.NotAfter.Equal(last.NotAfter) {
				t.Errorf("last certificate %+v, want subject %q not after %v", lc, last.Subject, last.NotAfter)
			}
			if c.Thumbprint != want {
				t.Errorf("chain thumbprint %s, want %s", c.Thumbprint, want)
			}
			if c.Verified != tt.verified || res.PubliclyTrusted != tt.verified {
				t.Errorf("verified %v, publicly trusted %v, want %v (%s)", c.Verified, res.PubliclyTrusted, tt.verified, c.VerifyError)
			}
			if !strings.Contains(c.VerifyError, tt.verifyErr) || (tt.verifyErr == "") != (c.VerifyError == "") {
				t.Errorf("verify error %q, want one containing %q", c.VerifyError, tt.verifyErr)
			}
			if res.DiscoveryVerified != tt.verified {
				t.Errorf("discovery verified %v (%s), want %v", res.DiscoveryVerified, res.DiscoveryVerifyError, tt.verified)
			}
		})
	}
}

// TestProbeVerifiesAtNow: Options.Now is the time chains are verified at.
func TestProbeVerifiesAtNow(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	l := leaf(t, k.int1, "127.0.0.1")
	srv := startServer(t, testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(l, k.int1)}})
	tests := []struct {
		name     string
		now      time.Time
		verified bool
	}{
		{"within validity", time.Now(), true},
		{"after the leaf expires", l.Cert.NotAfter.Add(time.Hour), false},
		{"before the leaf is valid", l.Cert.NotBefore.Add(-time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := thumbprint.New(thumbprint.Options{RootCAs: k.root.Pool(), Proxy: direct, Now: func() time.Time { return tt.now }})
			res, err := p.Probe(t.Context(), srv.URL())
			if err != nil {
				t.Fatal(err)
			}
			if res.PubliclyTrusted != tt.verified {
				t.Errorf("publicly trusted %v (%s), want %v", res.PubliclyTrusted, res.Hosts[0].Chains[0].VerifyError, tt.verified)
			}
			if want := sha1Hex(k.int1.DER); !slices.Equal(res.Thumbprints, []string{want}) {
				t.Errorf("Thumbprints = %v, want [%s] whatever the trust", res.Thumbprints, want)
			}
		})
	}
}

// TestProbeURLForms: the Url as IAM stores it, with an EKS-like path, pasted
// with or without https:// or a trailing slash; discovery is under the path.
func TestProbeURLForms(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	srv := startServer(t, testidp.ServerOptions{
		Chains: []tls.Certificate{testidp.Chain(leaf(t, k.int1, "127.0.0.1"), k.int1)},
		Path:   "/id/ABC",
	})
	host := srv.Host()
	tests := []struct {
		name, in, wantURL string
	}{
		{"as IAM stores it", host + "/id/ABC", host + "/id/ABC"},
		{"with https://", "https://" + host + "/id/ABC", host + "/id/ABC"},
		{"upper-case scheme", "HTTPS://" + host + "/id/ABC", host + "/id/ABC"},
		{"trailing slash", host + "/id/ABC/", host + "/id/ABC/"},
		{"surrounding space", "  " + host + "/id/ABC\n", host + "/id/ABC"},
	}
	p := thumbprint.New(thumbprint.Options{RootCAs: k.root.Pool(), Proxy: direct})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := p.Probe(t.Context(), tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if res.URL != tt.wantURL || res.Issuer != "https://"+tt.wantURL {
				t.Errorf("URL %q issuer %q, want %q", res.URL, res.Issuer, tt.wantURL)
			}
			if want := "https://" + host + "/id/ABC/keys"; res.JWKSURI != want {
				t.Errorf("JWKSURI %q, want %q", res.JWKSURI, want)
			}
			if want := sha1Hex(k.int1.DER); !slices.Equal(res.Thumbprints, []string{want}) {
				t.Errorf("Thumbprints = %v, want [%s]", res.Thumbprints, want)
			}
		})
	}
	// Without the path the server has no discovery document.
	_, err := p.Probe(t.Context(), host)
	if pe := asError(t, err); pe.Kind != thumbprint.KindHTTPStatus {
		t.Errorf("probe without the path: %v, want kind %q", err, thumbprint.KindHTTPStatus)
	}
}

// TestProbeJWKSOnOtherHost: a jwks_uri on another host and port, with another
// chain: both hosts are probed, the jwks_uri host first.
func TestProbeJWKSOnOtherHost(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	jwks := startServer(t, testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf(t, k.int2, "127.0.0.1"), k.int2, k.int1)}})
	issuer := startServer(t, testidp.ServerOptions{
		Chains:  []tls.Certificate{testidp.Chain(leaf(t, k.proxyInt, "127.0.0.1"), k.proxyInt)},
		JWKSURI: "https://" + jwks.Host() + "/keys",
	})
	p := thumbprint.New(thumbprint.Options{RootCAs: k.root.Pool(), Proxy: direct})
	res, err := p.Probe(t.Context(), issuer.URL())
	if err != nil {
		t.Fatal(err)
	}
	wantJWKS, wantIssuer := sha1Hex(k.int1.DER), sha1Hex(k.proxyInt.DER)
	if want := []string{wantJWKS, wantIssuer}; !slices.Equal(res.Thumbprints, want) {
		t.Errorf("Thumbprints = %v, want %v (jwks_uri host first)", res.Thumbprints, want)
	}
	if len(res.Hosts) != 2 || res.Hosts[0].Host != jwks.Host() || res.Hosts[1].Host != issuer.Host() {
		t.Fatalf("Hosts = %+v, want jwks host %s then issuer host %s", res.Hosts, jwks.Host(), issuer.Host())
	}
	if !res.Hosts[0].Chains[0].Verified || res.Hosts[1].Chains[0].Verified || res.PubliclyTrusted {
		t.Errorf("verified jwks %v issuer %v, publicly trusted %v: want true, false, false",
			res.Hosts[0].Chains[0].Verified, res.Hosts[1].Chains[0].Verified, res.PubliclyTrusted)
	}
	if got := opensslThumbprint(t, jwks.Host(), ""); got != wantJWKS {
		t.Errorf("openssl on the jwks host: %s, want %s", got, wantJWKS)
	}
	if got := opensslThumbprint(t, issuer.Host(), ""); got != wantIssuer {
		t.Errorf("openssl on the issuer host: %s, want %s", got, wantIssuer)
	}
}

// TestProbeHostNames: names mapped to loopback listeners by DialContext, the
// default port 443, another port, and SNI = the name.
func TestProbeHostNames(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	const name = "idp.example.test"
	srv := startServer(t, testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf(t, k.int1, name), k.int1)}})
	dial := mapDial(map[string]string{name + ":443": srv.Host(), name + ":8443": srv.Host()})
	tests := []struct {
		name, url, host string
	}{
		{"default port 443", name, name + ":443"},
		{"port 8443", name + ":8443", name + ":8443"},
		{"upper-case name", "IDP.Example.Test", name + ":443"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := thumbprint.New(thumbprint.Options{RootCAs: k.root.Pool(), Proxy: direct, DialContext: dial})
			res, err := p.Probe(t.Context(), tt.url)
			if err != nil {
				t.Fatal(err)
			}
			want := sha1Hex(k.int1.DER)
			if !slices.Equal(res.Thumbprints, []string{want}) {
				t.Errorf("Thumbprints = %v, want [%s]", res.Thumbprints, want)
			}
			h := res.Hosts[0]
			if h.Host != tt.host || h.ServerName != name {
				t.Errorf("host %q server name %q, want %q and %q", h.Host, h.ServerName, tt.host, name)
			}
			if !res.PubliclyTrusted || !res.DiscoveryVerified {
				t.Errorf("publicly trusted %v (%s), discovery verified %v (%s): the leaf is for %s",
					res.PubliclyTrusted, h.Chains[0].VerifyError, res.DiscoveryVerified, res.DiscoveryVerifyError, name)
			}
			if got := opensslThumbprint(t, srv.Host(), name); got != want {
				t.Errorf("openssl procedure gives %s, want %s", got, want)
			}
		})
	}
}

// TestProbeSNI: a server that picks its chain by SNI; an IP literal sends none.
func TestProbeSNI(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	chainA := testidp.Chain(leaf(t, k.int1, "a.example.test"), k.int1)
	chainB := testidp.Chain(leaf(t, k.int2, "b.example.test"), k.int2)
	chainIP := testidp.Chain(leaf(t, k.proxyInt, "127.0.0.1"), k.proxyInt)
	srv := startServer(t, testidp.ServerOptions{
		Chains: []tls.Certificate{chainIP},
		ChainsBySNI: map[string][]tls.Certificate{
			"a.example.test": {chainA},
			"b.example.test": {chainB},
			"127.0.0.1":      {chainA}, // served only if a client sent an IP as SNI
		},
	})
	dial := mapDial(map[string]string{"a.example.test:443": srv.Host(), "b.example.test:443": srv.Host()})
	tests := []struct {
		url, sni string
		want     []byte
	}{
		{"a.example.test", "a.example.test", k.int1.DER},
		{"b.example.test", "b.example.test", k.int2.DER},
		{srv.Host(), "", k.proxyInt.DER},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			p := thumbprint.New(thumbprint.Options{Proxy: direct, DialContext: dial})
			res, err := p.Probe(t.Context(), tt.url)
			if err != nil {
				t.Fatal(err)
			}
			want := sha1Hex(tt.want)
			if !slices.Equal(res.Thumbprints, []string{want}) {
				t.Errorf("Thumbprints = %v, want [%s]", res.Thumbprints, want)
			}
			if res.Hosts[0].ServerName != tt.sni {
				t.Errorf("server name %q, want %q", res.Hosts[0].ServerName, tt.sni)
			}
			if got := opensslThumbprint(t, srv.Host(), tt.sni); got != want {
				t.Errorf("openssl procedure gives %s, want %s", got, want)
			}
		})
	}
}

// TestProbeAlternatingChains: a server alternating two cross-signed chains
// across handshakes yields both thumbprints with 2 handshakes, and even with
// 1, since the TLS 1.2 check's handshake records the chain it is sent too:
// with 1 or 2 handshakes asked for, the host sees the same two (the
// discovery's and the check's), and both count.
func TestProbeAlternatingChains(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	cross, err := k.proxyRoot.CrossSign(k.int1)
	if err != nil {
		t.Fatal(err)
	}
	l := leaf(t, k.int1, "127.0.0.1")
	chains := []tls.Certificate{testidp.Chain(l, k.int1), testidp.Chain(l, cross)}
	want := []string{sha1Hex(k.int1.DER), sha1Hex(cross.DER)}

	t.Run("openssl sees both", func(t *testing.T) {
		srv := startServer(t, testidp.ServerOptions{Chains: chains})
		got := []string{opensslThumbprint(t, srv.Host(), ""), opensslThumbprint(t, srv.Host(), "")}
		if !slices.Equal(got, want) {
			t.Errorf("openssl procedure twice gives %v, want %v", got, want)
		}
	})
	roots := k.root.Pool()
	roots.AddCert(k.proxyRoot.Cert)
	tests := []struct {
		handshakes int
		counted    int // the server sees as many
		chains     int
	}{
		{1, 2, 2},
		{2, 2, 2},
		{5, 5, 2},
	}
	for _, tt := range tests {
		for name, h2 := range servesH2 {
			t.Run(strings.Repeat("handshake ", tt.handshakes)+name, func(t *testing.T) {
				testAlternation(t, tt.handshakes, tt.counted, tt.chains, h2, chains, roots, want)
			})
		}
	}
}

// testAlternation probes a server alternating between chains, serving h2
// or not, with handshakes handshakes: the server sees counted, the result
// holds chains distinct chains, each verified, their thumbprints among want.
func testAlternation(t *testing.T, handshakes, counted, nchains int, h2 bool, chains []tls.Certificate, roots *x509.CertPool, want []string) {
	srv := startServer(t, testidp.ServerOptions{Chains: chains, HTTP2: h2})
	p := thumbprint.New(thumbprint.Options{Handshakes: handshakes, RootCAs: roots, Proxy: direct})
	res, err := p.Probe(t.Context(), srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	h := res.Hosts[0]
	if h.Handshakes != counted || len(h.Chains) != nchains {
		t.Fatalf("%d handshakes, %d chains; want %d, %d", h.Handshakes, len(h.Chains), counted, nchains)
	}
	// The discovery request's handshake is one of the handshakes; the
	// TLS 1.2 check and the others run at once, so which of them gets
	// which chain varies. Thumbprints follow the order of the chains.
	var seen []string
	for _, c := range h.Chains {
		seen = append(seen, c.Thumbprint)
		if !c.Verified {
			t.Errorf("chain %s: %s", c.Thumbprint, c.VerifyError)
		}
	}
	if !slices.Equal(res.Thumbprints, seen) {
		t.Errorf("Thumbprints = %v, want the order seen %v", res.Thumbprints, seen)
	}
	for _, tp := range res.Thumbprints {
		if !slices.Contains(want, tp) {
			t.Errorf("thumbprint %s is not one of %v", tp, want)
		}
	}
	if got := srv.Handshakes(); got != counted {
		t.Errorf("server saw %d handshakes, want %d (the discovery's and the TLS 1.2 check's among them)", got, counted)
	}
	if !h.AcceptsTLS12 || res.ThumbprintEnforced {
		t.Errorf("accepts TLS 1.2 %v (%s), thumbprint enforced %v; want true, false", h.AcceptsTLS12, h.TLS12Error, res.ThumbprintEnforced)
	}
}
