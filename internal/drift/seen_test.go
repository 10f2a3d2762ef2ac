package drift_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/iac"
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
	if gets, upds, txs := db.Calls(); gets != 1 || upds+txs != 0 {
		t.Errorf("%d BatchGetItem, %d UpdateItem, %d TransactWriteItems; want 1 read for the merge and no write (the engine alerts nothing)", gets, upds, txs)
	}
}

// TestMemoryReadOncePerAccount: the engine reads what the state remembers
// (owners, the lists it wrote) only when a provider drifts, and then the
// items of the account's providers once, batched: three drifting providers
// cost one BatchGetItem, not three; a run where all are in sync reads
// nothing. A provider tagged managed-by is reported as owned by code and
// not written.
func TestMemoryReadOncePerAccount(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	cfg := w.moto.Config()
	if err := testpeer.CreateStateTable(ctx, cfg, "memory"); err != nil {
		t.Fatal(err)
	}
	db := testpeer.NewAtomicDynamo(cfg)
	lc := alert.NewLifecycle(state.New(db, "memory"), alert.Policy{RealertInterval: 24 * time.Hour, ProbeFailuresToAlert: 2}, nil)
	ca, live := w.publicChain()
	idp := w.idp("/a", ca)
	owned := w.provider(idp.Host()+"/a", []string{old1}, map[string]string{iac.TagManagedBy: "terraform"})
	var others []string
	for _, p := range []string{"/b", "/c"} {
		others = append(others, w.provider(w.idp(p, ca).URL(), []string{old1}, nil))
	}
	e := w.engine(func(o *setup) { o.Memory = lc }).Engine
	db.Calls()
	rep, err := e.Run(ctx, drift.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if gets, _, _ := db.Calls(); gets != 1 {
		t.Errorf("%d BatchGetItem for three drifting providers, want 1", gets)
	}
	if r := resultFor(t, rep, owned); r.Outcome != drift.Drift || r.ManagedBy != "terraform" || r.CodeFix != `thumbprint_list = ["`+live+`", "`+old1+`"]` {
		t.Errorf("owned provider: %+v", r)
	}
	for _, arn := range others {
		if r := resultFor(t, rep, arn); r.Outcome != drift.Updated || r.ManagedBy != "" {
			t.Errorf("%s: %s managed by %q, want updated", arn, r.Outcome, r.ManagedBy)
		}
	}
	if _, err := w.iam.UpdateOpenIDConnectProviderThumbprint(ctx, &iam.UpdateOpenIDConnectProviderThumbprintInput{
		OpenIDConnectProviderArn: aws.String(owned), ThumbprintList: []string{live}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(ctx, drift.Request{}); err != nil {
		t.Fatal(err)
	}
	if gets, _, _ := db.Calls(); gets != 0 {
		t.Errorf("%d BatchGetItem for a run with every provider in sync, want 0", gets)
	}
}
