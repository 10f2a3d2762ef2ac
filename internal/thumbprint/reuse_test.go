package thumbprint_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/thumbprint"
)

// tenants are the issuer paths of one host in these tests: one host serving
// several provider Urls (EKS clusters of a region, tenants of a host).
var tenants = []string{"/id/A", "/id/B", "/id/C", "/id/D", "/id/E"}

// probeEach probes the Urls of run one after another (each discovery
// request starts once the previous one has finished, so its connection is
// idle) and fails t on an error.
func probeEach(t *testing.T, run *thumbprint.Run, urls []string) []*thumbprint.Result {
	t.Helper()
	var results []*thumbprint.Result
	for _, u := range urls {
		res, err := run.Probe(t.Context(), u)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if res.URL != u || res.Issuer != "https://"+u {
			t.Errorf("%s: result for %s, issuer %s", u, res.URL, res.Issuer)
		}
		results = append(results, res)
	}
	return results
}

// TestRunReusesDiscoveryConnections: several Urls on one host cost one
// discovery connection, whatever the number of Urls: the host accepts it and
// the probe's other handshakes (PROBE_HANDSHAKES-1, the TLS 1.2 check among
// them), no more; every Url gets the thumbprints AWS's openssl procedure
// gives, and the verification of the connection it went over.
func TestRunReusesDiscoveryConnections(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	const name = "idp.example.test"
	chain := testidp.Chain(leaf(t, k.int2, name), k.int2, k.int1)
	srv := startServer(t, testidp.ServerOptions{Chains: []tls.Certificate{chain}, IssuerHost: name, Path: tenants[0], Paths: tenants[1:]})
	urls := prefixed(name, tenants)
	want := sha1Hex(k.int1.DER)
	if got := opensslThumbprint(t, srv.Host(), name); got != want {
		t.Fatalf("openssl procedure gives %s, want %s", got, want)
	}
	for _, tt := range []struct {
		handshakes int
		trusted    bool
	}{{1, true}, {2, true}, {3, true}, {2, false}} {
		t.Run(fmt.Sprintf("%d handshakes, trusted %v", tt.handshakes, tt.trusted), func(t *testing.T) {
			roots := k.proxyRoot.Pool() // trusts nothing the server sends
			if tt.trusted {
				roots = k.root.Pool()
			}
			d := newRecordingDialer(map[string]string{name + ":443": srv.Host()})
			run := thumbprint.New(thumbprint.Options{Handshakes: tt.handshakes, RootCAs: roots, Proxy: direct, DialContext: d.DialContext}).NewRun()
			before := srv.Handshakes()
			results := probeEach(t, run, urls)
			run.Close()
			d.check(t)                     // nothing left open once the Run is closed
			conns := max(tt.handshakes, 2) // the discovery's and the TLS 1.2 check's among them
			if got := d.count(name + ":443"); got != conns {
				t.Errorf("%d connections for %d Urls on one host, want %d: 1 discovery connection, %d more handshakes", got, len(urls), conns, conns-1)
			}
			if got := srv.Handshakes() - before; got != conns {
				t.Errorf("server saw %d handshakes, want %d", got, conns)
			}
			for i, res := range results {
				if !slices.Equal(res.Thumbprints, []string{want}) || res.Hosts[0].Handshakes != conns {
					t.Errorf("%s: thumbprints %v from %d handshakes, want [%s] from %d", urls[i], res.Thumbprints, res.Hosts[0].Handshakes, want, conns)
				}
				if res.DiscoveryVerified != tt.trusted || (res.DiscoveryVerifyError == "") != tt.trusted || res.PubliclyTrusted != tt.trusted {
					t.Errorf("%s: discovery verified %v (%q), publicly trusted %v; want %v", urls[i], res.DiscoveryVerified, res.DiscoveryVerifyError, res.PubliclyTrusted, tt.trusted)
				}
			}
		})
	}
}

