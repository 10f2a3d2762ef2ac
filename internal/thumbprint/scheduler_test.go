package thumbprint

import (
	"context"
	"errors"
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
