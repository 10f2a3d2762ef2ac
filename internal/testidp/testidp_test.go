package testidp

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"
)

// mustCA returns a function that fails t when making a CA failed.
func mustCA(t *testing.T) func(*CA, error) *CA {
	return func(ca *CA, err error) *CA {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return ca
	}
}

// served returns the SHA-1s of the chain a plain TLS client receives.
func served(t *testing.T, addr, sni string) []string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var got []string
	for _, c := range conn.ConnectionState().PeerCertificates {
		sum := sha1.Sum(c.Raw)
		got = append(got, hex.EncodeToString(sum[:]))
	}
	return got
}

func hashes(c tls.Certificate) []string {
	var out []string
	for _, der := range c.Certificate {
		out = append(out, Thumbprint(der))
	}
	return out
}

// TestServerServesChainsAsGiven: order kept, chains alternate per handshake,
// SNI picks its own chains, and every ClientHello is counted.
func TestServerServesChainsAsGiven(t *testing.T) {
	root := mustCA(t)(NewRoot("root"))
	inter := mustCA(t)(root.Intermediate("int"))
	leaf, err := inter.Leaf([]string{"127.0.0.1", "a.test"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	reversed := Chain(leaf, root, inter)
	plain := Chain(leaf, inter)
	bySNI := Chain(leaf)
	srv, err := Start(ServerOptions{Chains: []tls.Certificate{reversed, plain}, ChainsBySNI: map[string][]tls.Certificate{"a.test": {bySNI}}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	tests := []struct {
		sni  string
		want tls.Certificate
	}{
		{"", reversed},
		{"", plain},
		{"a.test", bySNI},
		{"", reversed},
	}
	for i, tt := range tests {
		if got := served(t, srv.Host(), tt.sni); !slices.Equal(got, hashes(tt.want)) {
			t.Errorf("handshake %d (SNI %q): served %v, want %v", i, tt.sni, got, hashes(tt.want))
		}
	}
	if got := srv.Handshakes(); got != len(tests) {
		t.Errorf("Handshakes() = %d, want %d", got, len(tests))
	}
	srv.SetChains(bySNI)
	if got := served(t, srv.Host(), ""); !slices.Equal(got, hashes(bySNI)) {
		t.Errorf("after SetChains: served %v, want %v", got, hashes(bySNI))
	}
}

// TestPKI: chains verify as built, a cross-signed intermediate gives the same
// leaf a second path, and PEM is what an SSL_CERT_FILE holds.
func TestPKI(t *testing.T) {
	root := mustCA(t)(NewRoot("root"))
	other := mustCA(t)(NewRoot("other root"))
	inter := mustCA(t)(root.Intermediate("int"))
	cross := mustCA(t)(other.CrossSign(inter))
	leaf, err := inter.Leaf([]string{"idp.test", "127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		roots *x509.CertPool
		via   *CA
		host  string
	}{
		{"through int to root", root.Pool(), inter, "idp.test"},
		{"through the cross-signed int to the other root", other.Pool(), cross, "127.0.0.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			inters := x509.NewCertPool()
			inters.AddCert(tt.via.Cert)
			if _, err := leaf.Cert.Verify(x509.VerifyOptions{DNSName: tt.host, Roots: tt.roots, Intermediates: inters}); err != nil {
				t.Error(err)
			}
		})
	}
	block, rest := pem.Decode(root.PEM())
	if block == nil || block.Type != "CERTIFICATE" || len(rest) != 0 || !bytes.Equal(block.Bytes, root.DER) {
		t.Errorf("PEM() does not hold exactly the root certificate")
	}
	self, err := SelfSigned([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c := self.Cert
	if c.IsCA || !bytes.Equal(c.RawIssuer, c.RawSubject) || c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) != nil {
		t.Errorf("SelfSigned is not a self-issued leaf")
	}
}

// TestOpenSSLThumbprint: the openssl procedure hashes the last certificate served.
func TestOpenSSLThumbprint(t *testing.T) {
	if !HaveOpenSSL() {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl is required under CI")
		}
		t.Skip("openssl not installed")
	}
	root := mustCA(t)(NewRoot("root"))
	inter := mustCA(t)(root.Intermediate("int"))
	leaf, err := inter.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Start(ServerOptions{Chains: []tls.Certificate{Chain(leaf, inter, root)}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	blocks, err := OpenSSLChain(ctx, srv.Host(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 3 {
		t.Fatalf("openssl printed %d certificates, want 3", len(blocks))
	}
	got, err := OpenSSLThumbprint(ctx, srv.Host(), "")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(root.DER)
	if want := hex.EncodeToString(sum[:]); got != want {
		t.Errorf("OpenSSLThumbprint = %s, want %s", got, want)
	}
}

// TestPeerCloseEndsConnections: Close returns only after every behaviour ended,
// even a Silent one whose client never hangs up.
func TestPeerCloseEndsConnections(t *testing.T) {
	p, err := StartPeer("", Silent)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", p.Host())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("hello"))
	p.Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); n != 0 || err == nil || os.IsTimeout(err) {
		t.Errorf("read after Close: %d bytes, %v; want the connection closed", n, err)
	}
}

// TestServerPaths: one server answers discovery under each of its paths, each
// with that path's issuer, and under no other path.
func TestServerPaths(t *testing.T) {
	root, err := NewRoot("Paths Root")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := root.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(ServerOptions{Chains: []tls.Certificate{Chain(leaf, root)}, Path: "/id/A", Paths: []string{"/id/B"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: root.Pool()}}}
	defer client.CloseIdleConnections()
	for path, wantStatus := range map[string]int{"/id/A": 200, "/id/B": 200, "/id/C": 404} {
		resp, err := client.Get("https://" + s.Host() + path + DiscoveryPath)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Issuer string }
		_ = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if resp.StatusCode != wantStatus {
			t.Errorf("%s: status %d, want %d", path, resp.StatusCode, wantStatus)
		}
		if wantStatus == 200 && doc.Issuer != "https://"+s.Host()+path {
			t.Errorf("%s: issuer %q", path, doc.Issuer)
		}
	}
}