// TestRunServerClosesIdleConnections: a server may close a keep-alive
// connection whenever it is idle (its keep-alive timeout). A request that
// finds its reused connection closed, or sees it closed before any byte of
// the answer (or garbled), goes out once more on a new connection: every
// Url still gets its document, and no probe fails.
func TestRunServerClosesIdleConnections(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	chains := []tls.Certificate{testidp.Chain(leaf(t, k.int1, "127.0.0.1"), k.int1)}
	tests := []struct {
		name string
		opts testidp.ServerOptions
	}{
		// Every connection closed as soon as its response is sent, without
		// "Connection: close".
		{name: "closed as soon as idle", opts: testidp.ServerOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c, brw, err := http.NewResponseController(w).Hijack(); err == nil {
				writeDoc(brw.Writer, r, "")
				c.Close()
			}
		})}},
		// The second request on a connection finds it closed: what a client
		// sees when the keep-alive timeout passes as its request goes out.
		{name: "closed as the next request arrives", opts: testidp.ServerOptions{Handler: hangUpOnSecondRequest(anyPathIssuerOwnHost())}},
		// Not a close, but the connection's fault all the same: bytes that
		// are no response to the request.
		{name: "the next request answered with garbage", opts: testidp.ServerOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			if writeDoc(brw.Writer, r, "") != nil {
				return
			}
			if _, err := http.ReadRequest(brw.Reader); err == nil {
				brw.WriteString("HTTP/1.1 2x0 garbled\r\n\r\n")
				brw.Flush()
			}
		})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := tt.opts
			opts.Chains, opts.Path, opts.Paths = chains, tenants[0], tenants[1:]
			srv := startServer(t, opts)
			var urls []string
			for _, p := range tenants {
				urls = append(urls, srv.Host()+p)
			}
			run := thumbprint.New(thumbprint.Options{Handshakes: 2, RootCAs: k.root.Pool(), Proxy: direct}).NewRun()
			defer run.Close()
			results := probeEach(t, run, urls)
			for i, res := range results {
				if want := sha1Hex(k.int1.DER); !slices.Equal(res.Thumbprints, []string{want}) || !res.DiscoveryVerified {
					t.Errorf("%s: thumbprints %v, discovery verified %v; want [%s], true", urls[i], res.Thumbprints, res.DiscoveryVerified, want)
				}
			}
			// A connection per Url (each first request on a new one) and
			// the TLS 1.2 check: the closed ones were not used again.
			if got, want := srv.Handshakes(), len(urls)+1; got != want {
				t.Errorf("server saw %d handshakes, want %d", got, want)
			}
		})
	}
}

// hangUpOnSecondRequest serves a connection's first request with h and
// closes the connection, unanswered, on the next.
func hangUpOnSecondRequest(h http.Handler) http.Handler {
	var mu sync.Mutex
	served := map[string]int{} // requests per connection
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		served[r.RemoteAddr]++
		n := served[r.RemoteAddr]
		mu.Unlock()
		if n == 1 {
			h.ServeHTTP(w, r)
			return
		}
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
	})
}

// keepAliveCounter serves the discovery document over connections it
// hijacks, with "Connection: close" when closeConns, and counts requests
// that arrive on a connection after its first: with "Connection: close"
// none may.
type keepAliveCounter struct {
	closeConns bool
	again      atomic.Int64 // second requests on a connection
}

func (h *keepAliveCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	if !h.closeConns {
		// Answer the next request too, then hang up: a connection the
		// client keeps serves it once more.
		if writeDoc(brw.Writer, r, "") != nil {
			return
		}
		if r, err = http.ReadRequest(brw.Reader); err != nil {
			return
		}
		h.again.Add(1)
		writeDoc(brw.Writer, r, "Connection: close\r\n")
		return
	}
	if writeDoc(brw.Writer, r, "Connection: close\r\n") != nil {
		return
	}
	// The client hangs up (nothing read) or sends another request (counted).
	if _, err := brw.Reader.Peek(1); err == nil {
		h.again.Add(1)
	}
}

// writeDoc writes the discovery document of r (issuer from its host and
// path, jwks_uri on its host) as an HTTP/1.1 response with a length and the
// header lines hdr, and flushes it.
func writeDoc(w *bufio.Writer, r *http.Request, hdr string) error {
	issuer := "https://" + r.Host + strings.TrimSuffix(r.URL.Path, testidp.DiscoveryPath)
	body := doc(issuer, "https://"+r.Host+"/keys")
	fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s", hdr, len(body), body)
	return w.Flush()
}

