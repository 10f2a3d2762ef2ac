package thumbprint_test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/thumbprint"
)

// protoRecorder serves h and records the protocol of every request, by path.
type protoRecorder struct {
	h  http.Handler
	mu sync.Mutex
	by map[string][]int // path -> ProtoMajor of each request
}

func (p *protoRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	if p.by == nil {
		p.by = map[string][]int{}
	}
	p.by[r.URL.Path] = append(p.by[r.URL.Path], r.ProtoMajor)
	p.mu.Unlock()
	p.h.ServeHTTP(w, r)
}

func (p *protoRecorder) protos(path string) []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.by[path])
}

// probeAtOnce probes every one of urls at once over run and returns the
// results and errors in their order.
func probeAtOnce(t *testing.T, run *thumbprint.Run, urls []string) ([]*thumbprint.Result, []error) {
	t.Helper()
	results := make([]*thumbprint.Result, len(urls))
	errs := make([]error, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Go(func() { results[i], errs[i] = run.Probe(t.Context(), u) })
	}
	wg.Wait()
	return results, errs
}

// prefixed is each path with host before it (and suffix after).
func prefixed(host string, paths []string, suffix ...string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = host + p + strings.Join(suffix, "")
	}
	return out
}

// barrier holds every request until n have arrived at once, at most
// gateLimit (then they go on, and the test fails on what it counts).
type barrier struct {
	h       http.Handler
	n       int
	mu      sync.Mutex
	arrived int
	all     chan struct{}
}

func newBarrier(n int, h http.Handler) *barrier {
	return &barrier{h: h, n: n, all: make(chan struct{})}
}

func (b *barrier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	if b.arrived++; b.arrived == b.n {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
	case <-time.After(gateLimit):
	case <-r.Context().Done():
	}
	b.h.ServeHTTP(w, r)
}

// TestRunSharesHTTP2Connection: a host that chooses h2 takes the discovery
// requests of all its Urls at once over one connection: the server holds
// every request until all five are in, which over HTTP/1.1 takes five
// connections. Requests that come while that connection is being opened
// open only a TCP connection until its protocol is known, then share it.
// The host sees one TLS handshake for its discovery connection and the
// probe's other handshakes, no more; every Url gets the thumbprint the
// openssl procedure gives; nothing stays open once the Run is closed.
func TestRunSharesHTTP2Connection(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	const name = "idp.example.test"
	chain := testidp.Chain(leaf(t, k.int2, name), k.int2, k.int1)
	for _, handshakes := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d handshakes", handshakes), func(t *testing.T) {
			rec := &protoRecorder{h: newBarrier(len(tenants), anyPathIssuerOwnHost())}
			srv := startServer(t, testidp.ServerOptions{Chains: []tls.Certificate{chain}, HTTP2: true, Handler: rec})
			want := sha1Hex(k.int1.DER)
			if got := opensslThumbprint(t, srv.Host(), name); got != want {
				t.Fatalf("openssl procedure gives %s, want %s", got, want)
			}
			before := srv.Handshakes()
			d := newRecordingDialer(map[string]string{name + ":443": srv.Host()})
			run := thumbprint.New(thumbprint.Options{Handshakes: handshakes, RootCAs: k.root.Pool(), Proxy: direct, DialContext: d.DialContext}).NewRun()
			results, errs := probeAtOnce(t, run, prefixed(name, tenants))
			run.Close()
			d.check(t)
			for i, p := range tenants {
				if errs[i] != nil {
					t.Fatalf("%s: %v", p, errs[i])
				}
				if res := results[i]; !slices.Equal(res.Thumbprints, []string{want}) || !res.DiscoveryVerified || res.Hosts[0].Handshakes != handshakes {
					t.Errorf("%s: thumbprints %v from %d handshakes, discovery verified %v; want [%s] from %d, verified", p, res.Thumbprints, res.Hosts[0].Handshakes, res.DiscoveryVerified, want, handshakes)
				}
				if got := rec.protos(p + testidp.DiscoveryPath); !slices.Equal(got, []int{2}) {
					t.Errorf("%s: requests over HTTP/%v, want one over HTTP/2", p, got)
				}
			}
			// The requests that came while the discovery connection was
			// being opened opened a TCP connection each, closed without a
			// TLS byte once the host chose h2: the server sees no handshake
			// of theirs.
			if got := srv.Handshakes() - before; got != handshakes {
				t.Errorf("server saw %d handshakes for %d Urls at once, want %d: one discovery connection, %d more handshakes", got, len(tenants), handshakes, handshakes-1)
			}
			if got := d.count(name + ":443"); got < handshakes || got > handshakes+len(tenants)-1 {
				t.Errorf("%d TCP connections, want %d to %d", got, handshakes, handshakes+len(tenants)-1)
			}
		})
	}
}

