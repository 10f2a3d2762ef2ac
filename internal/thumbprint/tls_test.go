package thumbprint_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
	"github.com/thumbprint-drift/thumbprint-drift/internal/thumbprint"
)

// opensslAccepts asks the openssl oracle whether addr completes a handshake
// with the extra s_client options.
func opensslAccepts(t *testing.T, addr string, extra ...string) bool {
	t.Helper()
	peertest.Tool(t, "openssl")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ok, err := testidp.OpenSSLHandshakes(ctx, addr, "", extra...)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestProbeTLSVersions: whether each host accepts TLS 1.2, and so whether
// AWS enforces the thumbprint (a chain not publicly trusted, or a host that
// requires TLS 1.3). openssl s_client -tls1_2 is the oracle.
func TestProbeTLSVersions(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	public := testidp.Chain(leaf(t, k.int1, "127.0.0.1"), k.int1)
	private := testidp.Chain(leaf(t, k.proxyInt, "127.0.0.1"), k.proxyInt)
	tests := []struct {
		name          string
		chain         tls.Certificate
		minV, maxV    uint16
		acceptsTLS12  bool
		trusted       bool
		enforced      bool
		serverSees    int // handshakes with 2 per host: the discovery's, the TLS 1.2 check's, one more when the check is refused
		tls12ErrorHas string
		oracleAccepts bool
		oracleFailsOn string
	}{
		{name: "TLS 1.2 and 1.3, public", chain: public, acceptsTLS12: true, trusted: true, enforced: false, serverSees: 2, oracleAccepts: true},
		{name: "TLS 1.3 only, public", chain: public, minV: tls.VersionTLS13, acceptsTLS12: false, trusted: true, enforced: true, serverSees: 3,
			tls12ErrorHas: "protocol version", oracleAccepts: false},
		{name: "TLS 1.2 only, public", chain: public, maxV: tls.VersionTLS12, acceptsTLS12: true, trusted: true,
			enforced: false, serverSees: 2, oracleAccepts: true},
		{name: "TLS 1.2 and 1.3, private", chain: private, acceptsTLS12: true, trusted: false, enforced: true, serverSees: 2, oracleAccepts: true},
		{name: "TLS 1.3 only, private", chain: private, minV: tls.VersionTLS13, acceptsTLS12: false, trusted: false, enforced: true, serverSees: 3,
			tls12ErrorHas: "protocol version", oracleAccepts: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, testidp.ServerOptions{Chains: []tls.Certificate{tt.chain}, MinVersion: tt.minV, MaxVersion: tt.maxV})
			res, err := thumbprint.New(thumbprint.Options{RootCAs: k.root.Pool(), Proxy: direct}).Probe(t.Context(), srv.URL())
			if err != nil {
				t.Fatal(err)
			}
			h := res.Hosts[0]
			if h.AcceptsTLS12 != tt.acceptsTLS12 || res.PubliclyTrusted != tt.trusted || res.ThumbprintEnforced != tt.enforced {
				t.Errorf("accepts TLS 1.2 %v, publicly trusted %v, thumbprint enforced %v; want %v, %v, %v",
					h.AcceptsTLS12, res.PubliclyTrusted, res.ThumbprintEnforced, tt.acceptsTLS12, tt.trusted, tt.enforced)
			}
			if !strings.Contains(h.TLS12Error, tt.tls12ErrorHas) || (tt.tls12ErrorHas == "") != (h.TLS12Error == "") {
				t.Errorf("TLS 1.2 error %q, want one containing %q", h.TLS12Error, tt.tls12ErrorHas)
			}
			if h.Handshakes != 2 || srv.Handshakes() != tt.serverSees {
				t.Errorf("%d handshakes counted, server saw %d; want 2 and %d", h.Handshakes, srv.Handshakes(), tt.serverSees)
			}
			want := sha1Hex(tt.chain.Certificate[len(tt.chain.Certificate)-1])
			if !slices.Equal(res.Thumbprints, []string{want}) {
				t.Errorf("Thumbprints = %v, want [%s]", res.Thumbprints, want)
			}
			if got := opensslAccepts(t, srv.Host(), "-tls1_2"); got != tt.oracleAccepts {
				t.Errorf("openssl s_client -tls1_2 handshakes: %v, want %v", got, tt.oracleAccepts)
			}
		})
	}
}

