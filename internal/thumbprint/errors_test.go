package thumbprint_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/thumbprint"
)

// shortTimeout is the probe timeout of the hang and slow-drip cases; hangLimit
// proves they did not hang (generous, never a tight timing assertion).
const (
	shortTimeout = 300 * time.Millisecond
	hangLimit    = 5 * time.Second
)

// docHandler serves a discovery document naming the request's host as issuer
// and jwks_uri on that host, edited by edit.
func docHandler(edit func(host string) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, edit(r.Host))
	})
}

func doc(issuer, jwks string) string {
	return fmt.Sprintf(`{"issuer": %q, "jwks_uri": %q}`, issuer, jwks)
}

// redirectHandler redirects /.well-known/openid-configuration through n hops
// to a document, or to http:// when toHTTP.
func redirectHandler(n int, toHTTP bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hop := 0
		if s, ok := strings.CutPrefix(r.URL.Path, "/hop/"); ok {
			hop, _ = strconv.Atoi(s)
		}
		if toHTTP {
			http.Redirect(w, r, "http://"+r.Host+"/doc", http.StatusFound)
			return
		}
		if hop < n {
			http.Redirect(w, r, fmt.Sprintf("/hop/%d", hop+1), http.StatusFound)
			return
		}
		fmt.Fprint(w, doc("https://"+r.Host, "https://"+r.Host+"/keys"))
	})
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestProbeErrors(t *testing.T) {
	t.Parallel()
	for name, h2 := range servesH2 {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testProbeErrors(t, h2)
		})
	}
}

// servesH2 names the test identity providers' protocols: HTTP/1.1 only, or
// h2 offered too (the probe's discovery then goes over HTTP/2).
var servesH2 = map[string]bool{"server speaks http1.1": false, "server speaks h2": true}