// TestRunHTTP2RedirectAndClose: over a shared connection, a redirect is
// followed (over HTTP/1.1, as every redirect hop goes on a connection of
// its own), and a connection the server closed while it was idle is
// replaced: every Url gets its document.
func TestRunHTTP2RedirectAndClose(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	const name = "idp.example.test"
	docs := anyPathIssuerOwnHost()
	rec := &protoRecorder{h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := strings.CutPrefix(r.URL.Path, "/moved"); ok {
			r.URL.Path = rest
			docs.ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/old/") {
			http.Redirect(w, r, "/moved"+r.URL.Path, http.StatusFound)
			return
		}
		docs.ServeHTTP(w, r)
	})}
	srv := startServer(t, testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf(t, k.int1, name), k.int1)}, HTTP2: true, Handler: rec})
	d := newRecordingDialer(map[string]string{name + ":443": srv.Host()})
	run := thumbprint.New(thumbprint.Options{Handshakes: 1, RootCAs: k.root.Pool(), Proxy: direct, DialContext: d.DialContext}).NewRun()
	probeEach(t, run, []string{name + "/id/A", name + "/old/B"})
	srv.CloseConnections()
	probeEach(t, run, []string{name + "/id/C"})
	run.Close()
	d.check(t)
	for path, want := range map[string][]int{
		"/id/A" + testidp.DiscoveryPath:        {2},
		"/old/B" + testidp.DiscoveryPath:       {2, 1}, // over the shared connection, then again on HTTP/1.1, which follows
		"/moved/old/B" + testidp.DiscoveryPath: {1},
		"/id/C" + testidp.DiscoveryPath:        {2},
	} {
		if got := rec.protos(path); !slices.Equal(got, want) {
			t.Errorf("%s: requests over HTTP/%v, want %v", path, got, want)
		}
	}
	// The shared connection, the redirected request's two (its first
	// request and the hop), the TLS 1.2 check, and the connection that
	// replaced the closed one.
	if got := d.count(name + ":443"); got != 5 {
		t.Errorf("%d connections, want 5", got)
	}
}

// TestRunHTTP2KeepsHostBound: a shared connection holds its host's slot
// only while it carries requests; parked, it is closed for another host
// waiting for a slot (PROBE_CONCURRENCY), as any idle connection is.
func TestRunHTTP2KeepsHostBound(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	names := []string{"a.example.test", "b.example.test"}
	srv := startServer(t, testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf(t, k.int1, names...), k.int1)}, HTTP2: true, Handler: anyPathIssuerOwnHost()})
	d := newRecordingDialer(map[string]string{names[0] + ":443": srv.Host(), names[1] + ":443": srv.Host()})
	run := thumbprint.New(thumbprint.Options{Handshakes: 1, Concurrency: 1, RootCAs: k.root.Pool(), Proxy: direct, DialContext: d.DialContext}).NewRun()
	probeEach(t, run, []string{names[0] + "/id/A", names[1] + "/id/A", names[0] + "/id/B"})
	run.Close()
	d.check(t)
	if d.maxHosts != 1 {
		t.Errorf("%d hosts had connections open at once, want 1 (PROBE_CONCURRENCY)", d.maxHosts)
	}
}

