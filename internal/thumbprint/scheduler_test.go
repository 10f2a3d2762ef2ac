package thumbprint

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// waitLimit bounds how long a test waits for an event that must happen;
// it is never reached when the code is right.
const waitLimit = 5 * time.Second

// acquired is the outcome of one acquire started in the background.
type acquired struct {
	host    string
	release func()
	err     error
}

func acquireAsync(ctx context.Context, s *scheduler, host string) <-chan acquired {
	ch := make(chan acquired, 1)
	go func() {
		g, err := s.acquire(ctx, host)
		a := acquired{host: host, err: err}
		if g != nil {
			a.release = g.release
		}
		ch <- a
	}()
	return ch
}

// granted waits for ch's grant.
func granted(t *testing.T, ch <-chan acquired) acquired {
	t.Helper()
	select {
	case a := <-ch:
		if a.err != nil {
			t.Fatalf("acquire %s: %v", a.host, a.err)
		}
		return a
	case <-time.After(waitLimit):
		t.Fatal("acquire not granted")
		return acquired{}
	}
}

// watch makes s report each queued request on the returned channel.
func watch(s *scheduler) <-chan string {
	ch := make(chan string, 16)
	s.queued = func(host string) { ch <- host }
	return ch
}

// pending asserts that the acquire of host started just before has been
// queued, not granted.
func pending(t *testing.T, queued <-chan string, host string, ch <-chan acquired) {
	t.Helper()
	select {
	case got := <-queued:
		if got != host {
			t.Fatalf("%s queued, want %s", got, host)
		}
	case a := <-ch:
		t.Fatalf("acquire %s granted while it should wait (err %v)", host, a.err)
	case <-time.After(waitLimit):
		t.Fatalf("acquire %s neither granted nor queued", host)
	}
	select {
	case a := <-ch:
		t.Fatalf("acquire %s granted while it should wait (err %v)", host, a.err)
	default:
	}
}

// still asserts that a queued acquire has not been granted yet.
func still(t *testing.T, host string, ch <-chan acquired) {
	t.Helper()
	select {
	case a := <-ch:
		t.Fatalf("acquire %s granted while it should wait (err %v)", host, a.err)
	default:
	}
}

func TestSchedulerBoundsHosts(t *testing.T) {
	s := newScheduler(2, 3, 0)
	q := watch(s)
	ctx := t.Context()
	a1 := granted(t, acquireAsync(ctx, s, "a"))
	b1 := granted(t, acquireAsync(ctx, s, "b"))
	// A host holding a slot takes more connections at once, up to perHost.
	a2 := granted(t, acquireAsync(ctx, s, "a"))
	a3 := granted(t, acquireAsync(ctx, s, "a"))
	a4 := acquireAsync(ctx, s, "a")
	pending(t, q, "a", a4)
	// A third host waits for a slot; so does a fourth, after it.
	c := acquireAsync(ctx, s, "c")
	pending(t, q, "c", c)
	d := acquireAsync(ctx, s, "d")
	pending(t, q, "d", d)

	// A connection of a returns: a's own queue goes first (it holds the slot).
	a1.release()
	a4g := granted(t, a4)
	still(t, "c", c)
	// b closes its only connection: its slot goes to c, the first waiting.
	b1.release()
	cg := granted(t, c)
	still(t, "d", d)
	for _, a := range []acquired{a2, a3, a4g} {
		a.release()
	}
	dg := granted(t, d)
	cg.release()
	dg.release()
	dg.release() // a second release is ignored
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active != 0 || len(s.hosts) != 0 || len(s.waiting) != 0 {
		t.Errorf("after every release: %d active, hosts %v, %d waiting; want none", s.active, s.hosts, len(s.waiting))
	}
}

