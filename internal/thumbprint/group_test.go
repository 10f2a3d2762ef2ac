package thumbprint

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestGroupSharesOneCall(t *testing.T) {
	var g group[int]
	var calls atomic.Int32
	entered, release := make(chan struct{}), make(chan struct{})
	fn := func() (int, error) {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
		return 42, nil
	}
	var wg sync.WaitGroup
	vals := make([]int, 5)
	wg.Go(func() { vals[0], _ = g.do(t.Context(), "k", fn) })
	<-entered
	for i := 1; i < len(vals); i++ {
		wg.Go(func() { vals[i], _ = g.do(t.Context(), "k", fn) })
	}
	close(release)
	wg.Wait()
	if calls.Load() != 1 {
		t.Errorf("fn ran %d times, want once", calls.Load())
	}
	for i, v := range vals {
		if v != 42 {
			t.Errorf("caller %d got %d, want 42", i, v)
		}
	}
}

func TestGroupWaiterHonoursItsContext(t *testing.T) {
	var g group[int]
	entered, release := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.do(t.Context(), "k", func() (int, error) { close(entered); <-release; return 1, nil })
	}()
	<-entered
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := g.do(ctx, "k", func() (int, error) { return 2, nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("waiter with a canceled context got %v, want context.Canceled", err)
	}
	close(release)
	<-done
}

func TestGroupKeepsFailuresButNotContextEnds(t *testing.T) {
	t.Run("a failure is kept", func(t *testing.T) {
		var g group[int]
		boom := errors.New("boom")
		var calls int
		fn := func() (int, error) { calls++; return 0, boom }
		for range 2 {
			if _, err := g.do(t.Context(), "k", fn); !errors.Is(err, boom) {
				t.Errorf("got %v, want boom", err)
			}
		}
		if calls != 1 {
			t.Errorf("fn ran %d times, want once", calls)
		}
	})
	t.Run("the leader's context ending is not", func(t *testing.T) {
		var g group[int]
		leaderCtx, cancelLeader := context.WithCancel(t.Context())
		var calls atomic.Int32
		entered := make(chan struct{})
		leaderErr := make(chan error, 1)
		go func() {
			_, err := g.do(leaderCtx, "k", func() (int, error) {
				calls.Add(1)
				close(entered)
				<-leaderCtx.Done()
				return 0, leaderCtx.Err()
			})
			leaderErr <- err
		}()
		<-entered
		waiter := make(chan int, 1)
		go func() {
			v, err := g.do(t.Context(), "k", func() (int, error) { calls.Add(1); return 7, nil })
			if err != nil {
				t.Error(err)
			}
			waiter <- v
		}()
		cancelLeader()
		if err := <-leaderErr; !errors.Is(err, context.Canceled) {
			t.Errorf("leader got %v, want context.Canceled", err)
		}
		if v := <-waiter; v != 7 {
			t.Errorf("waiter got %d, want its own call's 7", v)
		}
		if calls.Load() != 2 {
			t.Errorf("fn ran %d times, want twice", calls.Load())
		}
	})
}