// TestRunHTTP1HostKeepsItsConnections: offered h2, a host that speaks
// HTTP/1.1 only takes its Urls' requests at once over connections of their
// own, as it did before h2 was offered: the requests that came while its
// first connection was being opened (held at the dialer's gate until they
// all have) open their TCP connections meanwhile and go on over them (the
// server holds every request until all five are in).
func TestRunHTTP1HostKeepsItsConnections(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	const name = "idp.example.test"
	rec := &protoRecorder{h: newBarrier(len(tenants), anyPathIssuerOwnHost())}
	srv := startServer(t, testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf(t, k.int1, name), k.int1)}, Handler: rec})
	d := newRecordingDialer(map[string]string{name + ":443": srv.Host()})
	// Every dial waits until six have started: the first discovery
	// connection's, the TLS 1.2 check's, and one for each other Url, which
	// all come while the first one is being opened.
	d.gate = func(_ int, _ string, started []dialRecord) bool { return len(started) >= len(tenants)+1 }
	run := thumbprint.New(thumbprint.Options{Handshakes: 2, RootCAs: k.root.Pool(), Proxy: direct, DialContext: d.DialContext}).NewRun()
	_, errs := probeAtOnce(t, run, prefixed(name, tenants))
	run.Close()
	d.check(t)
	for i, p := range tenants {
		if errs[i] != nil {
			t.Errorf("%s: %v", p, errs[i])
		}
		if got := rec.protos(p + testidp.DiscoveryPath); !slices.Equal(got, []int{1}) {
			t.Errorf("%s: requests over HTTP/%v, want one over HTTP/1.1", p, got)
		}
	}
	if got, want := srv.Handshakes(), len(tenants)+1; got != want {
		t.Errorf("server saw %d handshakes, want %d: a discovery connection per Url held at once, and the TLS 1.2 check", got, want)
	}
}

// TestRunHTTP2ManyHostsAtOnce: more h2 hosts than PROBE_CONCURRENCY, each
// with several Urls, all probed at once: every Url gets its document, no
// more hosts than the bound have connections open at once (a host's parked
// connection is closed for another's slot), each host sees its probe's two
// handshakes (and one more at most), and nothing stays open.
func TestRunHTTP2ManyHostsAtOnce(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	const hosts, urls, conc = 6, 3, 2
	var names []string
	to := map[string]string{}
	for i := range hosts {
		names = append(names, fmt.Sprintf("h%d.example.test", i))
	}
	srv := startServer(t, testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf(t, k.int1, names...), k.int1)}, HTTP2: true, Handler: anyPathIssuerOwnHost()})
	for _, n := range names {
		to[n+":443"] = srv.Host()
	}
	d := newRecordingDialer(to)
	run := thumbprint.New(thumbprint.Options{Handshakes: 2, Concurrency: conc, RootCAs: k.root.Pool(), Proxy: direct, DialContext: d.DialContext}).NewRun()
	var all []string
	for _, n := range names {
		for j := range urls {
			all = append(all, fmt.Sprintf("%s/id/%d", n, j))
		}
	}
	_, errs := probeAtOnce(t, run, all)
	run.Close()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	d.check(t)
	if d.maxHosts > conc {
		t.Errorf("%d hosts had connections open at once, want at most %d", d.maxHosts, conc)
	}
	// Each host's discovery connection and TLS 1.2 check; a host whose
	// parked connection was closed for another host's slot before its last
	// Url came (under load) opens another.
	if got, want := srv.Handshakes(), hosts*2; got < want || got > want+hosts {
		t.Errorf("server saw %d TLS handshakes for %d hosts, want %d to %d", got, hosts, want, want+hosts)
	}
}

// TestRunHTTP2TakesBackParkedConnection: once a host's HTTP/2 connection
// is parked (its first Url done), the Urls that come later, several at
// once, go over it again: the host sees no other connection, TCP or TLS.
func TestRunHTTP2TakesBackParkedConnection(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	const name = "idp.example.test"
	rec := &protoRecorder{h: anyPathIssuerOwnHost()}
	srv := startServer(t, testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf(t, k.int1, name), k.int1)}, HTTP2: true, Handler: rec})
	d := newRecordingDialer(map[string]string{name + ":443": srv.Host()})
	run := thumbprint.New(thumbprint.Options{Handshakes: 2, RootCAs: k.root.Pool(), Proxy: direct, DialContext: d.DialContext}).NewRun()
	probeEach(t, run, []string{name + tenants[0]})
	for round := range 3 {
		_, errs := probeAtOnce(t, run, prefixed(name, tenants[1:], fmt.Sprintf("/%d", round)))
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	run.Close()
	d.check(t)
	if got := d.count(name + ":443"); got != 2 {
		t.Errorf("%d connections for %d Urls in four rounds, want 2: the discovery connection, taken back each round, and the TLS 1.2 check", got, 1+3*(len(tenants)-1))
	}
	if got := rec.protos(tenants[3] + "/2" + testidp.DiscoveryPath); !slices.Equal(got, []int{2}) {
		t.Errorf("last round's request over HTTP/%v, want HTTP/2", got)
	}
}
