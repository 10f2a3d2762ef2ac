package thumbprint

import (
	"context"
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

// scheduler grants connections to hosts: at most maxHosts distinct hosts
// with connections open at once, at most perHost connections open to one
// host. Requests wait in arrival order: a host's own queue, and hosts waiting
// for a free host slot in the order they first asked. A host that already
// holds a slot takes further connections without waiting for one, so one
// host's handshakes run in parallel.
type scheduler struct {
	mu       sync.Mutex
	maxHosts int
	perHost  int
	active   int // hosts with at least one connection granted
	hosts    map[string]*hostSlot
	waiting  []*hostSlot // hosts with queued requests and no connection granted, in order
	// queued, when set (by tests), is called under the lock when a request
	// has to wait.
	queued func(host string)
}

// hostSlot is one host's state in the scheduler.
type hostSlot struct {
	name    string
	granted int
	queue   []*ticket
	waiting bool // in scheduler.waiting
}

// ticket is one queued request for a connection.
type ticket struct {
	ready   chan struct{}
	granted bool
	gone    bool // its requester stopped waiting before the grant
}

func newScheduler(maxHosts, perHost int) *scheduler {
	return &scheduler{maxHosts: max(maxHosts, 1), perHost: max(perHost, 1), hosts: make(map[string]*hostSlot)}
}

// acquire waits until a connection to host may be opened, or ctx ends. The
// returned release must be called once the connection is closed.
func (s *scheduler) acquire(ctx context.Context, host string) (release func(), err error) {
	s.mu.Lock()
	h := s.hosts[host]
	if h == nil {
		h = &hostSlot{name: host}
		s.hosts[host] = h
	}
	if len(h.queue) == 0 && s.free(h) {
		s.grant(h)
		s.mu.Unlock()
		return s.releaser(h), nil
	}
	t := &ticket{ready: make(chan struct{})}
	h.queue = append(h.queue, t)
	if h.granted == 0 && !h.waiting {
		h.waiting = true
		s.waiting = append(s.waiting, h)
	}
	if s.queued != nil {
		s.queued(host)
	}
	s.mu.Unlock()

	select {
	case <-t.ready:
		return s.releaser(h), nil
	case <-ctx.Done():
		s.mu.Lock()
		granted := t.granted
		t.gone = !granted
		s.mu.Unlock()
		if granted {
			s.release(h)
		}
		return nil, ctx.Err()
	}
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

func (s *scheduler) releaser(h *hostSlot) func() {
	var once sync.Once
	return func() { once.Do(func() { s.release(h) }) }
}

// release returns one of h's connections and hands the freed room on: to
// h's own queue first (it holds the slot), then to the hosts waiting for one.
func (s *scheduler) release(h *hostSlot) {
	s.mu.Lock()
	defer s.mu.Unlock()
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
		t.granted = true
		close(t.ready)
	}
	if len(h.queue) > 0 && h.granted == 0 && !h.waiting {
		// Its slot went to another host; it waits again, last.
		h.waiting = true
		s.waiting = append(s.waiting, h)
	}
}

// forget drops a host with nothing granted, queued or waiting.
func (s *scheduler) forget(h *hostSlot) {
	if h.granted == 0 && !h.waiting {
		// Tickets whose requesters left are dropped with it.
		live := false
		for _, t := range h.queue {
			live = live || !t.gone
		}
		if !live && s.hosts[h.name] == h {
			delete(s.hosts, h.name)
		}
	}
}
