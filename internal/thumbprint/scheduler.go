package thumbprint

import (
	"context"
	"io"
	"sync"
)

// DefaultConcurrency is the number of distinct hosts a Run has connections
// open to at once when Options.Concurrency is 0 (PROBE_CONCURRENCY).
const DefaultConcurrency = 64

// MaxConnsPerHost bounds a Run's connections open at once to one host: its
// discovery requests and handshakes. It leaves room for every handshake of a
// host (PROBE_HANDSHAKES is at most 5, plus the TLS 1.2 check) to run in
// parallel, without opening hundreds of connections to one identity provider
// that serves many providers (one EKS host serves every cluster of a region).
const MaxConnsPerHost = 8

// MaxIdlePerHost is the number of finished discovery connections a Run keeps
// open to one host for the next discovery request to it (HTTP/1.1
// keep-alive): one host serves many provider Urls (every EKS cluster of a
// region, every tenant of an Entra or Auth0 host).
const MaxIdlePerHost = 2

// scheduler grants connections to hosts: at most maxHosts distinct hosts
// with connections open at once, at most perHost connections open to one
// host. Requests wait in arrival order: a host's own queue, and hosts waiting
// for a free host slot in the order they first asked. A host that already
// holds a slot takes further connections without waiting for one, so one
// host's handshakes run in parallel.
//
// A connection parked idle (park) keeps its grant, so it counts against both
// bounds like any other, and goes to the next request for a connection to
// reuse to its host (acquireConn), handed on directly when one waits. Idle
// connections never make a request wait: when one would, the scheduler
// closes the host's own oldest idle connection (the host is at its bound),
// or every idle connection of the host whose oldest has been idle longest
// among the hosts that hold a slot with nothing but idle connections
// (another host waits for a slot), and only then gives the room on. Each is
// closed before its room is given on, outside the lock, by the goroutine
// whose call decided it.
//
// A request for a connection to reuse that finds none idle waits for one
// of the host's connections busy with a request, its handshake done (marked
// by acquireConn for a connection it returns, by sending for one its request
// opened: it will be parked within about one round trip, where a new
// connection costs three), when one is not already promised to another
// request and no request waits for the host's room: it is handed that
// connection when it is parked. If instead that connection is closed
// (release) its room goes to the waiting request, for a connection of its
// own; if its request goes on over a new connection (redial), the waiting
// request asks for room as any other, ahead of those queued after it. The
// waiting request is in no queue: the host's other requests (handshakes)
// are granted while the host has room.
type scheduler struct {
	mu       sync.Mutex
	maxHosts int
	perHost  int
	maxIdle  int
	active   int // hosts with at least one connection granted
	hosts    map[string]*hostSlot
	waiting  []*hostSlot // hosts with queued requests and no connection granted, in order
	seq      uint64      // park order
	closed   bool        // close was called: nothing more is parked
	// queued, when set (by tests), is called under the lock when a request
	// has to wait.
	queued func(host string)
}

// hostSlot is one host's state in the scheduler.
type hostSlot struct {
	name    string
	granted int // connections open: in use, idle and closing
	idle    []parked
	closing int // idle connections the scheduler is closing, still granted
	queue   []*ticket
	waiting bool     // in scheduler.waiting
	busy    []*grant // grants of reused connections carrying a request
}

// parked is an idle connection and when it was parked.
type parked struct {
	conn io.Closer
	seq  uint64
}

// ticket is one queued request for a connection.
type ticket struct {
	ready   chan struct{}
	reuse   bool // a parked connection will do (acquireConn)
	granted bool
	conn    io.Closer // the parked connection handed on with the grant, if any
	g       *grant    // the grant, once granted
	on      *grant    // the busy grant whose connection it waits for, if any
	gone    bool      // its requester stopped waiting before the grant
}

// evicted is an idle connection the scheduler decided to close.
type evicted struct {
	h    *hostSlot
	conn io.Closer
}

// grant is one connection's room with its host: released when the
// connection is closed, or handed to the scheduler with the connection by
// park.
type grant struct {
	s    *scheduler
	h    *hostSlot
	once sync.Once
	// Under s.mu:
	busy   bool    // in h.busy
	waiter *ticket // the request promised its connection
}

