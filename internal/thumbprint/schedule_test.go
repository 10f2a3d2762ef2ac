package thumbprint_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/thumbprint"
)

// gateLimit bounds a dial's wait at a gate; reaching it means the probe did
// not run the connections at once that the gate waits for.
const gateLimit = 5 * time.Second

// dialRecord is one connection the probe opened: to which host, when it
// started and ended.
type dialRecord struct {
	host       string
	start, end time.Time
}

// recordingDialer is a fake dialer: it maps host:port names to local
// listeners, records every connection's start and end, the most distinct
// hosts and the most connections per host open at once, and can hold each
// dial at a gate until a condition on the dials so far holds.
type recordingDialer struct {
	to map[string]string // host:port -> listener address
	// gate, when set, is asked under the lock, for dial number i (from 0) to
	// host, whether it may go on; it is asked again at every new dial.
	gate func(i int, host string, started []dialRecord) bool

	mu         sync.Mutex
	changed    chan struct{}
	dials      []dialRecord
	open       map[string]int
	maxHosts   int
	maxPerHost map[string]int
	gateFailed []string
}

func newRecordingDialer(to map[string]string) *recordingDialer {
	return &recordingDialer{to: to, changed: make(chan struct{}), open: map[string]int{}, maxPerHost: map[string]int{}}
}

func (d *recordingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	target, ok := d.to[addr]
	if !ok {
		return nil, fmt.Errorf("recording dialer: no listener for %s", addr)
	}
	d.mu.Lock()
	i := len(d.dials)
	d.dials = append(d.dials, dialRecord{host: addr, start: time.Now()})
	d.open[addr]++
	d.maxPerHost[addr] = max(d.maxPerHost[addr], d.open[addr])
	d.maxHosts = max(d.maxHosts, len(d.open))
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()

	closed := sync.OnceFunc(func() {
		d.mu.Lock()
		d.dials[i].end = time.Now()
		if d.open[addr]--; d.open[addr] == 0 {
			delete(d.open, addr)
		}
		d.mu.Unlock()
	})
	if err := d.wait(ctx, i, addr); err != nil {
		closed()
		return nil, err
	}
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, network, target)
	if err != nil {
		closed()
		return nil, err
	}
	return &recordedConn{Conn: conn, closed: closed}, nil
}

