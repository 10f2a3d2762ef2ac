package thumbprint_test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/thumbprint"
)

// anyPathIssuer answers the discovery request under any path, naming that
// path's issuer and a jwks_uri on jwksHost.
func anyPathIssuer(jwksHost string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		prefix, ok := strings.CutSuffix(r.URL.Path, testidp.DiscoveryPath)
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, doc("https://"+r.Host+prefix, "https://"+jwksHost+"/keys"))
	})
}

// TestRunSharesWork: within a Run each host is handshaken once and each
// discovery URL fetched once, however many providers (and concurrent callers)
// use them; results share no slices.
func TestRunSharesWork(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	jwks := startServer(t, testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf(t, k.int2, "127.0.0.1"), k.int2, k.int1)}})
	issuer := startServer(t, testidp.ServerOptions{
		Chains:  []tls.Certificate{testidp.Chain(leaf(t, k.int1, "127.0.0.1"), k.int1)},
		Handler: anyPathIssuer(jwks.Host()),
	})
	providers := []string{issuer.Host() + "/a", issuer.Host() + "/b"}
	const callers = 4 // per provider, at once
	const handshakes = 2
	p := thumbprint.New(thumbprint.Options{Handshakes: handshakes, RootCAs: k.root.Pool(), Proxy: direct})
	run := p.NewRun()
	defer run.Close()

	results := make([]*thumbprint.Result, len(providers)*callers)
	errs := make([]error, len(results))
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i], errs[i] = run.Probe(t.Context(), providers[i%len(providers)]) })
	}
	wg.Wait()
	want := []string{sha1Hex(k.int1.DER)} // both hosts end their chains with int1
	for i, res := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !slices.Equal(res.Thumbprints, want) || len(res.Hosts) != 2 || res.URL != providers[i%len(providers)] {
			t.Fatalf("result %d: %+v, want thumbprints %v from 2 hosts", i, res, want)
		}
	}
	// The jwks host: its handshakes, the TLS 1.2 check among them, once. The
	// issuer host: a discovery connection (one of its handshakes), and one
	// more for the other provider unless its request went out once the
	// first's had finished (then it reuses that connection), then the other
	// handshakes, the TLS 1.2 check among them, once.
	perHost := handshakes
	if got := jwks.Handshakes(); got != perHost {
		t.Errorf("jwks host saw %d handshakes, want %d for the whole run", got, perHost)
	}
	if got, most := issuer.Handshakes(), len(providers)+handshakes-1; got < handshakes || got > most {
		t.Errorf("issuer host saw %d handshakes, want %d to %d (a discovery connection, at most one per provider, %d more, the TLS 1.2 check)", got, handshakes, most, handshakes-1)
	}

	// Mutating one result leaves the others, and later ones, alone.
	results[0].Thumbprints[0] = "mutated"
	results[0].Hosts[0].Chains[0].Certificates[0].SHA1 = "mutated"
	results[0].Hosts[0].Chains[0].Thumbprint = "mutated"
	later, err := run.Probe(t.Context(), providers[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range []*thumbprint.Result{results[1], results[len(providers)], later} {
		c := res.Hosts[0].Chains[0]
		if res.Thumbprints[0] == "mutated" || c.Thumbprint == "mutated" || c.Certificates[0].SHA1 == "mutated" {
			t.Errorf("a result shares slices with another: %+v", res)
		}
	}
	if got := jwks.Handshakes(); got != perHost {
		t.Errorf("jwks host saw %d handshakes after a cached probe, want %d", got, perHost)
	}

	// Prober.Probe does not share: each call handshakes again.
	for range 2 {
		if _, err := p.Probe(t.Context(), providers[0]); err != nil {
			t.Fatal(err)
		}
	}
	if got := jwks.Handshakes(); got != 3*perHost {
		t.Errorf("jwks host saw %d handshakes after two uncached probes, want %d", got, 3*perHost)
	}
}

// TestRunRefreshesBetweenRuns: a new Run sees a rotated certificate.
func TestRunRefreshesBetweenRuns(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	srv := startServer(t, testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf(t, k.int1, "127.0.0.1"), k.int1)}})
	p := thumbprint.New(thumbprint.Options{Proxy: direct})
	run := p.NewRun()
	defer run.Close()
	before, err := run.Probe(t.Context(), srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	srv.SetChains(testidp.Chain(leaf(t, k.int2, "127.0.0.1"), k.int2))
	cached, err := run.Probe(t.Context(), srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	after, err := p.Probe(t.Context(), srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	old, rotated := sha1Hex(k.int1.DER), sha1Hex(k.int2.DER)
	if !slices.Equal(before.Thumbprints, []string{old}) || !slices.Equal(cached.Thumbprints, []string{old}) || !slices.Equal(after.Thumbprints, []string{rotated}) {
		t.Errorf("before %v, same run %v, new run %v; want [%s], [%s], [%s]", before.Thumbprints, cached.Thumbprints, after.Thumbprints, old, old, rotated)
	}
}

// TestProbeThroughProxy: with a proxy, the discovery request and every
// handshake go through HTTP CONNECT, and the proxy resolves the name.
func TestProbeThroughProxy(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	const name = "idp.example.test"
	srv := startServer(t, testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf(t, k.int1, name), k.int1)}})
	px, err := testidp.StartProxy(testidp.ProxyOptions{Resolve: map[string]string{name + ":443": srv.Host()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	var mu sync.Mutex
	var asked []string
	p := thumbprint.New(thumbprint.Options{
		RootCAs: k.root.Pool(),
		Proxy: func(u *url.URL) (*url.URL, error) {
			mu.Lock()
			asked = append(asked, u.String())
			mu.Unlock()
			return px.URL(), nil
		},
		DialContext: mapDial(nil), // the probe itself cannot resolve the name
	})
	res, err := p.Probe(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	want := sha1Hex(k.int1.DER)
	if !slices.Equal(res.Thumbprints, []string{want}) || !res.PubliclyTrusted || !res.DiscoveryVerified {
		t.Errorf("thumbprints %v trusted %v discovery verified %v; want [%s], true, true", res.Thumbprints, res.PubliclyTrusted, res.DiscoveryVerified, want)
	}
	target := name + ":443"
	if got, want := px.Connects(), []string{target, target}; !slices.Equal(got, want) {
		t.Errorf("CONNECTs %v, want %v (the discovery and the TLS 1.2 check, the 2 handshakes)", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, u := range asked {
		if u != "https://"+target {
			t.Errorf("proxy asked for %q, want https://%s", u, target)
		}
	}
	if got := opensslThumbprint(t, srv.Host(), name); got != want {
		t.Errorf("openssl procedure gives %s, want %s", got, want)
	}
}

// TestRunDiscoveryFailureLeavesHostToOthers: providers on one host probed at
// once, one whose discovery fails: it fails alone, and the others still get
// the host's handshakes (a probe started beside a failed discovery is not
// kept for them).
func TestRunDiscoveryFailureLeavesHostToOthers(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	srv := startServer(t, testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf(t, k.int1, "127.0.0.1"), k.int1)}, Paths: []string{"/id/B", "/id/C"}})
	run := thumbprint.New(thumbprint.Options{RootCAs: k.root.Pool(), Proxy: direct}).NewRun()
	defer run.Close()
	urls := []string{srv.Host() + "/id/A", srv.Host() + "/id/B", srv.Host() + "/id/C"}
	for range 3 {
		results := make([]*thumbprint.Result, len(urls))
		errs := make([]error, len(urls))
		var wg sync.WaitGroup
		for i, u := range urls {
			wg.Go(func() { results[i], errs[i] = run.Probe(t.Context(), u) })
		}
		wg.Wait()
		if pe := asError(t, errs[0]); pe.Kind != thumbprint.KindHTTPStatus {
			t.Errorf("/id/A: %v, want kind %q", errs[0], thumbprint.KindHTTPStatus)
		}
		for i := 1; i < len(urls); i++ {
			if errs[i] != nil {
				t.Fatalf("%s: %v", urls[i], errs[i])
			}
			if h := results[i].Hosts[0]; h.Handshakes != 2 || !slices.Equal(results[i].Thumbprints, []string{sha1Hex(k.int1.DER)}) {
				t.Errorf("%s: %d handshakes, thumbprints %v; want 2, [%s]", urls[i], h.Handshakes, results[i].Thumbprints, sha1Hex(k.int1.DER))
			}
		}
	}
}

// TestRunTimeoutRunsFromTheTurn: hundreds of providers share one host (one
// EKS host serves every cluster of a region), so most wait for one of its
// MaxConnsPerHost connections. Options.Timeout bounds each connection's own
// work from its turn, not the wait: with discovery requests that each take
// 30% of the timeout, five waves of them (the last provider waits about 1.2
// times the timeout) all succeed. The 70% left of each connection's time is
// for its handshake and request on a loaded machine (with 60% and three
// waves, 3 runs in 100 timed out under load).
func TestRunTimeoutRunsFromTheTurn(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("takes about five times the discovery latency")
	}
	const timeout = 3 * time.Second
	const waves = 5
	latency := timeout * 3 / 10 // the identity provider's answer time, simulated by the server
	k := newPKI(t)
	jwks := startServer(t, testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf(t, k.int1, "127.0.0.1"), k.int1)}})
	slowDocs := anyPathIssuer(jwks.Host())
	issuer := startServer(t, testidp.ServerOptions{
		Chains: []tls.Certificate{testidp.Chain(leaf(t, k.int1, "127.0.0.1"), k.int1)},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(latency):
			case <-r.Context().Done():
				return
			}
			slowDocs.ServeHTTP(w, r)
		}),
	})
	p := thumbprint.New(thumbprint.Options{Handshakes: 1, Timeout: timeout, RootCAs: k.root.Pool(), Proxy: direct})
	run := p.NewRun()
	defer run.Close()
	n := waves * thumbprint.MaxConnsPerHost
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() { _, errs[i] = run.Probe(t.Context(), fmt.Sprintf("%s/id/%02d", issuer.Host(), i)) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	for i, err := range errs {
		if err != nil {
			t.Errorf("provider %d of %d on one host: %v", i, n, err)
		}
	}
	// The run's shape, not its speed: the waits did exceed the timeout, so
	// the test would fail if the timeout counted them.
	if elapsed < timeout {
		t.Fatalf("%d providers took %v, less than the timeout %v: the waves did not queue", n, elapsed, timeout)
	}
}