func newScheduler(maxHosts, perHost, maxIdle int) *scheduler {
	return &scheduler{maxHosts: max(maxHosts, 1), perHost: max(perHost, 1), maxIdle: max(maxIdle, 0), hosts: make(map[string]*hostSlot)}
}

// acquire waits until a connection to host may be opened, or ctx ends. The
// grant must be released once the connection is closed (or parked).
func (s *scheduler) acquire(ctx context.Context, host string) (*grant, error) {
	g, _, err := s.request(ctx, host, false)
	return g, err
}

// acquireConn is acquire for a request that can go over a connection
// parked idle: it returns the one parked last to host at once, or one parked
// while the request waits its turn or for a busy connection (handed on, not
// closed; see scheduler), with its grant; or a grant and no connection, for
// one of its own.
func (s *scheduler) acquireConn(ctx context.Context, host string) (*grant, io.Closer, error) {
	return s.request(ctx, host, true)
}

func (s *scheduler) request(ctx context.Context, host string, reuse bool) (*grant, io.Closer, error) {
	s.mu.Lock()
	h := s.hosts[host]
	if h == nil {
		h = &hostSlot{name: host}
		s.hosts[host] = h
	}
	if reuse && len(h.idle) > 0 {
		p := h.idle[len(h.idle)-1]
		h.idle = h.idle[:len(h.idle)-1]
		g := s.busyGrant(h)
		s.mu.Unlock()
		return g, p.conn, nil
	}
	if reuse && live(h.queue) == 0 {
		if b := h.unpromised(); b != nil {
			// Wait for b's connection rather than open one: see scheduler.
			t := &ticket{ready: make(chan struct{}), reuse: true, on: b}
			b.waiter = t
			if s.queued != nil {
				s.queued(host)
			}
			s.mu.Unlock()
			return s.wait(ctx, t)
		}
	}
	if len(h.queue) == 0 && s.free(h) {
		s.grant(h)
		s.mu.Unlock()
		return &grant{s: s, h: h}, nil, nil
	}
	t := &ticket{ready: make(chan struct{}), reuse: reuse}
	h.queue = append(h.queue, t)
	if h.granted == 0 && !h.waiting {
		h.waiting = true
		s.waiting = append(s.waiting, h)
	}
	if s.queued != nil {
		s.queued(host)
	}
	evict := append(s.evictOwn(h), s.evictSlots()...)
	s.mu.Unlock()
	s.settle(evict)
	return s.wait(ctx, t)
}

// wait waits for t's grant, or gives t up when ctx ends first.
func (s *scheduler) wait(ctx context.Context, t *ticket) (*grant, io.Closer, error) {
	select {
	case <-t.ready:
		return t.g, t.conn, nil
	case <-ctx.Done():
		s.mu.Lock()
		granted := t.granted
		t.gone = !granted
		if !granted && t.on != nil {
			// Its promise is free for another request.
			t.on.waiter, t.on = nil, nil
		}
		s.mu.Unlock()
		if granted {
			if t.conn != nil {
				t.conn.Close()
			}
			t.g.release()
		}
		return nil, nil, ctx.Err()
	}
}

// busyGrant is the grant of one of h's connections reused for a request.
func (s *scheduler) busyGrant(h *hostSlot) *grant {
	g := &grant{s: s, h: h, busy: true}
	h.busy = append(h.busy, g)
	return g
}

// unpromised is one of h's busy grants no request waits for, or nil.
func (h *hostSlot) unpromised() *grant {
	for _, g := range h.busy {
		if g.waiter == nil {
			return g
		}
	}
	return nil
}

// done ends g's busy state: it returns the request waiting for g's
// connection, if any, no longer waiting for it.
func (s *scheduler) done(g *grant) *ticket {
	if !g.busy {
		return nil
	}
	g.busy = false
	for i, b := range g.h.busy {
		if b == g {
			g.h.busy = append(g.h.busy[:i], g.h.busy[i+1:]...)
			break
		}
	}
	t := g.waiter
	g.waiter = nil
	if t != nil {
		t.on = nil
	}
	return t
}

// give grants t with a new grant of h (counted already), and conn if any.
func (s *scheduler) give(h *hostSlot, t *ticket, conn io.Closer) {
	if conn != nil {
		t.g = s.busyGrant(h)
	} else {
		t.g = &grant{s: s, h: h}
	}
	t.granted, t.conn = true, conn
	close(t.ready)
}

