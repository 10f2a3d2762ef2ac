package thumbprint

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// userAgent is sent with the discovery request and proxy CONNECTs.
const userAgent = "thumbprint-drift"

// maxRedirects is the number of redirects the discovery request follows.
const maxRedirects = 3

// maxHeaderBytes bounds a discovery response's header section.
const maxHeaderBytes = 64 << 10

// fetched is a discovery document, how its connections verified, and the
// chain the issuer host served the request.
type fetched struct {
	discovery
	verified  bool
	verifyErr string
	// seed is the first handshake with the issuer host itself (not a host
	// redirected to): a handshake with that host like any other, so its probe
	// counts it as one of its handshakes.
	seed *served
}

// note records what c's handshake served the request: verified stays true
// only while every connection the request went over verified (a fetched
// starts verified, and is noted once per connection before it is
// returned), verifyErr is the first failure, and the issuer host's chain
// is the seed.
func (f *fetched) note(c *httpConn, host string) {
	if c.verifyErr != nil && f.verified {
		f.verified, f.verifyErr = false, c.verifyErr.Error()
	}
	if f.seed == nil && c.addr == host {
		s := c.chain
		f.seed = &s
	}
}

// fetchDiscovery GETs t's discovery document: status 200, at most 1 MiB, at
// most 3 redirects, https only. Chains are verified and recorded, not
// enforced. The request holds one of the issuer host's connections in the
// scheduler; redirects are followed under it.
//
// Within a Run, discovery requests to one host share connections (HTTP/1.1
// keep-alive): the request goes over a connection another discovery request
// to the issuer host finished with, when one is idle, and its connection is
// parked for the next one when the exchange ended cleanly (see reusable).
// A reused connection brings what its handshake served and how it verified.
// A request that finds no idle connection but one of the issuer host's
// connections carrying a request (its handshake done) waits for that one to
// be parked (one round trip at most, where a new connection costs three)
// rather than dial; see scheduler.
// A request on a reused connection whose response (up to its header) fails
// for any reason but the context's end is sent once more, on a new
// connection: the connection's fault, not the Url's (the server closed it
// while it was idle, before any byte of the response; or it held stray
// bytes after the previous response, which nothing reads while it is idle).
//
// A request goes over the host's HTTP/2 connection when it has one (see
// shared.go); one that comes while the host's first connection is being
// opened connects TCP and waits for that connection's protocol before its
// TLS handshake (preDial).
func (r *Run) fetchDiscovery(ctx context.Context, t target) (fetched, error) {
	for {
		sc, known, lead := r.h2.share(t.host)
		switch {
		case sc != nil:
			return r.overShared(ctx, t, sc, true)
		case known == nil || !lead:
			return r.fetchHTTP1(ctx, t, lead, true, known)
		}
		select {
		case <-known:
		case <-ctx.Done():
			return fetched{}, ctx.Err()
		}
	}
}

// overShared is fetchShared, then a redirect followed over HTTP/1.1
// connections, or a request that failed on a reused connection sent once
// more over a new one.
func (r *Run) overShared(ctx context.Context, t target, sc *sharedConn, reused bool) (fetched, error) {
	f, err := r.fetchShared(ctx, t, sc, reused)
	switch {
	case errors.Is(err, errRedirected):
		return r.fetchHTTP1(ctx, t, false, false, nil)
	case errors.Is(err, errSharedFailed):
		return r.fetchHTTP1(ctx, t, false, true, nil)
	}
	return f, err
}