func testProbeErrors(t *testing.T, h2 bool) {
	k := newPKI(t)
	chain := testidp.Chain(leaf(t, k.int1, "127.0.0.1"), k.int1)
	chains := []tls.Certificate{chain}
	serve := func(t *testing.T, h http.Handler) string {
		return startServer(t, testidp.ServerOptions{Chains: chains, Handler: h, HTTP2: h2}).URL()
	}
	// issuerWithJWKSAt serves a good document whose jwks_uri is on hostport.
	issuerWithJWKSAt := func(t *testing.T, hostport string) string {
		return startServer(t, testidp.ServerOptions{Chains: chains, JWKSURI: "https://" + hostport + "/keys", HTTP2: h2}).URL()
	}
	big := strings.Repeat(" ", 1<<20)

	type setup func(t *testing.T, o *thumbprint.Options) string
	fixed := func(u string) setup { return func(*testing.T, *thumbprint.Options) string { return u } }
	withDoc := func(edit func(host string) string) setup {
		return func(t *testing.T, _ *thumbprint.Options) string { return serve(t, docHandler(edit)) }
	}
	short := func(s setup) setup {
		return func(t *testing.T, o *thumbprint.Options) string { o.Timeout = shortTimeout; return s(t, o) }
	}
	silent := func(t *testing.T, _ *thumbprint.Options) string { return startPeer(t, testidp.Silent).Host() }
	hangup := func(t *testing.T, _ *thumbprint.Options) string { return startPeer(t, testidp.Hangup).Host() }
	drip := func(t *testing.T) *testidp.Server {
		return startServer(t, testidp.ServerOptions{Chains: chains, WriteInterval: time.Second, HTTP2: h2})
	}

	tests := []struct {
		name   string
		setup  setup
		ctx    func(t *testing.T) context.Context
		kind   thumbprint.Kind
		step   string
		urlHas string
		msgHas string
	}{
		{name: "empty Url", setup: fixed(""), kind: thumbprint.KindBadURL, msgHas: "empty"},
		{name: "http scheme", setup: fixed("http://idp.example.test"), kind: thumbprint.KindBadURL, msgHas: `scheme "http"`},
		{name: "other scheme", setup: fixed("ftp://idp.example.test"), kind: thumbprint.KindBadURL, msgHas: "must be https"},
		{name: "query", setup: fixed("idp.example.test/x?a=b"), kind: thumbprint.KindBadURL, msgHas: "query"},
		{name: "empty query", setup: fixed("idp.example.test?"), kind: thumbprint.KindBadURL, msgHas: "query"},
		{name: "fragment", setup: fixed("https://idp.example.test#frag"), kind: thumbprint.KindBadURL, msgHas: "fragment"},
		{name: "userinfo", setup: fixed("user:pw@idp.example.test"), kind: thumbprint.KindBadURL, msgHas: "userinfo"},
		{name: "no host", setup: fixed("https:///id/ABC"), kind: thumbprint.KindBadURL, msgHas: "no host"},
		{name: "bad port", setup: fixed("idp.example.test:99999"), kind: thumbprint.KindBadURL, msgHas: "port"},

		{name: "unknown host", setup: func(_ *testing.T, o *thumbprint.Options) string {
			o.DialContext = mapDial(nil)
			return "nohost.example.test/id/X"
		}, kind: thumbprint.KindDNS, urlHas: "https://nohost.example.test/id/X/.well-known/openid-configuration", msgHas: "no such host"},
		{name: "connection refused", setup: func(t *testing.T, _ *thumbprint.Options) string { return closedPort(t) },
			kind: thumbprint.KindRefused, msgHas: "refused"},
		{name: "server never answers", setup: short(silent), kind: thumbprint.KindTimeout},
		{name: "server never answers, context deadline", setup: silent, kind: thumbprint.KindTimeout,
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithTimeout(t.Context(), shortTimeout)
				t.Cleanup(cancel)
				return ctx
			}},
		{name: "handshake drips a byte a second", setup: short(func(t *testing.T, _ *thumbprint.Options) string { return drip(t).URL() }),
			kind: thumbprint.KindTimeout},
		{name: "body drips a byte a second", setup: short(func(t *testing.T, _ *thumbprint.Options) string {
			return serve(t, testidp.DripHandler([]byte(doc("https://x", "https://x/keys")), time.Second))
		}), kind: thumbprint.KindTimeout},
		{name: "caller canceled", setup: silent, kind: thumbprint.KindCanceled,
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				return ctx
			}},

		{name: "closed mid-handshake", setup: hangup, kind: thumbprint.KindTLS},
		{name: "not TLS", setup: func(t *testing.T, _ *thumbprint.Options) string {
			return startPeer(t, testidp.Reply([]byte("HTTP/1.0 400 Bad Request\r\n\r\n"))).Host()
		}, kind: thumbprint.KindTLS, msgHas: "does not look like a TLS handshake"},
		{name: "TLS 1.1 only", setup: func(t *testing.T, _ *thumbprint.Options) string {
			return startServer(t, testidp.ServerOptions{Chains: chains, MaxVersion: tls.VersionTLS11}).URL()
		}, kind: thumbprint.KindTLS, msgHas: "protocol version"},

		{name: "status 404", setup: func(t *testing.T, _ *thumbprint.Options) string { return serve(t, http.NotFoundHandler()) },
			kind: thumbprint.KindHTTPStatus, msgHas: "404"},
		{name: "status 500", setup: func(t *testing.T, _ *thumbprint.Options) string {
			return serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", 500) }))
		}, kind: thumbprint.KindHTTPStatus, msgHas: "500"},
		{name: "body over 1 MiB", setup: withDoc(func(h string) string { return doc("https://"+h, "https://"+h+"/keys") + big }),
			kind: thumbprint.KindBodyTooLarge, msgHas: "1048576"},
		{name: "not JSON", setup: withDoc(func(string) string { return "<html>hello</html>" }), kind: thumbprint.KindMalformedJSON},
		{name: "JSON array", setup: withDoc(func(string) string { return `[{"jwks_uri": "https://x/keys"}]` }), kind: thumbprint.KindMalformedJSON},
		{name: "truncated JSON", setup: withDoc(func(string) string { return `{"jwks_uri": "https://x/k` }), kind: thumbprint.KindMalformedJSON},
		{name: "issuer not a string", setup: withDoc(func(h string) string { return `{"issuer": 5, "jwks_uri": "https://` + h + `/keys"}` }),
			kind: thumbprint.KindMalformedJSON},
		{name: "no jwks_uri", setup: withDoc(func(h string) string { return `{"issuer": "https://` + h + `"}` }),
			kind: thumbprint.KindBadJWKSURI, msgHas: "no jwks_uri"},
		{name: "http jwks_uri", setup: withDoc(func(h string) string { return doc("https://"+h, "http://"+h+"/keys") }),
			kind: thumbprint.KindBadJWKSURI, msgHas: "not an absolute https URL"},
		{name: "relative jwks_uri", setup: withDoc(func(h string) string { return doc("https://"+h, "/keys") }),
			kind: thumbprint.KindBadJWKSURI, msgHas: "not an absolute https URL"},
		{name: "jwks_uri without host", setup: withDoc(func(h string) string { return doc("https://"+h, "https:///keys") }),
			kind: thumbprint.KindBadJWKSURI, msgHas: "no host"},
		{name: "other issuer", setup: withDoc(func(string) string { return doc("https://evil.example", "https://evil.example/keys") }),
			kind: thumbprint.KindIssuerMismatch, msgHas: `"https://evil.example"`},
		{name: "no issuer", setup: withDoc(func(h string) string { return `{"jwks_uri": "https://` + h + `/keys"}` }),
			kind: thumbprint.KindIssuerMismatch, msgHas: "no issuer"},
		{name: "redirect to http", setup: func(t *testing.T, _ *thumbprint.Options) string { return serve(t, redirectHandler(0, true)) },
			kind: thumbprint.KindRedirect, msgHas: "non-https"},
		{name: "4 redirects", setup: func(t *testing.T, _ *thumbprint.Options) string { return serve(t, redirectHandler(4, false)) },
			kind: thumbprint.KindRedirect, msgHas: "more than 3 redirects"},

		{name: "jwks host refuses", setup: func(t *testing.T, _ *thumbprint.Options) string { return issuerWithJWKSAt(t, closedPort(t)) },
			kind: thumbprint.KindRefused, step: thumbprint.StepHandshake},
		{name: "jwks host never answers", setup: short(func(t *testing.T, o *thumbprint.Options) string { return issuerWithJWKSAt(t, silent(t, o)) }),
			kind: thumbprint.KindTimeout, step: thumbprint.StepHandshake},
		{name: "jwks host drips", setup: short(func(t *testing.T, _ *thumbprint.Options) string { return issuerWithJWKSAt(t, drip(t).Host()) }),
			kind: thumbprint.KindTimeout, step: thumbprint.StepHandshake},
		{name: "jwks host closes mid-handshake", setup: func(t *testing.T, o *thumbprint.Options) string { return issuerWithJWKSAt(t, hangup(t, o)) },
			kind: thumbprint.KindTLS, step: thumbprint.StepHandshake},
		{name: "jwks host unknown", setup: func(t *testing.T, o *thumbprint.Options) string {
			o.DialContext = mapDial(nil)
			return issuerWithJWKSAt(t, "nohost.example.test")
		}, kind: thumbprint.KindDNS, step: thumbprint.StepHandshake, urlHas: "https://nohost.example.test:443"},

		{name: "proxy refuses CONNECT", setup: func(t *testing.T, o *thumbprint.Options) string {
			px, err := testidp.StartProxy(testidp.ProxyOptions{Status: http.StatusForbidden})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { px.Close() })
			o.Proxy = func(*url.URL) (*url.URL, error) { return px.URL(), nil }
			return "idp.example.test"
		}, kind: thumbprint.KindConnect, msgHas: "403 Forbidden"},
		{name: "proxy scheme unsupported", setup: func(_ *testing.T, o *thumbprint.Options) string {
			o.Proxy = func(*url.URL) (*url.URL, error) { return url.Parse("socks5://127.0.0.1:1080") }
			return "idp.example.test"
		}, kind: thumbprint.KindConnect, msgHas: `scheme "socks5"`},
		{name: "proxy unreachable", setup: func(t *testing.T, o *thumbprint.Options) string {
			addr := closedPort(t)
			o.Proxy = func(*url.URL) (*url.URL, error) { return &url.URL{Scheme: "http", Host: addr}, nil }
			return "idp.example.test"
		}, kind: thumbprint.KindRefused, msgHas: "proxy http://" + "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := thumbprint.Options{RootCAs: k.root.Pool(), Proxy: direct, Timeout: 10 * time.Second}
			u := tt.setup(t, &opts)
			ctx := t.Context()
			if tt.ctx != nil {
				ctx = tt.ctx(t)
			}
			start := time.Now()
			res, err := thumbprint.New(opts).Probe(ctx, u)
			if took := time.Since(start); took > hangLimit {
				t.Errorf("probe took %v: it hung past its deadline", took)
			}
			if res != nil {
				t.Errorf("result %+v with error %v, want nil", res, err)
			}
			pe := asError(t, err)
			t.Log(err)
			step := tt.step
			if step == "" {
				step = thumbprint.StepDiscovery
			}
			if pe.Kind != tt.kind || pe.Step != step {
				t.Errorf("kind %q step %q, want %q %q: %v", pe.Kind, pe.Step, tt.kind, step, err)
			}
			if !strings.Contains(pe.URL, tt.urlHas) {
				t.Errorf("URL %q, want it to contain %q", pe.URL, tt.urlHas)
			}
			msg := err.Error()
			for _, want := range []string{step + " ", pe.URL, string(tt.kind), tt.msgHas} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not name %q", msg, want)
				}
			}
			if got, want := errors.Is(err, context.DeadlineExceeded), tt.kind == thumbprint.KindTimeout; got != want {
				t.Errorf("errors.Is(err, context.DeadlineExceeded) = %v, want %v: %v", got, want, err)
			}
			if got, want := errors.Is(err, context.Canceled), tt.kind == thumbprint.KindCanceled; got != want {
				t.Errorf("errors.Is(err, context.Canceled) = %v, want %v: %v", got, want, err)
			}
		})
	}
}