// release returns the grant's room: its connection is closed. Only the
// first release or park of a grant counts. A request waiting for the
// connection (see scheduler) gets the room instead.
func (g *grant) release() {
	g.once.Do(func() {
		s := g.s
		s.mu.Lock()
		if t := s.done(g); t != nil {
			s.give(g.h, t, nil)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		g.s.release(g.h)
	})
}

// sending reports that g's request goes out over the connection it opened
// (its handshake done), to be parked when it ends cleanly: a request for a
// connection to reuse may wait for it (see scheduler).
func (g *grant) sending() {
	s := g.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if !g.busy {
		g.busy = true
		g.h.busy = append(g.h.busy, g)
	}
}

// redial reports that g's request goes on over a new connection (its reused
// one failed, or it was redirected): a request waiting for g's connection
// asks for room of its own instead, ahead of the host's queue (it came
// before any of it).
func (g *grant) redial() {
	s := g.s
	s.mu.Lock()
	t := s.done(g)
	if t == nil {
		s.mu.Unlock()
		return
	}
	h := g.h
	if live(h.queue) == 0 && s.free(h) {
		s.grant(h)
		s.give(h, t, nil)
		s.mu.Unlock()
		return
	}
	// h holds a slot (g): only its own bound keeps t waiting.
	h.queue = append([]*ticket{t}, h.queue...)
	if s.queued != nil {
		s.queued(h.name)
	}
	evict := s.evictOwn(h)
	s.mu.Unlock()
	s.settle(evict)
}

// park hands conn, open and idle, to the scheduler with its grant: the next
// acquireConn of its host gets it, at once when a request waits for this
// connection (see scheduler) or the first request waiting for the host is
// one. The scheduler closes it at once instead (and
// releases the grant) when another kind of request waits for the host
// (a handshake), or after close; and later when another request needs its
// room, or when more than maxIdle connections to the host are idle.
func (g *grant) park(conn io.Closer) {
	parked := false
	g.once.Do(func() {
		parked = true
		g.s.park(g, conn)
	})
	if !parked {
		conn.Close() // released already: not the scheduler's
	}
}

func (s *scheduler) park(g *grant, conn io.Closer) {
	s.mu.Lock()
	h := g.h
	if t := s.done(g); t != nil {
		// The request waiting for this connection gets it; after close,
		// its room.
		if !s.closed {
			s.give(h, t, conn)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		conn.Close()
		s.mu.Lock()
		if t.gone {
			// It stopped waiting meanwhile: the room is given on.
			evict := s.released(h)
			s.mu.Unlock()
			s.settle(evict)
			return
		}
		s.give(h, t, nil)
		s.mu.Unlock()
		return
	}
	for len(h.queue) > 0 && h.queue[0].gone {
		h.queue = h.queue[1:]
	}
	if !s.closed && len(h.queue) > 0 && h.queue[0].reuse {
		// The next request waiting for the host can use it: handed on
		// with its grant.
		t := h.queue[0]
		h.queue = h.queue[1:]
		s.give(h, t, conn)
		s.mu.Unlock()
		return
	}
	if s.closed || live(h.queue) > h.closing {
		s.mu.Unlock()
		conn.Close()
		s.release(h)
		return
	}
	s.seq++
	h.idle = append(h.idle, parked{conn: conn, seq: s.seq})
	var evict []evicted
	if len(h.idle) > s.maxIdle {
		evict = append(evict, s.evictIdle(h, 1)...)
	}
	evict = append(evict, s.evictSlots()...)
	s.mu.Unlock()
	s.settle(evict)
}

// close closes every idle connection; later parks close theirs at once.
func (s *scheduler) close() {
	s.mu.Lock()
	s.closed = true
	var evict []evicted
	for _, h := range s.hosts {
		evict = append(evict, s.evictIdle(h, len(h.idle))...)
	}
	s.mu.Unlock()
	s.settle(evict)
}

// idle is the number of idle connections parked.
func (s *scheduler) idle() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, h := range s.hosts {
		n += len(h.idle)
	}
	return n
}

// free reports whether h may open one more connection now.
func (s *scheduler) free(h *hostSlot) bool {
	return h.granted < s.perHost && (h.granted > 0 || s.active < s.maxHosts)
}

func (s *scheduler) grant(h *hostSlot) {
	if h.granted == 0 {
		s.active++
	}
	h.granted++
}

// release returns one of h's connections, closed.
func (s *scheduler) release(h *hostSlot) {
	s.mu.Lock()
	evict := s.released(h)
	s.mu.Unlock()
	s.settle(evict)
}

// settle closes the evicted connections, then gives their room on, and so
// on while giving room on makes more idle connections to close.
func (s *scheduler) settle(evict []evicted) {
	for len(evict) > 0 {
		e := evict[0]
		evict = evict[1:]
		e.conn.Close()
		s.mu.Lock()
		e.h.closing--
		evict = append(evict, s.released(e.h)...)
		s.mu.Unlock()
	}
}

// released hands the room of one of h's connections, closed, on: to h's
// own queue first (it holds the slot), then to the hosts waiting for one. It
// returns the idle connections to close for the requests still waiting.
func (s *scheduler) released(h *hostSlot) []evicted {
	h.granted--
	if h.granted == 0 {
		s.active--
	}
	s.serve(h)
	for s.active < s.maxHosts && len(s.waiting) > 0 {
		w := s.waiting[0]
		s.waiting = s.waiting[1:]
		w.waiting = false
		s.serve(w)
		s.forget(w)
	}
	s.forget(h)
	return s.evictSlots()
}

// serve grants h's queued tickets while it has room.
func (s *scheduler) serve(h *hostSlot) {
	for len(h.queue) > 0 && s.free(h) {
		t := h.queue[0]
		h.queue = h.queue[1:]
		if t.gone {
			continue
		}
		s.grant(h)
		s.give(h, t, nil)
	}
	if len(h.queue) > 0 && h.granted == 0 && !h.waiting {
		// Its slot went to another host; it waits again, last.
		h.waiting = true
		s.waiting = append(s.waiting, h)
	}
}

// evictOwn picks h's idle connections to close for h's own queued
// requests, beyond those already closing: h holds a slot and is at its
// bound, or they would have been granted.
func (s *scheduler) evictOwn(h *hostSlot) []evicted {
	if h.granted == 0 {
		return nil
	}
	return s.evictIdle(h, live(h.queue)-h.closing)
}

// evictSlots picks idle connections to close for the hosts waiting for a
// slot, beyond the slots already being freed: all of the idle connections
// of a host with nothing else open, the host whose oldest has been idle
// longest first.
func (s *scheduler) evictSlots() []evicted {
	need := 0
	for _, w := range s.waiting {
		if live(w.queue) > 0 {
			need++
		}
	}
	if need == 0 {
		return nil
	}
	need -= s.maxHosts - s.active // free slots: none once serve has run
	for _, h := range s.hosts {
		if h.granted > 0 && h.granted == h.closing && live(h.queue) == 0 {
			need-- // its slot is being freed
		}
	}
	var evict []evicted
	for ; need > 0; need-- {
		var oldest *hostSlot
		for _, h := range s.hosts {
			if len(h.idle) > 0 && h.granted == len(h.idle)+h.closing && (oldest == nil || h.idle[0].seq < oldest.idle[0].seq) {
				oldest = h
			}
		}
		if oldest == nil {
			break
		}
		evict = append(evict, s.evictIdle(oldest, len(oldest.idle))...)
	}
	return evict
}

// evictIdle takes up to n of h's idle connections, oldest first, to close.
func (s *scheduler) evictIdle(h *hostSlot, n int) []evicted {
	n = min(n, len(h.idle))
	if n <= 0 {
		return nil
	}
	evict := make([]evicted, n)
	for i, p := range h.idle[:n] {
		evict[i] = evicted{h: h, conn: p.conn}
	}
	h.idle = append([]parked(nil), h.idle[n:]...)
	h.closing += n
	return evict
}

// live is the number of tickets whose requesters still wait.
func live(queue []*ticket) int {
	n := 0
	for _, t := range queue {
		if !t.gone {
			n++
		}
	}
	return n
}

// forget drops a host with nothing granted, queued or waiting.
func (s *scheduler) forget(h *hostSlot) {
	if h.granted == 0 && !h.waiting {
		// Tickets whose requesters left are dropped with it.
		if live(h.queue) == 0 && s.hosts[h.name] == h {
			delete(s.hosts, h.name)
		}
	}
}
