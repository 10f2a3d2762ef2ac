package thumbprint

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
)

// HTTP/2 discovery connections. A discovery connection offers h2 and
// http/1.1 through ALPN; a server that chooses h2 (most identity providers
// on the Internet do) takes every discovery request of the run to it over
// that one connection, at once, each a round trip, where HTTP/1.1 carries
// one request at a time. A request for a host whose first connection is
// still being opened connects TCP at once but sends no ClientHello until
// that connection's protocol is known (preDial): h2, it closes its TCP
// connection unused (the host sees no handshake of it) and shares the
// host's; HTTP/1.1, it goes on over its own, at most a round trip later
// than without h2. A host that answers with HTTP/1.1 is not offered h2
// again in the run, so its requests never wait for that again.
//
// A shared connection holds one grant of its host in the scheduler while
// it carries requests, like any connection; when its last request ends it
// is parked (idle, bounded and evicted as every parked connection is), and
// the next request for the host takes it back.

// sharedConn is a discovery connection on which the server chose HTTP/2.
type sharedConn struct {
	hc *httpConn // the TLS connection: what its handshake served and how it verified
	cc *http.ClientConn
	// Under h2State.mu:
	g      *grant // its room with its host while it carries requests; nil while parked
	refs   int    // requests it carries
	broken bool   // a request failed on it: closed when the last ends
}

func (c *sharedConn) Close() error { return c.cc.Close() }

// h2Host is what a Run knows of one host's HTTP/2 discovery connections.
type h2Host struct {
	active  *sharedConn   // the connection taking more requests
	dialing chan struct{} // while a connection offering h2 is opened and none is active: closed when it is known
	http1   bool          // the host answered h2 with HTTP/1.1: not offered again
	h2      bool          // the host chose h2 on a connection of the run
}

// h2State is a Run's HTTP/2 connections, per host.
type h2State struct {
	mu    sync.Mutex
	hosts map[string]*h2Host
	once  sync.Once
	tr    *http.Transport
}

func (s *h2State) host(name string) *h2Host {
	if s.hosts == nil {
		s.hosts = make(map[string]*h2Host)
	}
	h := s.hosts[name]
	if h == nil {
		h = &h2Host{}
		s.hosts[name] = h
	}
	return h
}

// share returns host's active connection with one request more on it; or,
// while the host's first connection offering h2 is being opened, a channel
// closed once its protocol is known; or neither. lead is true when the
// caller is to open the host's connection offering h2 (it must call led
// once it knows, or does not dial); with a channel, that the host speaks
// h2 and its parked connection is being taken back: the caller waits.
func (s *h2State) share(host string) (sc *sharedConn, known <-chan struct{}, lead bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.host(host)
	if c := h.reserve(); c != nil {
		return c, nil, false
	}
	if h.http1 {
		return nil, nil, false
	}
	if h.dialing != nil {
		if h.h2 {
			// Its connection is being taken back: no TCP connection of
			// the caller's, it waits for that one (fetchDiscovery).
			return nil, h.dialing, true
		}
		return nil, h.dialing, false
	}
	h.dialing = make(chan struct{})
	return nil, nil, true
}

// led ends a leader's dial: sc is the h2 connection it opened or took back
// (nil: none), http1 whether the host answered h2 with HTTP/1.1. Requests
// waiting for the host go on.
func (s *h2State) led(host string, sc *sharedConn, http1 bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.host(host)
	if sc != nil {
		h.h2 = true
		if h.active == nil && !sc.broken {
			h.active = sc
		}
	}
	if http1 {
		h.http1 = true
	}
	if h.dialing != nil {
		close(h.dialing)
		h.dialing = nil
	}
}

// proto reports whether host chose h2 on a connection of this run, and
// whether it answered h2 with HTTP/1.1.
func (s *h2State) proto(host string) (h2, http1 bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.hosts[host]; h != nil {
		return h.h2, h.http1
	}
	return false, false
}

// take returns host's active connection with one request more on it, or
// nil.
func (s *h2State) take(host string) *sharedConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.hosts[host]; h != nil {
		return h.reserve()
	}
	return nil
}

// reserve returns h's active connection with one request more on it, or
// nil; an active connection that takes no more (broken, closed, or at the
// server's stream limit) stops being h's. Under h2State.mu.
func (h *h2Host) reserve() *sharedConn {
	c := h.active
	if c == nil {
		return nil
	}
	if !c.broken && c.cc.Reserve() == nil {
		c.refs++
		return c
	}
	h.active = nil
	return nil
}

// joinShared sends a request that opened a TCP connection while its host's
// first connection was opened, and closed it when the host chose h2, over
// the host's HTTP/2 connection: the active one, or the one parked since
// (taken back while g, the request's room, is still held, so that the
// scheduler cannot close it for another host meanwhile); else as any
// request.
func (r *Run) joinShared(ctx context.Context, t target, g *grant) (fetched, error) {
	if sc := r.h2.take(t.host); sc != nil {
		g.release()
		return r.overShared(ctx, t, sc, true)
	}
	g2, idle, err := r.sched.acquireConn(ctx, t.host)
	g.release()
	if err != nil {
		return fetched{}, err
	}
	if sc, ok := idle.(*sharedConn); ok {
		return r.carry(ctx, t, sc, g2, true)
	}
	if idle != nil {
		g2.park(idle)
	} else {
		g2.release()
	}
	return r.fetchDiscovery(ctx, t)
}