// fetchHTTP1 is fetchDiscovery over a connection of the scheduler's: a new
// one offering h2 when alpn is set (lead: the host's first, whose
// protocol the host's other requests wait for), or one parked. When known
// is not nil, the host's first connection is being opened: a new
// connection of this request's is only connected (TCP) until that one's
// protocol is known, and not used when it is h2 (preDial).
func (r *Run) fetchHTTP1(ctx context.Context, t target, lead, alpn bool, known <-chan struct{}) (_ fetched, err error) {
	if lead {
		// Whatever happens, the host's requests waiting for its first
		// connection go on (led is idempotent past the first call).
		defer r.h2.led(t.host, nil, false)
	}
	g, idle, err := r.sched.acquireConn(ctx, t.host)
	if err != nil {
		return fetched{}, err
	}
	var conn *httpConn
	switch c := idle.(type) {
	case *httpConn:
		conn = c
	case *sharedConn:
		if alpn {
			return r.carry(ctx, t, c, g, true)
		}
		// Left for the host's next request; this one goes over a
		// connection of its own, without h2.
		g.park(c)
		if g, err = r.sched.acquire(ctx, t.host); err != nil {
			return fetched{}, err
		}
	}
	keep, handed := false, false
	defer func() {
		// The connection is closed before the host's room is given back, or
		// parked with it.
		switch {
		case handed:
		case keep:
			g.park(conn)
		case conn != nil:
			conn.Close()
			g.release()
		default:
			g.release()
		}
	}()
	// The time limit runs from the grant: waiting for the host's turn (one
	// EKS host serves hundreds of providers) is bounded by the caller's
	// context, not by the per-provider timeout.
	caller := ctx
	ctx, cancel := r.p.bounded(ctx)
	defer cancel()
	defer func() { err = overTime(caller, ctx, err) }()
	var use inUse
	stop := context.AfterFunc(ctx, use.end)
	defer stop()

	f := fetched{verified: true}
	var via []*http.Request
	reused := conn != nil
	req, err := discoveryRequest(ctx, t.discoveryURL)
	if err != nil {
		return fetched{}, errorf(KindBadURL, "%v", err)
	}
	var resp *http.Response
	for {
		addr := t.host
		if len(via) > 0 {
			if addr, err = hostPort(req.URL); err != nil {
				return fetched{}, errorf(KindRedirect, "redirect to %s: %v", req.URL.Redacted(), err)
			}
		}
		if conn == nil {
			offer := alpn && len(via) == 0
			var raw net.Conn
			if known != nil && len(via) == 0 {
				if raw, err = r.preDial(ctx, t.host, known); err != nil {
					return fetched{}, err
				}
				if raw == nil {
					handed = true
					return r.joinShared(caller, t, g)
				}
				_, http1 := r.h2.proto(t.host)
				offer = offer && !http1
			}
			var sc *sharedConn
			if conn, sc, err = r.dialDiscovery(ctx, addr, offer, raw); err != nil {
				return fetched{}, err
			}
			if sc != nil {
				handed = true
				return r.carry(caller, t, sc, g, false)
			}
			if offer {
				r.h2.led(t.host, nil, true)
			}
			if len(via) == 0 {
				g.sending()
			}
		}
		resp, err = use.roundTrip(conn, req)
		if err != nil && reused && expired(ctx) == nil {
			// Most often the server closed the idle connection (its
			// keep-alive timeout) as the request went out: once more, on a
			// new one.
			conn.Close()
			g.redial()
			if conn, err = r.dialHTTP(ctx, addr, false, nil); err != nil {
				conn = nil
				return fetched{}, err
			}
			g.sending()
			resp, err = use.roundTrip(conn, req)
		}
		reused = false
		f.note(conn, t.host)
		if err != nil {
			return fetched{}, err
		}
		next, err := redirect(resp)
		if err != nil {
			return fetched{}, err
		}
		if next == nil {
			break
		}
		// A redirect hop's connection is not kept.
		conn.Close()
		g.redial()
		conn = nil
		via = append(via, req)
		if req, err = discoveryRequest(ctx, next.String()); err != nil {
			return fetched{}, errorf(KindRedirect, "redirect to %s: %v", next.Redacted(), err)
		}
		if err := checkRedirect(req, via); err != nil {
			return fetched{}, err
		}
	}
	where := ""
	if u := req.URL.String(); u != t.discoveryURL {
		where = " from " + u
	}
	body, err := readBody(resp, where)
	if err != nil {
		return fetched{}, err
	}
	// The body was read to its end: the connection is clean for the next
	// request, unless anything says otherwise (stop reports whether the
	// context's end interrupted it).
	keep = len(via) == 0 && reusable(resp, conn) && stop()
	doc, err := parseDiscovery(body)
	if err != nil {
		return fetched{}, err
	}
	f.discovery = doc
	return f, nil
}

// readBody reads the body of a discovery response: status 200 (where says
// where the response came from, after redirects), at most 1 MiB.
func readBody(resp *http.Response, where string) ([]byte, error) {
	if resp.StatusCode != http.StatusOK {
		return nil, errorf(KindHTTPStatus, "status %s%s", resp.Status, where)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentSize+1))
	if err == nil && len(body) > maxDocumentSize {
		err = errorf(KindBodyTooLarge, "discovery document exceeds %d bytes", maxDocumentSize)
	}
	return body, err
}

// reusable reports whether conn may carry another request after resp, whose
// body has been read to its end: HTTP/1.1 without "Connection: close", and
// nothing more sent by the server.
func reusable(resp *http.Response, conn *httpConn) bool {
	return resp.ProtoAtLeast(1, 1) && !resp.Close && conn.br.Buffered() == 0
}

// discoveryRequest is the GET of the discovery document at u.
func discoveryRequest(ctx context.Context, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	return req, nil
}

// redirect returns the URL a redirect response points to, nil for any
// other response (a redirect without Location included, as net/http does).
func redirect(resp *http.Response) (*url.URL, error) {
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		return nil, nil
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, nil
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return nil, errorf(KindRedirect, "bad Location %q: %v", loc, err)
	}
	return u, nil
}

