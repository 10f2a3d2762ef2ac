package thumbprint

import (
	"context"
	"sync"
)

// group runs one call per key and shares its outcome with every caller that
// asks for the same key while it runs or later. A call that failed because its
// caller's context ended is not kept: the next caller tries again.
type group[T any] struct {
	mu    sync.Mutex
	calls map[string]*call[T]
}

type call[T any] struct {
	done  chan struct{}
	val   T
	err   error
	retry bool // the leader's context ended; the outcome is not for others
}

// do returns the outcome of fn for key, running fn at most once at a time.
// A waiting caller gives up when its own ctx ends. fn must honour ctx.
func (g *group[T]) do(ctx context.Context, key string, fn func() (T, error)) (T, error) {
	for {
		g.mu.Lock()
		if g.calls == nil {
			g.calls = make(map[string]*call[T])
		}
		if c, ok := g.calls[key]; ok {
			g.mu.Unlock()
			select {
			case <-c.done:
				if c.retry && expired(ctx) == nil {
					continue
				}
				return c.val, c.err
			case <-ctx.Done():
				var zero T
				return zero, ctx.Err()
			}
		}
		c := &call[T]{done: make(chan struct{})}
		g.calls[key] = c
		g.mu.Unlock()

		c.val, c.err = fn()
		if c.err != nil && expired(ctx) != nil {
			c.retry = true
			g.mu.Lock()
			delete(g.calls, key)
			g.mu.Unlock()
		}
		close(c.done)
		return c.val, c.err
	}
}