func TestSchedulerWaiterHonoursItsContext(t *testing.T) {
	s := newScheduler(1, 1, 0)
	q := watch(s)
	a := granted(t, acquireAsync(t.Context(), s, "a"))
	ctx, cancel := context.WithCancel(t.Context())
	b := acquireAsync(ctx, s, "b")
	pending(t, q, "b", b)
	c := acquireAsync(t.Context(), s, "c")
	pending(t, q, "c", c)
	cancel()
	select {
	case got := <-b:
		if !errors.Is(got.err, context.Canceled) || got.release != nil {
			t.Fatalf("canceled waiter: release %v err %v, want context.Canceled", got.release != nil, got.err)
		}
	case <-time.After(waitLimit):
		t.Fatal("canceled waiter still waiting")
	}
	// The slot b gave up goes to c, not to nobody.
	a.release()
	granted(t, c).release()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active != 0 || len(s.hosts) != 0 {
		t.Errorf("%d active, hosts %v; want none", s.active, s.hosts)
	}
}

// idleConn is a parked connection of a scheduler test: Close records that it
// was closed and how many hosts held a slot then (its room is given on only
// after it is closed).
type idleConn struct {
	s      *scheduler
	name   string
	closed chan int // active hosts at Close
}

func newIdleConn(s *scheduler, name string) *idleConn {
	return &idleConn{s: s, name: name, closed: make(chan int, 1)}
}

func (c *idleConn) Close() error {
	c.s.mu.Lock()
	active := c.s.active
	c.s.mu.Unlock()
	c.closed <- active
	return nil
}

// isClosed reports whether c was closed, and the active hosts then.
func (c *idleConn) isClosed() (bool, int) {
	select {
	case n := <-c.closed:
		c.closed <- n
		return true, n
	default:
		return false, 0
	}
}

// parkNew acquires a connection to host, granted at once, and parks it.
func parkNew(t *testing.T, s *scheduler, host string) *idleConn {
	t.Helper()
	g, err := s.acquire(t.Context(), host)
	if err != nil {
		t.Fatal(err)
	}
	c := newIdleConn(s, host)
	g.park(c)
	return c
}

// drained asserts that s holds nothing: no slot, host, waiter or idle connection.
func drained(t *testing.T, s *scheduler) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active != 0 || len(s.hosts) != 0 || len(s.waiting) != 0 {
		t.Errorf("%d active, hosts %v, %d waiting; want none", s.active, s.hosts, len(s.waiting))
	}
}