// TestProbeLegacyServers: chains read from TLS 1.2 servers Go refuses by
// default, run by other TLS stacks: RSA key exchange only (Python's ssl),
// key exchange signed only with SHA-1 (openssl s_server); thumbprints equal
// to AWS's openssl procedure.
func TestProbeLegacyServers(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	// openssl 3 refuses SHA-1 signatures at its default security level; the
	// procedure a user runs against such a server needs level 0 too.
	lenient := []string{"-cipher", "DEFAULT:@SECLEVEL=0"}
	tests := []struct {
		name  string
		peer  string
		start func(tls.Certificate) (*testidp.LegacyServer, error)
		// legacy proves the server is what it claims: a modern client fails.
		legacy func(t *testing.T, addr string)
	}{
		{
			name: "RSA key exchange only", peer: "python3", start: testidp.StartRSAKeyExchangeServer,
			legacy: func(t *testing.T, addr string) {
				conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // Go's default suites: no RSA key exchange
				if err == nil {
					conn.Close()
					t.Errorf("a client with Go's default cipher suites connected: the server is not RSA-key-exchange only")
				}
			},
		},
		{
			name: "signs only with SHA-1", peer: "openssl", start: testidp.StartSHA1SigningServer,
			legacy: func(t *testing.T, addr string) {
				if opensslAccepts(t, addr, append([]string{"-sigalgs", "RSA+SHA256:RSA-PSS+SHA256"}, lenient...)...) {
					t.Errorf("a client offering no SHA-1 signature connected: the server does not sign only with SHA-1")
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, err := k.int1.RSALeaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			chain := testidp.Chain(l, k.int1)
			srv, err := tt.start(chain)
			if errors.Is(err, exec.ErrNotFound) {
				peertest.Missing(t, tt.peer)
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Close() })
			tt.legacy(t, srv.Host())

			res, err := thumbprint.New(thumbprint.Options{RootCAs: k.root.Pool(), Proxy: direct, Timeout: 20 * time.Second}).Probe(t.Context(), srv.URL())
			if err != nil {
				t.Fatal(err)
			}
			want := sha1Hex(k.int1.DER)
			if !slices.Equal(res.Thumbprints, []string{want}) {
				t.Errorf("Thumbprints = %v, want [%s]", res.Thumbprints, want)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			oracle, err := testidp.OpenSSLThumbprint(ctx, srv.Host(), "", lenient...)
			if err != nil {
				t.Fatal(err)
			}
			if oracle != want {
				t.Errorf("openssl procedure gives %s, want %s", oracle, want)
			}
			h := res.Hosts[0]
			if !res.PubliclyTrusted || !res.DiscoveryVerified || !h.AcceptsTLS12 || res.ThumbprintEnforced || h.Handshakes != 2 {
				t.Errorf("trusted %v, discovery verified %v (%s), accepts TLS 1.2 %v, enforced %v, handshakes %d; want true, true, true, false, 2",
					res.PubliclyTrusted, res.DiscoveryVerified, res.DiscoveryVerifyError, h.AcceptsTLS12, res.ThumbprintEnforced, h.Handshakes)
			}
		})
	}
}

// TestProbeClientHellos: what the jwks_uri host's handshakes offer, as a TLS
// server records each ClientHello: two handshakes, the first capped at TLS
// 1.2 (the check), the other at TLS 1.3; every cipher suite but none of the
// post-quantum key exchange X25519MLKEM768 (a key share of over 1 KB that
// protects nothing the probe sends), X25519 first.
func TestProbeClientHellos(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	chain := testidp.Chain(leaf(t, k.int1, "127.0.0.1"), k.int1)
	var mu sync.Mutex
	var hellos []*tls.ClientHelloInfo
	cfg := &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		mu.Lock()
		hellos = append(hellos, h)
		mu.Unlock()
		return &tls.Config{Certificates: []tls.Certificate{chain}}, nil
	}}
	jwks := startPeer(t, func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_ = tls.Server(c, cfg).Handshake()
	})
	issuer := startServer(t, testidp.ServerOptions{Chains: []tls.Certificate{chain}, JWKSURI: "https://" + jwks.Host() + "/keys"})
	res, err := thumbprint.New(thumbprint.Options{RootCAs: k.root.Pool(), Proxy: direct}).Probe(t.Context(), issuer.URL())
	if err != nil {
		t.Fatal(err)
	}
	if h := res.Hosts[0]; h.Host != jwks.Host() || h.Handshakes != 2 || !h.AcceptsTLS12 {
		t.Errorf("jwks host %+v, want %s with 2 handshakes, TLS 1.2 accepted", h, jwks.Host())
	}
	mu.Lock()
	defer mu.Unlock()
	var maxVersions []uint16
	for _, h := range hellos {
		maxVersions = append(maxVersions, slices.Max(h.SupportedVersions))
		if slices.Contains(h.SupportedCurves, tls.X25519MLKEM768) || len(h.SupportedCurves) == 0 || h.SupportedCurves[0] != tls.X25519 {
			t.Errorf("ClientHello offers %v, want X25519 first and no X25519MLKEM768", h.SupportedCurves)
		}
		if !slices.Contains(h.CipherSuites, tls.TLS_RSA_WITH_AES_128_CBC_SHA) {
			t.Errorf("ClientHello offers %v, want RSA key exchange among them (legacy servers)", h.CipherSuites)
		}
	}
	slices.Sort(maxVersions)
	if want := []uint16{tls.VersionTLS12, tls.VersionTLS13}; !slices.Equal(maxVersions, want) {
		t.Errorf("ClientHellos up to versions %x, want %x: the TLS 1.2 check and one more", maxVersions, want)
	}
}