// preDial is a request's new connection to host while the host's first
// connection is being opened (known closes when its protocol is known):
// the TCP connection, opened at once, which the request goes on over
// (its TLS handshake) when the host turns out to speak HTTP/1.1, as it
// would have without h2; or nil when the host speaks h2, before or after
// the TCP connection is open (then closed, no TLS byte sent: the host sees
// no handshake), and the request shares the host's connection.
func (r *Run) preDial(ctx context.Context, host string, known <-chan struct{}) (net.Conn, error) {
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type dialed struct {
		c   net.Conn
		err error
	}
	ch := make(chan dialed, 1)
	go func() {
		c, err := r.p.dialTCP(dctx, host)
		ch <- dialed{c, err}
	}()
	var d dialed
	select {
	case d = <-ch:
		if d.err != nil {
			return nil, d.err
		}
		select {
		case <-known:
		case <-ctx.Done():
			d.c.Close()
			return nil, ctx.Err()
		}
	case <-known:
		if h2, _ := r.h2.proto(host); h2 {
			cancel()
			if d = <-ch; d.c != nil {
				d.c.Close()
			}
			return nil, nil
		}
		if d = <-ch; d.err != nil {
			return nil, d.err
		}
	}
	if h2, _ := r.h2.proto(host); h2 {
		d.c.Close()
		return nil, nil
	}
	return d.c, nil
}

// carry sends t's request over sc, a connection this request opened
// (reused false) or took back parked from the scheduler, with g its room:
// sc becomes the host's active connection, and the requests waiting for
// the host's protocol go on.
func (r *Run) carry(ctx context.Context, t target, sc *sharedConn, g *grant, reused bool) (fetched, error) {
	r.h2.mu.Lock()
	sc.g, sc.refs, sc.broken = g, 1, false
	r.h2.mu.Unlock()
	r.h2.led(t.host, sc, false)
	return r.overShared(ctx, t, sc, reused)
}

// release ends one request on sc; the last one parks it with its grant, or
// closes it when broken.
func (s *h2State) release(host string, sc *sharedConn, failed bool) {
	s.mu.Lock()
	if failed {
		sc.broken = true
	}
	sc.refs--
	if sc.refs > 0 {
		s.mu.Unlock()
		return
	}
	if h := s.hosts[host]; h != nil && h.active == sc {
		h.active = nil
	}
	g, broken := sc.g, sc.broken
	sc.g = nil
	s.mu.Unlock()
	if broken {
		sc.Close()
		g.release()
		return
	}
	g.park(sc)
}

// preDialed carries a connection to transport's DialTLSContext.
type preDialed struct{}

// clientConn turns hc, on which the server chose h2, into an HTTP/2 client
// connection.
func (s *h2State) clientConn(ctx context.Context, hc *httpConn) (*http.ClientConn, error) {
	s.once.Do(func() {
		s.tr = &http.Transport{
			ForceAttemptHTTP2: true,
			DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				tc, _ := ctx.Value(preDialed{}).(net.Conn)
				return tc, nil // never nil: clientConn passes one
			},
			MaxResponseHeaderBytes: maxHeaderBytes,
			DisableCompression:     true,
		}
	})
	return s.tr.NewClientConn(context.WithValue(ctx, preDialed{}, hc.tc), "https", hc.addr)
}

// errSharedFailed is a request on a reused shared connection that failed
// before its response: the connection's fault; the request goes once more
// over a new connection.
var errSharedFailed = errors.New("thumbprint: shared connection failed")

// fetchShared GETs t's discovery document over sc (carrying the request
// already). A redirect is followed over HTTP/1.1 connections of its own
// (fetchHTTP1), as is a request that failed on a reused connection
// (errSharedFailed, once).
func (r *Run) fetchShared(ctx context.Context, t target, sc *sharedConn, reused bool) (_ fetched, err error) {
	failed := false
	defer func() { r.h2.release(t.host, sc, failed) }()
	caller := ctx
	ctx, cancel := r.p.bounded(ctx)
	defer cancel()
	defer func() { err = overTime(caller, ctx, err) }()
	req, err := discoveryRequest(ctx, t.discoveryURL)
	if err != nil {
		if reused {
			sc.cc.Release() // the slot share reserved
		}
		return fetched{}, errorf(KindBadURL, "%v", err)
	}
	resp, err := sc.cc.RoundTrip(req)
	if err != nil {
		failed = true
		if reused && expired(ctx) == nil {
			return fetched{}, errSharedFailed
		}
		return fetched{}, err
	}
	defer resp.Body.Close()
	if next, err := redirect(resp); next != nil {
		return fetched{}, errRedirected
	} else if err != nil {
		return fetched{}, err
	}
	body, err := readBody(resp, "")
	if err != nil {
		return fetched{}, err
	}
	doc, err := parseDiscovery(body)
	if err != nil {
		return fetched{}, err
	}
	f := fetched{discovery: doc, verified: true}
	f.note(sc.hc, t.host)
	return f, nil
}

// errRedirected is a redirect answered over a shared connection: the
// request starts over on HTTP/1.1 connections, which follow it.
var errRedirected = errors.New("thumbprint: redirected")
