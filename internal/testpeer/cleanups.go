package testpeer

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

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

// OnSignal handles SIGINT and SIGTERM for a program that started peers: the
// first calls cancel (the program then stops as it would on an error), the
// second runs the cleanups at once and exits with 130. A closed stdout or
// stderr (prog | head) fails the write instead of killing the program (SIGPIPE
// ignored) before it stops what it started. It says so on stderr as name.
// The returned stop gives the signals back to their default handling; until
// then the handler stays installed (a program calls it once; a test stops it
// so that a later signal in the same process is not taken for the second).
func (c *Cleanups) OnSignal(name string, stderr io.Writer, cancel func()) (stop func()) {
	sigs := make(chan os.Signal, 2)
	pipe := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	signal.Notify(pipe, syscall.SIGPIPE)
	done := make(chan struct{})
	next := func() bool {
		select {
		case <-sigs:
			return true
		case <-done:
			return false
		}
	}
	go func() {
		if !next() {
			return
		}
		fmt.Fprintf(stderr, "%s: interrupted: stopping everything it started (again to hurry)\n", name)
		cancel()
		if !next() {
			return
		}
		c.Run()
		os.Exit(130)
	}()
	return sync.OnceFunc(func() {
		signal.Stop(sigs)
		signal.Stop(pipe)
		close(done)
	})
}
