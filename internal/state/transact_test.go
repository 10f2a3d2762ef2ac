package state

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func keysN(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("arn:aws:iam::123456789012:oidc-provider/h%03d.example", i)
	}
	return out
}

// creates are the writes that create keys, each with problem p.
func creates(keys []string, p string) []Write {
	ws := make([]Write, len(keys))
	for i, k := range keys {
		ws[i] = SaveWrite(Item{Key: k}, Item{Key: k, Problem: p}, t0)
	}
	return ws
}

func noErrors(t *testing.T, errs []error) {
	t.Helper()
	for i, err := range errs {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
}

// get reads keys, each of which must exist.
func get(t *testing.T, s *Store, keys ...string) map[string]Item {
	t.Helper()
	got, err := s.Get(context.Background(), keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if _, ok := got[k]; !ok {
			t.Fatalf("%s not written", k)
		}
	}
	return got
}

// TestWriteAllChunks: at MaxTransactItems writes, one transaction; one
// past it, a transaction of MaxTransactItems and the one left alone with
// UpdateItem (a transaction of one would cost twice the write units).
func TestWriteAllChunks(t *testing.T) {
	for _, tc := range []struct {
		n, txs, upds int
	}{{MaxTransactItems, 1, 0}, {MaxTransactItems + 1, 1, 1}, {2*MaxTransactItems + 2, 3, 0}} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			s, api := newStore(t)
			keys := keysN(tc.n)
			noErrors(t, s.WriteAll(context.Background(), creates(keys, "drift")))
			if upds, txs := api.calls(); txs != tc.txs || upds != tc.upds || api.most > MaxTransactItems {
				t.Errorf("%d TransactWriteItems (largest %d actions), %d UpdateItem; want %d, at most %d, and %d", txs, api.most, upds, tc.txs, MaxTransactItems, tc.upds)
			}
			for k, it := range get(t, s, keys...) {
				if it.Version != 1 || it.Problem != "drift" {
					t.Errorf("%s: %+v", k, it)
				}
			}
		})
	}
}

// TestWriteAllConflictInTheMiddle: another writer changed one item of a
// transaction since it was read: that write is a conflict, the others are
// written (the transaction sent again without it), and the other writer's
// item is left as it was.
func TestWriteAllConflictInTheMiddle(t *testing.T) {
	s, api := newStore(t)
	ctx := context.Background()
	keys := keysN(5)
	noErrors(t, s.WriteAll(ctx, creates(keys, "")))
	v1 := get(t, s, keys...)
	if err := s.Save(ctx, v1[keys[2]], Item{Key: keys[2], Problem: "probe-failed"}, t0); err != nil {
		t.Fatal(err)
	}
	api.calls()
	ws := make([]Write, len(keys))
	for i, k := range keys {
		ws[i] = SaveWrite(v1[k], Item{Key: k, Problem: "drift"}, t0)
	}
	errs := s.WriteAll(ctx, ws)
	for i, err := range errs {
		switch {
		case i == 2 && (!errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), keys[2])):
			t.Errorf("write 2: %v, want ErrConflict naming %s", err, keys[2])
		case i != 2 && err != nil:
			t.Errorf("write %d: %v", i, err)
		}
	}
	if upds, txs := api.calls(); txs != 2 || upds != 0 {
		t.Errorf("%d TransactWriteItems, %d UpdateItem; want 2 (cancelled, then without the conflict) and 0", txs, upds)
	}
	for k, it := range get(t, s, keys...) {
		want := "drift"
		if k == keys[2] {
			want = "probe-failed"
		}
		if it.Version != 2 || it.Problem != want {
			t.Errorf("%s: version %d problem %q, want 2 and %q", k, it.Version, it.Problem, want)
		}
	}
}

// TestWriteAllSameKeyTwice: a key written twice is written in order, the
// second write in a later call.
func TestWriteAllSameKeyTwice(t *testing.T) {
	s, api := newStore(t)
	keys := keysN(2)
	ws := append(creates(keys, "drift"), SaveWrite(Item{Key: keys[0], Version: 1}, Item{Key: keys[0], Problem: "expiring"}, t0))
	noErrors(t, s.WriteAll(context.Background(), ws))
	if upds, txs := api.calls(); txs != 1 || upds != 1 {
		t.Errorf("%d TransactWriteItems, %d UpdateItem; want 1 and 1", txs, upds)
	}
	if it := get(t, s, keys[0])[keys[0]]; it.Version != 2 || it.Problem != "expiring" {
		t.Errorf("twice-written item %+v, want version 2, expiring", it)
	}
}