// TestSchedulerIdleConnections: parked connections keep their room, go to
// the next take of their host (the last parked first), and are closed, before
// their room is given on, whenever a request would otherwise wait.
func TestSchedulerIdleConnections(t *testing.T) {
	t.Run("another host waits for a slot", func(t *testing.T) {
		s := newScheduler(2, 3, 2)
		a := parkNew(t, s, "a")
		b := parkNew(t, s, "b")
		// Both slots are held by idle connections only: c takes the one
		// idle longest, a's, once it is closed.
		cg := granted(t, acquireAsync(t.Context(), s, "c"))
		if closed, active := a.isClosed(); !closed || active != 2 {
			t.Fatalf("a's idle connection closed %v with %d hosts active; want closed before its slot was given on (2)", closed, active)
		}
		if closed, _ := b.isClosed(); closed {
			t.Error("b's idle connection closed; only one slot was needed")
		}
		if g, c, err := s.acquireConn(t.Context(), "b"); err != nil || c != b {
			t.Errorf("acquireConn b = %v, %v; want its idle connection", c, err)
		} else {
			g.release()
		}
		cg.release()
		drained(t, s)
	})
	t.Run("a host with connections in use keeps its slot until they end", func(t *testing.T) {
		s := newScheduler(1, 3, 2)
		q := watch(s)
		a1 := granted(t, acquireAsync(t.Context(), s, "a"))
		a := parkNew(t, s, "a")
		b := acquireAsync(t.Context(), s, "b")
		pending(t, q, "b", b)
		if closed, _ := a.isClosed(); closed {
			t.Fatal("a's idle connection closed while a had another in use: no slot would be freed")
		}
		a1.release()
		bg := granted(t, b)
		if closed, active := a.isClosed(); !closed || active != 1 {
			t.Errorf("a's idle connection closed %v with %d hosts active; want closed before b's grant (1)", closed, active)
		}
		bg.release()
		drained(t, s)
	})
	t.Run("the host at its bound", func(t *testing.T) {
		s := newScheduler(1, 2, 2)
		a := parkNew(t, s, "a")
		a2 := granted(t, acquireAsync(t.Context(), s, "a"))
		// a holds 2 connections, its bound, one of them idle: a third
		// request closes it rather than wait.
		a3 := granted(t, acquireAsync(t.Context(), s, "a"))
		if closed, _ := a.isClosed(); !closed {
			t.Error("the idle connection was not closed for its host's own request")
		}
		a2.release()
		a3.release()
		drained(t, s)
	})
	t.Run("parked while its host's requests wait", func(t *testing.T) {
		s := newScheduler(1, 1, 2)
		q := watch(s)
		g, err := s.acquire(t.Context(), "a")
		if err != nil {
			t.Fatal(err)
		}
		a2 := acquireAsync(t.Context(), s, "a")
		pending(t, q, "a", a2)
		c := newIdleConn(s, "a")
		g.park(c)
		granted(t, a2).release()
		if closed, _ := c.isClosed(); !closed {
			t.Error("a connection parked while its host waited for room was kept")
		}
		drained(t, s)
	})
	t.Run("handed on to a request waiting for a connection to reuse", func(t *testing.T) {
		s := newScheduler(1, 1, 2)
		q := watch(s)
		g, err := s.acquire(t.Context(), "a")
		if err != nil {
			t.Fatal(err)
		}
		type got struct {
			g    *grant
			conn io.Closer
		}
		ch := make(chan got, 1)
		go func() {
			g, c, err := s.acquireConn(t.Context(), "a")
			if err != nil {
				t.Error(err)
			}
			ch <- got{g, c}
		}()
		if host := <-q; host != "a" {
			t.Fatalf("%s queued, want a", host)
		}
		c := newIdleConn(s, "a")
		g.park(c)
		select {
		case r := <-ch:
			if r.conn != c {
				t.Errorf("waiting request got %v, want the connection parked", r.conn)
			}
			if closed, _ := c.isClosed(); closed || s.idle() != 0 {
				t.Errorf("handed-on connection closed %v, %d idle; want open, none idle", closed, s.idle())
			}
			r.g.release()
		case <-time.After(waitLimit):
			t.Fatal("the waiting request did not get the parked connection")
		}
		drained(t, s)
	})
	t.Run("take, at most maxIdle, close", func(t *testing.T) {
		s := newScheduler(1, 8, 2)
		c1, c2, c3 := parkNew(t, s, "a"), parkNew(t, s, "a"), parkNew(t, s, "a")
		if closed, _ := c1.isClosed(); !closed || s.idle() != 2 {
			t.Errorf("oldest of 3 parked closed %v, %d idle; want it closed, 2 idle", closed, s.idle())
		}
		g, c, err := s.acquireConn(t.Context(), "a")
		if err != nil || c != c3 {
			t.Fatalf("acquireConn = %v, %v; want the last parked", c, err)
		}
		g.park(c)
		s.close()
		for _, c := range []*idleConn{c2, c3} {
			if closed, _ := c.isClosed(); !closed {
				t.Errorf("%s: idle connection left open by close", c.name)
			}
		}
		if g, c, err := s.acquireConn(t.Context(), "a"); err != nil || c != nil {
			t.Errorf("acquireConn after close = %v, %v; want a grant for a new connection", c, err)
		} else {
			g.release()
		}
		after := parkNew(t, s, "a")
		if closed, _ := after.isClosed(); !closed {
			t.Error("a connection parked after close was kept")
		}
		drained(t, s)
	})
}

// took is the outcome of one acquireConn started in the background.
type took struct {
	g    *grant
	conn io.Closer
	err  error
}

func acquireConnAsync(ctx context.Context, s *scheduler, host string) <-chan took {
	ch := make(chan took, 1)
	go func() {
		g, c, err := s.acquireConn(ctx, host)
		ch <- took{g, c, err}
	}()
	return ch
}

// got waits for ch's grant.
func got(t *testing.T, ch <-chan took) took {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("acquireConn: %v", r.err)
		}
		return r
	case <-time.After(waitLimit):
		t.Fatal("acquireConn not granted")
		return took{}
	}
}

// waits asserts that the acquireConn started just before waits (for a
// connection or for room): reported as queued, not granted.
func waits(t *testing.T, queued <-chan string, ch <-chan took) {
	t.Helper()
	select {
	case <-queued:
	case r := <-ch:
		t.Fatalf("acquireConn granted (conn %v, err %v) while it should wait", r.conn, r.err)
	case <-time.After(waitLimit):
		t.Fatal("acquireConn neither granted nor queued")
	}
	select {
	case r := <-ch:
		t.Fatalf("acquireConn granted (conn %v, err %v) while it should wait", r.conn, r.err)
	default:
	}
}

