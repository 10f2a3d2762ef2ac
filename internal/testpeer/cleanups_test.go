package testpeer

import (
	"io"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"
)

func TestCleanups(t *testing.T) {
	var c Cleanups
	var order []int
	for i := range 3 {
		c.Add(func() { order = append(order, i) })
	}
	c.Run()
	c.Run() // nothing left
	if !slices.Equal(order, []int{2, 1, 0}) {
		t.Errorf("ran %v, want last added first, once", order)
	}
}

func TestOnSignal(t *testing.T) {
	var c Cleanups
	cancelled := make(chan struct{})
	stop := c.OnSignal("test", io.Discard, func() { close(cancelled) })
	// Stopped, or the next SIGINT to this process (this test again, with
	// -count) would be its second: cleanups and exit 130.
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the first SIGINT did not cancel")
	}
}