// TestWriteAllCancelledForOtherReasons: a write cancelled for another
// reason than its condition (another transaction on the item, throttling)
// is made alone with UpdateItem, the others in a transaction without it; a
// transaction cancelled with no reason for any write makes each alone; a
// call that fails fails each write, naming its key and the table.
func TestWriteAllCancelledForOtherReasons(t *testing.T) {
	cancelled := func(codes ...string) error {
		e := &types.TransactionCanceledException{Message: aws.String("injected")}
		for _, c := range codes {
			e.CancellationReasons = append(e.CancellationReasons, types.CancellationReason{Code: aws.String(c)})
		}
		return e
	}
	for _, tc := range []struct {
		name       string
		inject     error
		txs, upds  int
		failed     bool
		wantFields string
	}{
		{"transaction conflict", cancelled("None", "TransactionConflict", "None"), 2, 1, false, ""},
		{"throttled", cancelled("ThrottlingError", "None", "None"), 2, 1, false, ""},
		{"no reason", cancelled("None", "None", "None"), 1, 3, false, ""},
		{"call failed", &types.InternalServerError{Message: aws.String("injected")}, 1, 0, true, "in state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, api := newStore(t)
			keys := keysN(3)
			api.inject = tc.inject
			errs := s.WriteAll(context.Background(), creates(keys, "drift"))
			if upds, txs := api.calls(); txs != tc.txs || upds != tc.upds {
				t.Errorf("%d TransactWriteItems, %d UpdateItem; want %d and %d", txs, upds, tc.txs, tc.upds)
			}
			if !tc.failed {
				noErrors(t, errs)
				for k, it := range get(t, s, keys...) {
					if it.Version != 1 || it.Problem != "drift" {
						t.Errorf("%s: %+v", k, it)
					}
				}
				return
			}
			for i, err := range errs {
				if err == nil || errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), keys[i]) || !strings.Contains(err.Error(), tc.wantFields) {
					t.Errorf("write %d: %v, want the call's failure naming %s %s", i, err, keys[i], tc.wantFields)
				}
			}
		})
	}
}

// TestWriteAllClaims: in one transaction, a claim whose earlier attempt
// landed (its condition fails on its own claim) succeeds, a claim over
// another invocation's live claim is a conflict; then records and releases
// go in one transaction, each conditioned on its claim.
func TestWriteAllClaims(t *testing.T) {
	s, api := newStore(t)
	ctx := context.Background()
	keys := keysN(4)
	until := t0.Add(time.Minute)
	for _, k := range keys[:2] {
		if err := s.Claim(ctx, Item{Key: k}, Item{Key: k, Problem: "drift"}, "a", until, t0); err != nil {
			t.Fatal(err)
		}
	}
	api.calls()
	errs := s.WriteAll(ctx, []Write{
		ClaimWrite(Item{Key: keys[0]}, Item{Key: keys[0], Problem: "drift"}, "a", until, t0), // its own, landed
		ClaimWrite(Item{Key: keys[1]}, Item{Key: keys[1], Problem: "drift"}, "b", until, t0), // a's
		ClaimWrite(Item{Key: keys[2]}, Item{Key: keys[2], Problem: "drift"}, "b", until, t0),
		SaveWrite(Item{Key: keys[3]}, Item{Key: keys[3], Problem: "drift"}, t0),
	})
	if errs[0] != nil || !errors.Is(errs[1], ErrConflict) || errs[2] != nil || errs[3] != nil {
		t.Fatalf("errors %v; want nil, ErrConflict, nil, nil", errs)
	}
	if upds, txs := api.calls(); txs != 2 || upds != 0 {
		t.Errorf("claims: %d TransactWriteItems, %d UpdateItem; want 2 and 0", txs, upds)
	}
	claimed := get(t, s, keys...)
	for k, id := range map[string]string{keys[0]: "a", keys[1]: "a", keys[2]: "b", keys[3]: ""} {
		if claimed[k].ClaimID != id || claimed[k].Version != 1 {
			t.Errorf("%s: claim %q version %d, want %q and 1", k, claimed[k].ClaimID, claimed[k].Version, id)
		}
	}

	full := claimed[keys[0]].Clone()
	full.ClaimID, full.ClaimUntil, full.Outcome, full.AlertedAt = "", time.Time{}, "drift", t0
	errs = s.WriteAll(ctx, []Write{
		RecordWrite(full, 1, "a", t0),
		ReleaseWrite(keys[1], "a"),
		ReleaseWrite(keys[2], "a"), // b's
	})
	if errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], ErrConflict) {
		t.Fatalf("record and releases: %v; want nil, nil, ErrConflict", errs)
	}
	done := get(t, s, keys...)
	if it := done[keys[0]]; it.Version != 2 || it.ClaimID != "" || it.Outcome != "drift" {
		t.Errorf("recorded %+v", it)
	}
	if it := done[keys[1]]; it.Version != 1 || it.ClaimID != "" {
		t.Errorf("released %+v", it)
	}
	if it := done[keys[2]]; it.ClaimID != "b" {
		t.Errorf("another's claim %+v, want b's kept", it)
	}
}