// TestRunConnectionCloseNotReused: a connection whose response says
// "Connection: close" is never used again, even when the server leaves it
// open; one without is (the same server, answering a second request once).
func TestRunConnectionCloseNotReused(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	chains := []tls.Certificate{testidp.Chain(leaf(t, k.int1, "127.0.0.1"), k.int1)}
	for _, closeConns := range []bool{true, false} {
		t.Run(fmt.Sprintf("Connection: close %v", closeConns), func(t *testing.T) {
			t.Parallel()
			h := &keepAliveCounter{closeConns: closeConns}
			srv := startServer(t, testidp.ServerOptions{Chains: chains, Handler: h})
			urls := []string{srv.Host() + "/id/A", srv.Host() + "/id/B"}
			run := thumbprint.New(thumbprint.Options{Handshakes: 2, RootCAs: k.root.Pool(), Proxy: direct}).NewRun()
			defer run.Close()
			probeEach(t, run, urls)
			wantAgain, wantConns := 0, len(urls)+1 // a discovery connection per Url, the TLS 1.2 check
			if !closeConns {
				wantAgain, wantConns = 1, 2
			}
			if got := h.again.Load(); got != int64(wantAgain) {
				t.Errorf("%d requests on a connection after its first, want %d", got, wantAgain)
			}
			if got := srv.Handshakes(); got != wantConns {
				t.Errorf("server saw %d handshakes, want %d", got, wantConns)
			}
		})
	}
}

// TestRunIdleConnectionsKeepBounds: more hosts than PROBE_CONCURRENCY, each
// serving several Urls, probed all at once: connections parked idle count
// against the bounds, and are closed to make room for the hosts waiting, so
// every probe completes, at most Concurrency hosts ever have connections
// open, and none is left open once the Run is closed.
func TestRunIdleConnectionsKeepBounds(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	const hosts, bound = 6, 2
	var names []string
	for i := range hosts {
		names = append(names, fmt.Sprintf("h%d.example.test", i))
	}
	srv := startServer(t, testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf(t, k.int1, names...), k.int1)}, Handler: anyPathIssuerOwnHost()})
	to := map[string]string{}
	var urls []string
	for _, n := range names {
		to[n+":443"] = srv.Host()
		for _, p := range tenants[:3] {
			urls = append(urls, n+p)
		}
	}
	d := newRecordingDialer(to)
	run := thumbprint.New(thumbprint.Options{Concurrency: bound, RootCAs: k.root.Pool(), Proxy: direct, DialContext: d.DialContext}).NewRun()
	errs := make([]error, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Go(func() { _, errs[i] = run.Probe(t.Context(), u) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s: %v", urls[i], err)
		}
	}
	// Later Urls of hosts probed earlier: a fresh turn, idle connections
	// or not.
	for _, n := range names {
		if _, err := run.Probe(t.Context(), n+tenants[3]); err != nil {
			t.Errorf("%s: %v", n+tenants[3], err)
		}
	}
	run.Close()
	d.check(t)
	if d.maxHosts > bound {
		t.Errorf("%d hosts had connections open at once, want at most %d", d.maxHosts, bound)
	}
	for n, m := range d.maxPerHost {
		if m > thumbprint.MaxConnsPerHost {
			t.Errorf("%s: %d connections at once, want at most %d", n, m, thumbprint.MaxConnsPerHost)
		}
	}
}

// anyPathIssuerOwnHost is anyPathIssuer with the jwks_uri on the request's host.
func anyPathIssuerOwnHost() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		anyPathIssuer(r.Host).ServeHTTP(w, r)
	})
}

// TestRunReusesTunnels: through a proxy, a discovery connection (a CONNECT
// tunnel) is reused like a direct one: the proxy is asked for one tunnel for
// the discovery requests of every Url of a host, and one for the TLS 1.2
// check.
func TestRunReusesTunnels(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	const name = "idp.example.test"
	for proto, h2 := range servesH2 {
		t.Run(proto, func(t *testing.T) {
			srv := startServer(t, testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf(t, k.int1, name), k.int1)}, IssuerHost: name, Path: tenants[0], Paths: tenants[1:], HTTP2: h2})
			px, err := testidp.StartProxy(testidp.ProxyOptions{Resolve: map[string]string{name + ":443": srv.Host()}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { px.Close() })
			run := thumbprint.New(thumbprint.Options{
				RootCAs:     k.root.Pool(),
				Proxy:       func(*url.URL) (*url.URL, error) { return px.URL(), nil },
				DialContext: mapDial(nil), // the probe itself cannot resolve the name
			}).NewRun()
			defer run.Close()
			urls := prefixed(name, tenants)
			for i, res := range probeEach(t, run, urls) {
				if want := sha1Hex(k.int1.DER); !slices.Equal(res.Thumbprints, []string{want}) || !res.DiscoveryVerified {
					t.Errorf("%s: thumbprints %v, discovery verified %v; want [%s], true", urls[i], res.Thumbprints, res.DiscoveryVerified, want)
				}
			}
			target := name + ":443"
			if got, want := px.Connects(), []string{target, target}; !slices.Equal(got, want) {
				t.Errorf("CONNECTs %v, want %v (one discovery tunnel for %d Urls, the TLS 1.2 check)", got, want, len(urls))
			}
		})
	}
}

