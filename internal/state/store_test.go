package state

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/thumbprint-drift/thumbprint-drift/internal/iac"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

// counting wraps the real client: it counts calls and can leave keys
// unprocessed, as DynamoDB does under throttling.
type counting struct {
	*dynamodb.Client
	mu          sync.Mutex
	gets, upds  int
	unprocessed int // keys of the next BatchGetItem answered as unprocessed
	// txs counts TransactWriteItems calls and txItems their actions; most
	// is the largest call's.
	txs, txItems, most int
	// inject, when set, answers the next TransactWriteItems in place of
	// DynamoDB (a fault moto does not make).
	inject error
}

func (c *counting) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	c.mu.Lock()
	c.txs++
	c.txItems += len(in.TransactItems)
	c.most = max(c.most, len(in.TransactItems))
	err := c.inject
	c.inject = nil
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return c.Client.TransactWriteItems(ctx, in, optFns...)
}

// calls returns and resets the write calls: UpdateItem, TransactWriteItems.
func (c *counting) calls() (upds, txs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	upds, txs = c.upds, c.txs
	c.upds, c.txs = 0, 0
	return upds, txs
}

func (c *counting) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	c.mu.Lock()
	c.gets++
	n := c.unprocessed
	c.unprocessed = 0
	c.mu.Unlock()
	if n == 0 {
		return c.Client.BatchGetItem(ctx, in, optFns...)
	}
	for table, ka := range in.RequestItems {
		n = min(n, len(ka.Keys))
		keep := ka
		keep.Keys = ka.Keys[n:]
		out, err := c.Client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{table: keep}}, optFns...)
		if err != nil {
			return nil, err
		}
		left := ka
		left.Keys = ka.Keys[:n]
		out.UnprocessedKeys = map[string]types.KeysAndAttributes{table: left}
		return out, nil
	}
	return nil, errors.New("no table")
}

func (c *counting) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.mu.Lock()
	c.upds++
	c.mu.Unlock()
	return c.Client.UpdateItem(ctx, in, optFns...)
}

func newStore(t *testing.T) (*Store, *counting) {
	t.Helper()
	m := peertest.Moto(t)
	cfg := m.Config()
	if err := testpeer.CreateStateTable(context.Background(), cfg, "state"); err != nil {
		t.Fatal(err)
	}
	api := &counting{Client: dynamodb.NewFromConfig(cfg)}
	s := New(api, "state")
	s.pause = func(context.Context, time.Duration) error { return nil }
	return s, api
}

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func TestItemRoundTrip(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	const key = "arn:aws:iam::123456789012:oidc-provider/example.com"
	quiet := Item{Key: key, Problem: "drift", FirstSeen: t0, ProbeFailures: 1, FailingSince: t0.Add(time.Minute), Owed: "a>b", OwedAt: t0,
		Seen: map[string]time.Time{"aa": t0, "bb": t0.Add(-time.Hour)},
		Writer: &iac.Writer{Tool: iac.Terraform, Principal: "arn:aws:sts::123456789012:assumed-role/tf/ci", At: t0.Add(-time.Minute),
			UserAgent: "Terraform/1.10.5 terraform-provider-aws/5.84.0", InvokedBy: "", EventName: "UpdateOpenIDConnectProviderThumbprint", Thumbprints: []string{"bb"}},
		Wrote: []string{"aa", "bb"}, WroteAt: t0.Add(-2 * time.Minute), RevertedAt: t0}
	if err := s.Claim(ctx, Item{Key: key}, quiet, "run-1", t0.Add(time.Minute), t0); err != nil {
		t.Fatalf("Claim: %v", err)
	}
	got, err := s.Get(ctx, []string{key})
	if err != nil {
		t.Fatal(err)
	}
	claimed := got[key]
	if claimed.Version != 1 || claimed.ClaimID != "run-1" || !claimed.ClaimUntil.Equal(t0.Add(time.Minute)) || claimed.Problem != "drift" {
		t.Fatalf("claimed item %+v", claimed)
	}
	full := quiet.Clone()
	full.Outcome, full.Live, full.AlertedAt, full.Applied, full.AppliedAt = "drift", []string{"aa", "bb"}, t0, "x>y", t0
	if err := s.Record(ctx, full, claimed.Version, "run-1", t0); err != nil {
		t.Fatalf("Record: %v", err)
	}
	got, err = s.Get(ctx, []string{key, "absent"})
	if err != nil {
		t.Fatal(err)
	}
	want := full
	want.Version = 2
	if !reflect.DeepEqual(got[key], want) {
		t.Fatalf("item\n got %+v\nwant %+v", got[key], want)
	}
	if _, ok := got["absent"]; ok {
		t.Fatal("absent key read")
	}

	// The raw item carries the TTL attribute, Retention after the write.
	raw, err := s.api.(*counting).Client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("state"), Key: map[string]types.AttributeValue{KeyAttribute: str(key)}})
	if err != nil {
		t.Fatal(err)
	}
	exp, _ := raw.Item[TTLAttribute].(*types.AttributeValueMemberN)
	if exp == nil || exp.Value != strconv.FormatInt(t0.Add(Retention).Unix(), 10) {
		t.Fatalf("expires_at = %v, want %d", raw.Item[TTLAttribute], t0.Add(Retention).Unix())
	}
	if _, ok := raw.Item["claim_id"]; ok {
		t.Fatal("claim left after Record")
	}
}

