package testpeer

import "sync"

// Cleanups stops what a program started, last started first. It is safe for
// concurrent use: a signal handler may Run while the program still Adds.
type Cleanups struct {
	mu  sync.Mutex
	fns []func()
}

// Add registers f.
func (c *Cleanups) Add(f func()) {
	c.mu.Lock()
	c.fns = append(c.fns, f)
	c.mu.Unlock()
}

// Run calls every registered function, last added first, and forgets them. It
// holds the lock while it runs, so a second caller returns only once
// everything is stopped.
func (c *Cleanups) Run() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.fns) - 1; i >= 0; i-- {
		c.fns[i]()
	}
	c.fns = nil
}