// TestProbeLimits: the edges that must still succeed.
func TestProbeLimits(t *testing.T) {
	t.Parallel()
	for name, h2 := range servesH2 {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testProbeLimits(t, h2)
		})
	}
}

func testProbeLimits(t *testing.T, h2 bool) {
	k := newPKI(t)
	chains := []tls.Certificate{testidp.Chain(leaf(t, k.int1, "127.0.0.1"), k.int1)}
	exactly := func(host string) string {
		d := doc("https://"+host+"/", "https://"+host+"/keys")
		return d + strings.Repeat(" ", 1<<20-len(d))
	}
	tests := []struct {
		name    string
		handler http.Handler
	}{
		{"document of exactly 1 MiB, issuer with trailing slash", docHandler(exactly)},
		{"3 redirects", redirectHandler(3, false)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, testidp.ServerOptions{Chains: chains, Handler: tt.handler, HTTP2: h2})
			res, err := thumbprint.New(thumbprint.Options{RootCAs: k.root.Pool(), Proxy: direct}).Probe(t.Context(), srv.URL())
			if err != nil {
				t.Fatal(err)
			}
			if want := sha1Hex(k.int1.DER); len(res.Thumbprints) != 1 || res.Thumbprints[0] != want {
				t.Errorf("Thumbprints = %v, want [%s]", res.Thumbprints, want)
			}
		})
	}
}
