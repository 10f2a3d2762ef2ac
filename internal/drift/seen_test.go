package drift_test

import (
	"context"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/state"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

// TestMergeKeepsSeenEntries: a full stored list, a server that served chain
// B yesterday and serves A now. With the alert state as the engine's Memory,
// B (seen live) survives the cut and the oldest never-seen entry goes; the
// state is read once for the merge. (The alert lifecycle's own tests are in
// internal/alert.)
func TestMergeKeepsSeenEntries(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	cfg := w.moto.Config()
	if err := testpeer.CreateStateTable(ctx, cfg, "seen"); err != nil {
		t.Fatal(err)
	}
	db := testpeer.NewAtomicDynamo(cfg)
	store := state.New(db, "seen")
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	cross, err := w.public.Intermediate("Public Test Intermediate 2")
	if err != nil {
		t.Fatal(err)
	}
	ca, tpA := w.publicChain()
	_, tpB := w.chain(cross)
	arn := w.provider(w.idp("", ca).URL(), []string{old1, old2, old3, old4, tpB}, nil)
	if err := store.RecordSeen(ctx, arn, []string{tpB}, now.Add(-20*time.Hour)); err != nil {
		t.Fatal(err)
	}
	db.Calls()
	lc := alert.NewLifecycle(store, alert.Policy{RealertInterval: 24 * time.Hour, ProbeFailuresToAlert: 2}, nil)
	rep, err := w.engine(func(o *setup) { o.Memory, o.Now = lc, func() time.Time { return now } }).Engine.Run(ctx, drift.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if want := list(tpA, tpB, old1, old2, old3); list(w.stored(arn)...) != want {
		t.Fatalf("stored %s, want %s (the chain seen live kept)", list(w.stored(arn)...), want)
	}
	if r := resultFor(t, rep, arn); r.Outcome != drift.Updated || list(r.NewThumbprints...) != list(tpA, tpB, old1, old2, old3) {
		t.Errorf("result %s, new list %v", r.Outcome, r.NewThumbprints)
	}
	if gets, upds := db.Calls(); gets != 1 || upds != 0 {
		t.Errorf("%d BatchGetItem, %d UpdateItem; want 1 read for the merge and no write (the engine alerts nothing)", gets, upds)
	}
}