// busyConn returns a grant of host busy with a request over c, a
// connection parked and taken again (a reused one).
func busyConn(t *testing.T, s *scheduler, host string) (*grant, *idleConn) {
	t.Helper()
	c := parkNew(t, s, host)
	g, conn, err := s.acquireConn(t.Context(), host)
	if err != nil || conn != c {
		t.Fatalf("acquireConn %s = %v, %v; want its idle connection", host, conn, err)
	}
	return g, c
}

// waitingFor sets up a scheduler of one slot, perHost connections per
// host and 2 idle, with a busy grant g of host a over c, and a request w
// for a connection to reuse to a, waiting for it.
func waitingFor(t *testing.T, perHost int) (*scheduler, <-chan string, *grant, *idleConn, <-chan took) {
	t.Helper()
	s := newScheduler(1, perHost, 2)
	q := watch(s)
	g, c := busyConn(t, s, "a")
	w := acquireConnAsync(t.Context(), s, "a")
	waits(t, q, w)
	return s, q, g, c, w
}

// grantedTo reports the connections granted to host.
func (s *scheduler) grantedTo(host string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.hosts[host]; h != nil {
		return h.granted
	}
	return 0
}

// TestSchedulerWaitsForBusyConnection: a request for a connection to reuse
// that finds none idle, but one of its host's connections busy with a
// request (reused, or opened and sending), waits for that one rather than
// open one, though the host has room: it gets the connection when it is
// parked, or its room when it is closed, or asks for room when its request
// redials; it gives up when its context ends. The host's other requests do
// not wait behind it, and a second such request does not wait for a
// connection already promised.
func TestSchedulerWaitsForBusyConnection(t *testing.T) {
	t.Run("handed the connection when it is parked", func(t *testing.T) {
		s, q, g, c, w := waitingFor(t, 8)
		// A handshake of the host is granted at once beside it, and so is a
		// second request for a connection to reuse (the busy one is
		// promised): for a connection of its own.
		hs := granted(t, acquireAsync(t.Context(), s, "a"))
		if r := got(t, acquireConnAsync(t.Context(), s, "a")); r.conn != nil {
			t.Errorf("second request got %v, want a grant for a new connection", r.conn)
		} else {
			r.g.release()
		}
		g.park(c)
		r := got(t, w)
		if r.conn != c {
			t.Fatalf("waiting request got %v, want the busy connection", r.conn)
		}
		if closed, _ := c.isClosed(); closed || s.idle() != 0 || s.grantedTo("a") != 2 {
			t.Errorf("connection closed %v, %d idle, %d granted; want it handed on open, none idle, 2 granted", closed, s.idle(), s.grantedTo("a"))
		}
		// The connection handed on is busy in its turn.
		w2 := acquireConnAsync(t.Context(), s, "a")
		waits(t, q, w2)
		r.g.park(c)
		if r2 := got(t, w2); r2.conn != c {
			t.Errorf("next waiting request got %v, want the connection", r2.conn)
		} else {
			r2.g.release()
		}
		hs.release()
		drained(t, s)
	})
	t.Run("a connection opened and sending", func(t *testing.T) {
		s := newScheduler(1, 8, 2)
		q := watch(s)
		g, conn, err := s.acquireConn(t.Context(), "a")
		if err != nil || conn != nil {
			t.Fatalf("acquireConn = %v, %v; want a grant for a new connection", conn, err)
		}
		// Dialing: a request beside it opens its own.
		if r := got(t, acquireConnAsync(t.Context(), s, "a")); r.conn != nil {
			t.Errorf("request beside a dial got %v, want a grant for a new connection", r.conn)
		} else {
			r.g.release()
		}
		g.sending()
		w := acquireConnAsync(t.Context(), s, "a")
		waits(t, q, w)
		c := newIdleConn(s, "a")
		g.park(c)
		if r := got(t, w); r.conn != c {
			t.Errorf("waiting request got %v, want the connection parked", r.conn)
		} else {
			r.g.release()
		}
		drained(t, s)
	})
	t.Run("its room when the connection is closed", func(t *testing.T) {
		s, q, g, c, w := waitingFor(t, 2)
		hs := granted(t, acquireAsync(t.Context(), s, "a")) // the host at its bound
		hs2 := acquireAsync(t.Context(), s, "a")
		pending(t, q, "a", hs2)
		c.Close()
		g.release()
		r := got(t, w)
		if r.conn != nil {
			t.Fatalf("waiting request got %v, want a grant for a new connection", r.conn)
		}
		// The room went to the request that waited first, within the bound.
		still(t, "a", hs2)
		if n := s.grantedTo("a"); n != 2 {
			t.Errorf("%d granted, want 2 (the bound)", n)
		}
		r.g.release()
		granted(t, hs2).release()
		hs.release()
		drained(t, s)
	})
	t.Run("room of its own when the request redials", func(t *testing.T) {
		s, q, g, c, w := waitingFor(t, 2)
		c.Close()
		g.redial()
		r := got(t, w)
		if r.conn != nil {
			t.Fatalf("waiting request got %v, want a grant for a new connection", r.conn)
		}
		// At the bound: a request that waits for a connection goes first
		// when the redial leaves no room.
		r.g.release()
		g.sending() // the new connection of g's request
		w = acquireConnAsync(t.Context(), s, "a")
		waits(t, q, w)
		hs := granted(t, acquireAsync(t.Context(), s, "a"))
		hs2 := acquireAsync(t.Context(), s, "a")
		pending(t, q, "a", hs2)
		g.redial()
		waits(t, q, w) // queued now, for room
		hs.release()
		if r := got(t, w); r.conn != nil {
			t.Errorf("request got %v, want a grant for a new connection", r.conn)
		} else {
			still(t, "a", hs2)
			r.g.release()
		}
		granted(t, hs2).release()
		g.release()
		drained(t, s)
	})
	t.Run("gives up when its context ends", func(t *testing.T) {
		s := newScheduler(1, 8, 2)
		q := watch(s)
		g, c := busyConn(t, s, "a")
		ctx, cancel := context.WithCancel(t.Context())
		w := acquireConnAsync(ctx, s, "a")
		waits(t, q, w)
		cancel()
		select {
		case r := <-w:
			if !errors.Is(r.err, context.Canceled) || r.g != nil {
				t.Fatalf("canceled request: grant %v, err %v; want context.Canceled", r.g, r.err)
			}
		case <-time.After(waitLimit):
			t.Fatal("canceled request still waiting")
		}
		// The connection is free to be promised again.
		w2 := acquireConnAsync(t.Context(), s, "a")
		waits(t, q, w2)
		g.park(c)
		if r := got(t, w2); r.conn != c {
			t.Errorf("next waiting request got %v, want the connection", r.conn)
		} else {
			r.g.park(c)
		}
		s.close()
		if closed, _ := c.isClosed(); !closed {
			t.Error("connection left open by close")
		}
		drained(t, s)
	})
	t.Run("parked after close", func(t *testing.T) {
		s, _, g, c, w := waitingFor(t, 8)
		s.close()
		g.park(c)
		if r := got(t, w); r.conn != nil {
			t.Errorf("waiting request got %v after close, want a grant for a new connection", r.conn)
		} else {
			r.g.release()
		}
		if closed, _ := c.isClosed(); !closed {
			t.Error("connection parked after close was kept")
		}
		drained(t, s)
	})
	t.Run("more hosts than slots", func(t *testing.T) {
		s, q, g, c, w := waitingFor(t, 8)
		b := acquireAsync(t.Context(), s, "b")
		pending(t, q, "b", b)
		// a's connection closes: its room goes to a's waiting request, and
		// a keeps the only slot.
		c.Close()
		g.release()
		r := got(t, w)
		still(t, "b", b)
		s.mu.Lock()
		active := s.active
		s.mu.Unlock()
		if r.conn != nil || active != 1 {
			t.Errorf("waiting request got %v with %d hosts active; want a grant for a new connection, 1 active", r.conn, active)
		}
		r.g.release()
		granted(t, b).release()
		drained(t, s)
	})
}