// wait holds dial i at the gate until it opens, gateLimit passes (recorded
// as a failure, then it goes on) or ctx ends.
func (d *recordingDialer) wait(ctx context.Context, i int, host string) error {
	if d.gate == nil {
		return nil
	}
	limit := time.NewTimer(gateLimit)
	defer limit.Stop()
	for {
		d.mu.Lock()
		if d.gate(i, host, d.dials) {
			d.mu.Unlock()
			return nil
		}
		changed := d.changed
		d.mu.Unlock()
		select {
		case <-changed:
		case <-limit.C:
			d.mu.Lock()
			d.gateFailed = append(d.gateFailed, fmt.Sprintf("dial %d to %s", i, host))
			d.mu.Unlock()
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waitDials waits until n dials have started, at most gateLimit.
func (d *recordingDialer) waitDials(t *testing.T, n int) {
	t.Helper()
	limit := time.NewTimer(gateLimit)
	defer limit.Stop()
	for {
		d.mu.Lock()
		started, changed := len(d.dials), d.changed
		d.mu.Unlock()
		if started >= n {
			return
		}
		select {
		case <-changed:
		case <-limit.C:
			t.Fatalf("%d dials started within %s, want %d", started, gateLimit, n)
		}
	}
}

// count is the number of dials to host.
func (d *recordingDialer) count(host string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, r := range d.dials {
		if r.host == host {
			n++
		}
	}
	return n
}

// check fails t when a gate was never opened or a connection was left open.
func (d *recordingDialer) check(t *testing.T) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.gateFailed) > 0 {
		t.Errorf("gates not opened within %s (the connections they wait for did not run at once): %v", gateLimit, d.gateFailed)
	}
	if len(d.open) > 0 {
		t.Errorf("connections left open: %v", d.open)
	}
}

type recordedConn struct {
	net.Conn
	closed func()
}

func (c *recordedConn) Close() error {
	c.closed()
	return c.Conn.Close()
}

// distinctHosts is the number of distinct hosts among dials.
func distinctHosts(dials []dialRecord) int {
	seen := map[string]bool{}
	for _, r := range dials {
		seen[r.host] = true
	}
	return len(seen)
}

// TestProbeConcurrencyBoundsHosts: a Run probes distinct hosts at once up to
// Options.Concurrency, never more. Each dial waits until as many distinct
// hosts as the bound have started, so a probe that ran fewer at once would
// stall at the gate.
func TestProbeConcurrencyBoundsHosts(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	const hosts = 5
	var names []string
	for i := range hosts {
		names = append(names, fmt.Sprintf("h%d.example.test", i))
	}
	srv := startServer(t, testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf(t, k.int1, names...), k.int1)}})
	to := map[string]string{}
	for _, n := range names {
		to[n+":443"] = srv.Host()
	}
	for _, bound := range []int{1, 2, hosts} {
		t.Run(fmt.Sprintf("bound %d", bound), func(t *testing.T) {
			d := newRecordingDialer(to)
			d.gate = func(_ int, _ string, started []dialRecord) bool { return distinctHosts(started) >= bound }
			run := thumbprint.New(thumbprint.Options{Concurrency: bound, RootCAs: k.root.Pool(), Proxy: direct, DialContext: d.DialContext}).NewRun()
			var wg sync.WaitGroup
			errs := make([]error, hosts)
			for i, n := range names {
				wg.Go(func() { _, errs[i] = run.Probe(t.Context(), n) })
			}
			wg.Wait()
			run.Close()
			for i, err := range errs {
				if err != nil {
					t.Errorf("%s: %v", names[i], err)
				}
			}
			d.check(t)
			if d.maxHosts != bound {
				t.Errorf("%d hosts had connections open at once, want %d (the bound)", d.maxHosts, bound)
			}
			if got := len(d.dials); got != hosts*2 {
				t.Errorf("%d connections, want %d (per host: discovery, one more handshake: the TLS 1.2 check)", got, hosts*2)
			}
		})
	}
}

// TestProbeHandshakesOfOneHostAtOnce: a host's handshakes (the TLS 1.2
// check among them) all run at once, and beside the discovery request of the
// issuer host (whose own handshake is one of them): each connection waits at
// the gate until all of them have started. With one handshake asked for, the
// check is the second.
func TestProbeHandshakesOfOneHostAtOnce(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	const name = "idp.example.test"
	srv := startServer(t, testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf(t, k.int1, name), k.int1)}})
	for _, handshakes := range []int{1, 3, 5} {
		t.Run(fmt.Sprintf("%d handshakes", handshakes), func(t *testing.T) {
			d := newRecordingDialer(map[string]string{name + ":443": srv.Host()})
			all := max(handshakes, 2) // the discovery's and the TLS 1.2 check's among them
			d.gate = func(_ int, _ string, started []dialRecord) bool { return len(started) >= all }
			res, err := thumbprint.New(thumbprint.Options{Handshakes: handshakes, RootCAs: k.root.Pool(), Proxy: direct, DialContext: d.DialContext}).Probe(t.Context(), name)
			if err != nil {
				t.Fatal(err)
			}
			d.check(t)
			if got := len(d.dials); got != all {
				t.Errorf("%d connections, want %d: discovery, the TLS 1.2 check, %d more handshakes", got, all, all-2)
			}
			if got := d.maxPerHost[name+":443"]; got != all {
				t.Errorf("%d connections to the host at once, want %d", got, all)
			}
			// Every connection started before any of them ended.
			var lastStart, firstEnd time.Time
			for _, r := range d.dials {
				if r.start.After(lastStart) {
					lastStart = r.start
				}
				if firstEnd.IsZero() || r.end.Before(firstEnd) {
					firstEnd = r.end
				}
			}
			if lastStart.After(firstEnd) {
				t.Errorf("a connection started at %v, after another ended at %v: not at once", lastStart, firstEnd)
			}
			if h := res.Hosts[0]; h.Handshakes != all || !h.AcceptsTLS12 {
				t.Errorf("host %+v, want %d handshakes counted and TLS 1.2 accepted", h, all)
			}
		})
	}
}

