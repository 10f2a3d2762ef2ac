package awsclient

import (
	"sync"
	"sync/atomic"
	"time"
)

// An SDK call runs about a hundred frames deep (the middleware stack). Made
// from a new goroutine, as bounded parallel work does one goroutine per
// item, it grows that goroutine's stack from its first 8 KiB two or three
// times, and each growth copies and re-walks every frame: in the
// organisation run's CPU profile, runtime.newstack was 7% of the function's
// CPU. Warm runs calls on goroutines kept from earlier calls instead, whose
// stacks have grown already.

// warmIdle is how long a warm goroutine waits for another call before it
// ends: within a run calls follow each other closely; between invocations
// (and in tests counting goroutines) the goroutines are gone.
var warmIdle atomic.Int64 // a time.Duration; tests shorten it

func init() { warmIdle.Store(int64(time.Second)) }

// warmCall is one call handed to a warm goroutine.
type warmCall struct {
	f    func()
	done chan struct{}
}

var (
	warmCalls = make(chan warmCall) // to an idle warm goroutine
	warmDone  = sync.Pool{New: func() any { return make(chan struct{}, 1) }}
)

// Warm runs f on a warm goroutine (one that made earlier calls; a new one
// when none is idle, so calls never wait for each other) and returns when f
// has. f runs exactly once; a panic in it ends the process, as in any
// goroutine.
func Warm(f func()) {
	c := warmCall{f: f, done: warmDone.Get().(chan struct{})}
	select {
	case warmCalls <- c:
	default:
		go warm(c)
	}
	<-c.done
	warmDone.Put(c.done)
}

// warm runs c, then the calls handed to it, until it has been idle for
// warmIdle.
func warm(c warmCall) {
	idle := time.NewTimer(time.Duration(warmIdle.Load()))
	defer idle.Stop()
	for {
		c.f()
		c.done <- struct{}{}
		idle.Reset(time.Duration(warmIdle.Load()))
		select {
		case c = <-warmCalls:
		case <-idle.C:
			return
		}
	}
}

// WarmCall is Warm for a call that returns a value and an error, as every
// SDK operation does.
func WarmCall[T any](call func() (T, error)) (T, error) {
	var out T
	var err error
	Warm(func() { out, err = call() })
	return out, err
}
