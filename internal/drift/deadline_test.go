package drift_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
)

// hangingListener accepts connections and never answers.
func hangingListener(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln
}

func TestDeadlineReportsEveryProvider(t *testing.T) {
	w := newWorld(t)
	ln := hangingListener(t)
	var arns []string
	for i := range 50 {
		arns = append(arns, w.provider(fmt.Sprintf("%s/slow/%d", ln.Addr(), i), []string{old1}, nil))
	}
	e := w.engine(func(o *setup) { o.Concurrency = 2 },
		w.withProbeTimeout(time.Minute)) // only the run's deadline stops the probes
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	rep, err := e.Run(ctx, drift.Request{})
	if ctx.Err() != nil {
		t.Fatalf("Run returned after the invocation's deadline: %v", ctx.Err())
	}
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Checked != len(arns) {
		t.Fatalf("checked %d, want %d", rep.Checked, len(arns))
	}
	for _, r := range rep.Results {
		if r.Outcome != drift.ProbeFailed || !strings.HasPrefix(r.Detail, "deadline") {
			t.Errorf("%s: %s %q, want probe-failed deadline", r.ProviderARN, r.Outcome, r.Detail)
		}
		if got := list(w.stored(r.ProviderARN)...); got != old1 {
			t.Errorf("%s written: %s", r.ProviderARN, got)
		}
	}
	// Alerts for every result were published within the reserve: one
	// message, since they share host and outcome.
	msgs := w.messages()
	if len(msgs) != 1 || len(msgs[0].Results()) != len(arns) {
		t.Errorf("%d messages, want one of %d results", len(msgs), len(arns))
	}
}

func TestDeadlineReserve(t *testing.T) {
	for _, tt := range []struct{ remaining, want time.Duration }{
		{2 * time.Second, 1500 * time.Millisecond},
		{30 * time.Second, 7500 * time.Millisecond},
		{300 * time.Second, 15 * time.Second},
		{900 * time.Second, 15 * time.Second},
	} {
		if got := drift.DeadlineReserve(tt.remaining); got != tt.want {
			t.Errorf("DeadlineReserve(%s) = %s, want %s", tt.remaining, got, tt.want)
		}
	}
}