// TestProbeDiscoveryHandshakeReusedForItsHostOnly: the discovery request's
// handshake counts as one of the issuer host's handshakes, never as one of
// another jwks_uri host's, whose chains must all be its own.
func TestProbeDiscoveryHandshakeReusedForItsHostOnly(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	const issuerName, jwksName = "issuer.example.test", "jwks.example.test"
	issuerChain := testidp.Chain(leaf(t, k.int1, issuerName), k.int1)
	jwksChain := testidp.Chain(leaf(t, k.int2, jwksName), k.int2, k.int1, k.root)
	jwks := startServer(t, testidp.ServerOptions{Chains: []tls.Certificate{jwksChain}})
	separate := startServer(t, testidp.ServerOptions{Chains: []tls.Certificate{issuerChain}, JWKSURI: "https://" + jwksName + "/keys"})
	same := startServer(t, testidp.ServerOptions{Chains: []tls.Certificate{issuerChain}})
	tests := []struct {
		name              string
		issuerAt          string
		jwksHost          bool
		issuerConns       int // discovery, K-1 more (the TLS 1.2 check first)
		jwksConns         int // K (the TLS 1.2 check first)
		wantThumbprints   []string
		wantHostsInResult []string
	}{
		{name: "jwks_uri on the issuer host", issuerAt: same.Host(), issuerConns: 2, wantThumbprints: []string{sha1Hex(k.int1.DER)},
			wantHostsInResult: []string{issuerName + ":443"}},
		{name: "jwks_uri on another host", issuerAt: separate.Host(), jwksHost: true, issuerConns: 2, jwksConns: 2,
			wantThumbprints: []string{sha1Hex(k.root.DER), sha1Hex(k.int1.DER)}, wantHostsInResult: []string{jwksName + ":443", issuerName + ":443"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newRecordingDialer(map[string]string{issuerName + ":443": tt.issuerAt, jwksName + ":443": jwks.Host()})
			res, err := thumbprint.New(thumbprint.Options{Handshakes: 2, RootCAs: k.root.Pool(), Proxy: direct, DialContext: d.DialContext}).Probe(t.Context(), issuerName)
			if err != nil {
				t.Fatal(err)
			}
			d.check(t)
			if got := d.count(issuerName + ":443"); got != tt.issuerConns {
				t.Errorf("%d connections to the issuer host, want %d", got, tt.issuerConns)
			}
			if got := d.count(jwksName + ":443"); got != tt.jwksConns {
				t.Errorf("%d connections to the jwks host, want %d", got, tt.jwksConns)
			}
			if !slices.Equal(res.Thumbprints, tt.wantThumbprints) {
				t.Errorf("Thumbprints = %v, want %v (jwks_uri host first)", res.Thumbprints, tt.wantThumbprints)
			}
			var hosts []string
			for _, h := range res.Hosts {
				hosts = append(hosts, h.Host)
				if h.Handshakes != 2 {
					t.Errorf("%s: %d handshakes counted, want 2", h.Host, h.Handshakes)
				}
				want := sha1Hex(issuerChain.Certificate[len(issuerChain.Certificate)-1])
				if h.Host == jwksName+":443" {
					want = sha1Hex(jwksChain.Certificate[len(jwksChain.Certificate)-1])
				}
				for _, c := range h.Chains {
					if c.Thumbprint != want {
						t.Errorf("%s: a chain ending in %s, want only its own %s", h.Host, c.Thumbprint, want)
					}
				}
			}
			if !slices.Equal(hosts, tt.wantHostsInResult) {
				t.Errorf("hosts %v, want %v", hosts, tt.wantHostsInResult)
			}
		})
	}
}