func TestConditions(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	const key = "k"
	get := func() Item {
		t.Helper()
		m, err := s.Get(ctx, []string{key})
		if err != nil {
			t.Fatal(err)
		}
		return m[key]
	}
	conflict := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("%s: %v, want ErrConflict", what, err)
		}
	}
	// Creating requires the item to be absent.
	if err := s.Save(ctx, Item{Key: key}, Item{Key: key, Problem: "drift"}, t0); err != nil {
		t.Fatal(err)
	}
	conflict("second create", s.Save(ctx, Item{Key: key}, Item{Key: key}, t0))
	v1 := get()
	// A stale version loses.
	if err := s.Save(ctx, v1, v1, t0); err != nil {
		t.Fatal(err)
	}
	conflict("stale save", s.Save(ctx, v1, v1, t0))
	v2 := get()
	// A live claim blocks other claims and saves, even at the right version.
	if err := s.Claim(ctx, v2, v2, "a", t0.Add(time.Minute), t0); err != nil {
		t.Fatal(err)
	}
	claimed := get()
	conflict("claim over a live claim", s.Claim(ctx, claimed, claimed, "b", t0.Add(time.Minute), t0.Add(30*time.Second)))
	conflict("save over a live claim", s.Save(ctx, claimed, claimed, t0.Add(30*time.Second)))
	// Only the holder records or releases.
	conflict("record by another", s.Record(ctx, claimed, claimed.Version, "b", t0))
	conflict("release by another", s.Release(ctx, key, "b"))
	// Retrying one's own claim (its first attempt landed) is not a conflict.
	if err := s.Claim(ctx, v2, v2, "a", t0.Add(time.Minute), t0); err != nil {
		t.Fatalf("own claim retried: %v", err)
	}
	// A claim past claim_until is taken over; the old holder can no longer record.
	if err := s.Claim(ctx, claimed, claimed, "b", t0.Add(3*time.Minute), t0.Add(2*time.Minute)); err != nil {
		t.Fatalf("take over an expired claim: %v", err)
	}
	conflict("record after takeover", s.Record(ctx, claimed, claimed.Version, "a", t0))
	taken := get()
	if err := s.Release(ctx, key, "b"); err != nil {
		t.Fatal(err)
	}
	released := get()
	if released.ClaimID != "" || released.Version != taken.Version {
		t.Fatalf("released item %+v (claimed at version %d)", released, taken.Version)
	}
	// Released: the next claim at that version goes through.
	if err := s.Claim(ctx, released, released, "c", t0.Add(4*time.Minute), t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
}

func TestGetBatchesAndUnprocessedKeys(t *testing.T) {
	s, api := newStore(t)
	ctx := context.Background()
	var keys []string
	for i := range 250 {
		k := fmt.Sprintf("arn:aws:iam::123456789012:oidc-provider/h%d.example", i)
		keys = append(keys, k)
		if i%2 == 0 {
			if err := s.Save(ctx, Item{Key: k}, Item{Key: k, Problem: "drift"}, t0); err != nil {
				t.Fatal(err)
			}
		}
	}
	api.gets = 0
	got, err := s.Get(ctx, append(keys, keys[:10]...)) // duplicates are read once
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 125 || api.gets != 3 {
		t.Fatalf("%d items in %d calls, want 125 in 3", len(got), api.gets)
	}
	api.gets, api.unprocessed = 0, 40
	got, err = s.Get(ctx, keys[:100])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 50 || api.gets != 2 {
		t.Fatalf("with unprocessed keys: %d items in %d calls, want 50 in 2", len(got), api.gets)
	}
}