// checkRedirect follows at most 3 redirects, all to https.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if !strings.EqualFold(req.URL.Scheme, "https") {
		return errorf(KindRedirect, "redirect to non-https %s refused", req.URL.Redacted())
	}
	if len(via) > maxRedirects {
		return errorf(KindRedirect, "more than %d redirects (last to %s)", maxRedirects, req.URL.Redacted())
	}
	return nil
}

// httpConn is a discovery connection: HTTP/1.1 over TLS to one host:port
// (the server did not choose h2, or was not offered it), with what its
// handshake served and how that chain verified.
type httpConn struct {
	addr      string
	tc        *tls.Conn
	in        *meter
	br        *bufio.Reader
	chain     served
	verifyErr error
}

func (c *httpConn) Close() error { return c.tc.Close() }

// dialDiscovery opens a discovery connection to addr, offering h2 when
// alpn is set: an HTTP/1.1 one, or a shared one when the server chose h2.
func (r *Run) dialDiscovery(ctx context.Context, addr string, alpn bool, raw net.Conn) (*httpConn, *sharedConn, error) {
	hc, err := r.dialHTTP(ctx, addr, alpn, raw)
	if err != nil {
		return nil, nil, err
	}
	if hc.tc.ConnectionState().NegotiatedProtocol != "h2" {
		return hc, nil, nil
	}
	// Each request has its own deadline (its context); the connection
	// outlives the one that opened it.
	if err := hc.tc.SetDeadline(time.Time{}); err != nil {
		hc.Close()
		return nil, nil, err
	}
	cc, err := r.h2.clientConn(ctx, hc)
	if err != nil {
		hc.Close()
		return nil, nil, err
	}
	return nil, &sharedConn{hc: hc, cc: cc}, nil
}

// dialHTTP opens a discovery connection to addr (over raw, a TCP
// connection already open, when not nil) and verifies its chain, offering
// h2 and http/1.1 through ALPN when alpn is set (none otherwise).
func (r *Run) dialHTTP(ctx context.Context, addr string, alpn bool, raw net.Conn) (*httpConn, error) {
	cfg := probeConfig(addr, 0)
	if alpn {
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	tc, err := r.p.handshakeOver(ctx, raw, addr, cfg)
	if err != nil {
		return nil, err
	}
	cs := tc.ConnectionState()
	c := &httpConn{
		addr:      addr,
		tc:        tc,
		in:        &meter{r: tc, limit: -1},
		chain:     served{certs: cs.PeerCertificates, version: cs.Version},
		verifyErr: r.p.verify(cs.PeerCertificates, hostOnly(addr)),
	}
	c.br = bufio.NewReader(c.in)
	return c, nil
}

// inUse is the connection a discovery request is using, cut short (its
// deadline moved to the past) once the request's context ends.
type inUse struct {
	mu    sync.Mutex
	c     *httpConn
	ended bool
}

// past is a deadline that has passed.
var past = time.Unix(1, 0)

func (u *inUse) end() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.ended = true
	if u.c != nil {
		u.c.tc.SetDeadline(past)
	}
}

// roundTrip sends req over c and reads the response up to its body, which
// is then read from c.br: a header section of at most maxHeaderBytes, 1xx
// interim responses skipped. The connection's deadline is the request's.
func (u *inUse) roundTrip(c *httpConn, req *http.Request) (*http.Response, error) {
	dl, _ := req.Context().Deadline()
	u.mu.Lock()
	u.c = c
	if u.ended {
		dl = past
	}
	err := c.tc.SetDeadline(dl)
	u.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := req.Write(c.tc); err != nil {
		return nil, err
	}
	// The reader may buffer ahead of the header section: the bound allows
	// for one buffer more.
	c.in.limit = c.in.n + maxHeaderBytes + int64(c.br.Size())
	defer func() { c.in.limit = -1 }()
	for interim := 0; ; interim++ {
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			if errors.Is(err, errHeaderLimit) {
				return nil, fmt.Errorf("response headers exceed %d bytes", maxHeaderBytes)
			}
			return nil, err
		}
		if resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols && interim < 5 {
			continue
		}
		return resp, nil
	}
}

// errHeaderLimit stops reading a header section larger than maxHeaderBytes.
var errHeaderLimit = errors.New("header limit reached")

// meter counts the bytes read from a connection, and reads none past limit
// (unless negative): the bound of a response's header section.
type meter struct {
	r     io.Reader
	n     int64
	limit int64
}

func (m *meter) Read(b []byte) (int, error) {
	if m.limit >= 0 {
		if m.n >= m.limit {
			return 0, errHeaderLimit
		}
		b = b[:min(int64(len(b)), m.limit-m.n)]
	}
	n, err := m.r.Read(b)
	m.n += int64(n)
	return n, err
}