// heldDoc serves the discovery document of any path on its own host; the
// request for the path held is answered only once release is closed (its
// arrival is reported on arrived), or, when hangUp, is hung up on then.
type heldDoc struct {
	held    string
	hangUp  bool
	arrived chan struct{}
	release chan struct{}
}

func newHeldDoc(path string, hangUp bool) *heldDoc {
	return &heldDoc{held: path + testidp.DiscoveryPath, hangUp: hangUp, arrived: make(chan struct{}), release: make(chan struct{})}
}

func (h *heldDoc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == h.held {
		close(h.arrived)
		<-h.release
		if h.hangUp {
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
			return
		}
	}
	anyPathIssuerOwnHost().ServeHTTP(w, r)
}

// TestRunWaitsForBusyDiscoveryConnection: a Url whose discovery request
// goes out while its host's only discovery connection carries another Url's
// request waits for that connection (one round trip) rather than open one
// (three): one TLS connection fewer. When that request fails instead (the
// server hangs up), the waiting Url opens its own connection; when its
// context ends while it waits, it gives up and the other Url is served.
func TestRunWaitsForBusyDiscoveryConnection(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	const name = "idp.example.test"
	chains := []tls.Certificate{testidp.Chain(leaf(t, k.int1, name), k.int1)}
	for _, tt := range []struct {
		name          string
		hangUp        bool
		cancel        bool
		wantA, wantB  bool // succeed
		wantDiscovery int  // discovery connections (the TLS 1.2 check's is one more); 0: not counted
	}{
		{name: "the busy connection parked", wantA: true, wantB: true, wantDiscovery: 1},
		// B can only succeed over a connection of its own (the host's
		// sampling handshakes are then the probe's, A's discovery failed).
		{name: "the busy request fails", hangUp: true, wantB: true},
		{name: "the waiting request's context ends", cancel: true, wantA: true, wantDiscovery: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHeldDoc(tenants[0], tt.hangUp)
			srv := startServer(t, testidp.ServerOptions{Chains: chains, Handler: h})
			d := newRecordingDialer(map[string]string{name + ":443": srv.Host()})
			run := thumbprint.New(thumbprint.Options{Handshakes: 2, RootCAs: k.root.Pool(), Proxy: direct, DialContext: d.DialContext}).NewRun()
			waiting := make(chan string, 16)
			thumbprint.OnWait(run, func(host string) { waiting <- host })
			var errA, errB error
			doneA := make(chan struct{})
			go func() {
				defer close(doneA)
				_, errA = run.Probe(t.Context(), name+tenants[0])
			}()
			<-h.arrived // A's request is out on its connection
			// A's host probe (its TLS 1.2 check) is under way too, so that B
			// joins it: a B that led it, then was canceled, would leave A to
			// probe the host again (one dial more, a correct one).
			d.waitDials(t, 2)
			ctxB, cancelB := context.WithCancel(t.Context())
			defer cancelB()
			doneB := make(chan struct{})
			go func() {
				defer close(doneB)
				_, errB = run.Probe(ctxB, name+tenants[1])
			}()
			select {
			case host := <-waiting:
				if host != name+":443" {
					t.Errorf("a request for %s waited, want %s:443", host, name)
				}
			case <-doneB:
				t.Fatalf("B finished (%v) while A's request was held: it did not wait for A's connection", errB)
			case <-time.After(gateLimit):
				t.Fatal("B did not wait for A's busy connection")
			}
			if tt.cancel {
				cancelB()
				<-doneB
			}
			close(h.release)
			<-doneA
			<-doneB
			run.Close()
			d.check(t)
			if (errA == nil) != tt.wantA || (errB == nil) != tt.wantB {
				t.Errorf("A: %v, B: %v; want succeeded %v, %v", errA, errB, tt.wantA, tt.wantB)
			}
			if tt.cancel && !errors.Is(errB, context.Canceled) {
				t.Errorf("B: %v, want context.Canceled", errB)
			}
			if got, want := d.count(name+":443"), tt.wantDiscovery+1; tt.wantDiscovery > 0 && got != want {
				t.Errorf("%d connections, want %d: %d for discovery, the TLS 1.2 check", got, want, tt.wantDiscovery)
			}
		})
	}
}
