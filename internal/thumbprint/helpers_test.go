package thumbprint_test

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
	"github.com/thumbprint-drift/thumbprint-drift/internal/thumbprint"
)

// pki is a small certificate hierarchy: root -> int1 -> int2, and an
// unrelated "proxy" root, as a TLS-intercepting proxy would use.
type pki struct {
	root, int1, int2, proxyRoot, proxyInt *testidp.CA
}

func newPKI(t *testing.T) pki {
	t.Helper()
	var k pki
	var err error
	if k.root, err = testidp.NewRoot("Test Root"); err != nil {
		t.Fatal(err)
	}
	if k.int1, err = k.root.Intermediate("Test Intermediate 1"); err != nil {
		t.Fatal(err)
	}
	if k.int2, err = k.int1.Intermediate("Test Intermediate 2"); err != nil {
		t.Fatal(err)
	}
	if k.proxyRoot, err = testidp.NewRoot("Intercepting Proxy Root"); err != nil {
		t.Fatal(err)
	}
	if k.proxyInt, err = k.proxyRoot.Intermediate("Intercepting Proxy Intermediate"); err != nil {
		t.Fatal(err)
	}
	return k
}

// leaf issues a certificate for hosts valid around now.
func leaf(t *testing.T, ca *testidp.CA, hosts ...string) *testidp.Leaf {
	t.Helper()
	l, err := ca.Leaf(hosts, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// sha1Hex is the expected thumbprint of a DER certificate, computed here
// independently of the code under test.
func sha1Hex(der []byte) string {
	sum := sha1.Sum(der)
	return hex.EncodeToString(sum[:])
}

func startServer(t *testing.T, opts testidp.ServerOptions) *testidp.Server {
	t.Helper()
	s, err := testidp.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func startPeer(t *testing.T, serve func(net.Conn)) *testidp.Peer {
	t.Helper()
	p, err := testidp.StartPeer("", serve)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// opensslThumbprint runs AWS's documented openssl procedure against addr.
func opensslThumbprint(t *testing.T, addr, serverName string) string {
	t.Helper()
	peertest.Tool(t, "openssl")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	tp, err := testidp.OpenSSLThumbprint(ctx, addr, serverName)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// mapDial dials the address m maps a host:port to; IP literals are dialed as
// they are, and other names fail as an unknown host would.
func mapDial(m map[string]string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if to, ok := m[strings.ToLower(addr)]; ok {
			return d.DialContext(ctx, network, to)
		}
		host, _, err := net.SplitHostPort(addr)
		if err == nil && net.ParseIP(host) != nil {
			return d.DialContext(ctx, network, addr)
		}
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
	}
}

// direct is a Proxy option that never proxies, so tests ignore HTTPS_PROXY.
func direct(*url.URL) (*url.URL, error) { return nil, nil }

// asError returns err as a *thumbprint.Error or fails.
func asError(t *testing.T, err error) *thumbprint.Error {
	t.Helper()
	if err == nil {
		t.Fatal("probe succeeded, want an error")
	}
	var pe *thumbprint.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *thumbprint.Error", err, err)
	}
	return pe
}

// chainDERs is the served chain's certificates, as tls.Certificate holds them.
func chainDERs(c tls.Certificate) [][]byte { return c.Certificate }
