package drift_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
)

// countingHost accepts TCP connections, counts them and closes them: an
// identity provider that must never be contacted.
func countingHost(t *testing.T) (host string, accepted *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().String(), accepted
}

// TestIgnoredProvidersAreNotContacted: a provider tagged
// thumbprint-drift:mode=ignore has its tags read and nothing else: no
// connection to its host, the early probe start included, unless another
// provider of the run needs that host (then the host is probed once, for it).
func TestIgnoredProvidersAreNotContacted(t *testing.T) {
	w := newWorld(t)
	ignore := map[string]string{drift.TagMode: "ignore"}
	lonely, accepted := countingHost(t)
	ignoredAlone := w.provider(lonely+"/ignored", []string{old1}, ignore)

	c, tp := w.publicChain()
	s := w.idp("/shared", c)
	needed := w.provider(s.URL(), []string{old1}, nil)
	ignoredShared := w.provider(s.Host()+"/ignored-too", []string{old1}, ignore)

	for _, req := range []drift.Request{{}, {Providers: []string{ignoredAlone, ignoredShared, needed}}} {
		rep, err := w.engine(withMode(config.ModeReport)).Run(context.Background(), req)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		for arn, want := range map[string]drift.Outcome{ignoredAlone: drift.Skipped, ignoredShared: drift.Skipped, needed: drift.Drift} {
			if r := resultFor(t, rep, arn); r.Outcome != want || (want == drift.Skipped) != (len(r.LiveThumbprints) == 0) {
				t.Errorf("%s: %s live %v (%s), want %s", arn, r.Outcome, r.LiveThumbprints, r.Detail, want)
			}
		}
		if r := resultFor(t, rep, needed); len(r.LiveThumbprints) != 1 || r.LiveThumbprints[0] != tp {
			t.Errorf("needed host not probed: live %v, want [%s]", r.LiveThumbprints, tp)
		}
		if n := accepted.Load(); n != 0 {
			t.Fatalf("the host of the ignored provider took %d connections, want none", n)
		}
	}
}
