package shard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/shard"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

const bucket = "drift-shard-runs"

// store is moto's S3 with the bucket created, through the client the
// function builds (no path-style option: the SDK picks it for the endpoint).
func store(t *testing.T) *s3.Client {
	t.Helper()
	if testing.Short() {
		t.Skip("starts moto_server")
	}
	m := peertest.Moto(t)
	c := s3.NewFromConfig(m.Config())
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	return c
}

func accountIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%012d", 200000000000+i)
	}
	return out
}

func read(t *testing.T, c *s3.Client, key string, v any) {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, _ := io.ReadAll(out.Body)
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v: %s", key, err, b)
	}
}

func TestPlanWritesBatches(t *testing.T) {
	c := store(t)
	tests := []struct {
		accounts, size int
		batches        int
		wantErr        string
	}{
		{accounts: 60, size: 20, batches: 3},
		{accounts: 61, size: 20, batches: 4},
		{accounts: shard.MaxBatches * 10, size: 10, batches: shard.MaxBatches},
		{accounts: shard.MaxBatches*10 + 1, size: 10, wantErr: "raise ShardSize to at least 11"},
		{accounts: 0, size: 10, wantErr: "no accounts"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d by %d", tc.accounts, tc.size), func(t *testing.T) {
			all := accountIDs(tc.accounts)
			r := shard.New(shard.Options{Store: c, Bucket: bucket, Size: tc.size,
				Accounts: func(context.Context) ([]string, error) { return all, nil },
				Now:      func() time.Time { return time.Date(2026, 12, 7, 3, 15, 0, 0, time.UTC) }})
			p, err := r.Plan(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Plan() = %+v, %v, want error containing %q", p, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(p.Run, "20261207T031500Z-") || p.Key != "runs/"+p.Run+"/batches.json" || p.Bucket != bucket ||
				p.Accounts != tc.accounts || p.Batches != tc.batches {
				t.Errorf("Plan() = %+v", p)
			}
			var batches [][]string
			read(t, c, p.Key, &batches)
			var flat []string
			for i, b := range batches {
				if len(b) > tc.size || len(b) == 0 || i < len(batches)-1 && len(b) != tc.size {
					t.Errorf("batch %d has %d accounts, want %d (the last at most)", i, len(b), tc.size)
				}
				flat = append(flat, b...)
			}
			if len(batches) != tc.batches || strings.Join(flat, ",") != strings.Join(all, ",") {
				t.Errorf("%d batches holding %d accounts, want %d holding every account once", len(batches), len(flat), tc.batches)
			}
		})
	}
}

func TestPlanRefusesWithoutBucket(t *testing.T) {
	r := shard.New(shard.Options{Size: 10, Accounts: func(context.Context) ([]string, error) { panic("listed") }})
	if _, err := r.Plan(context.Background()); !errors.Is(err, shard.ErrNotSharded) {
		t.Fatalf("Plan() error = %v, want ErrNotSharded", err)
	}
}

func report(results ...drift.Result) *drift.Report {
	rep := &drift.Report{Mode: config.ModeRemediate, Checked: len(results), Counts: map[drift.Outcome]int{}, Results: results}
	for _, r := range results {
		rep.Counts[r.Outcome]++
	}
	return rep
}

func TestCheckAndNotify(t *testing.T) {
	c := store(t)
	const run = "20261207T031500Z-0a1b2c3d"
	batchA, batchB := accountIDs(2), accountIDs(4)[2:]
	var calls int
	check := func(_ context.Context, accts []string) (*drift.Report, error) {
		calls++
		var results []drift.Result
		for _, a := range accts {
			results = append(results,
				drift.Result{AccountID: a, ProviderARN: "arn:aws:iam::" + a + ":oidc-provider/quiet.example", Outcome: drift.InSync},
				drift.Result{AccountID: a, ProviderARN: "arn:aws:iam::" + a + ":oidc-provider/idp.example", Outcome: drift.Drift, Host: "idp.example"})
		}
		if accts[0] == batchB[0] {
			return report(results...), fmt.Errorf("%w: %s: refused", drift.ErrUpdateFailed, results[1].ProviderARN)
		}
		return report(results...), nil
	}
	alerts := &recording{Pipeline: alert.New(alert.Options{})} // stateless, logged only
	r := shard.New(shard.Options{Store: c, Bucket: bucket, Size: 10, Check: check, Alerts: alerts})
	ctx := context.Background()

	a, err := r.Check(ctx, run, batchA)
	if err != nil {
		t.Fatal(err)
	}
	again, err := r.Check(ctx, run, batchA)
	if err != nil {
		t.Fatal(err)
	}
	if a.Key != again.Key || !strings.HasPrefix(a.Key, "runs/"+run+"/checked-") || a.Checked != 4 || a.Counts[drift.Drift] != 2 {
		t.Errorf("Check() = %+v then %+v, want one key under the run for the batch, 4 checked, 2 drift", a, again)
	}
	// An update-failed is the run's error, reported by notify: the batch
	// itself succeeded and is not retried.
	b, err := r.Check(ctx, run, batchB)
	if err != nil {
		t.Fatalf("Check() of a batch with update-failed = %v, want its results recorded", err)
	}
	if b.Key == a.Key {
		t.Errorf("two batches share key %s", a.Key)
	}

	rep, err := r.Notify(ctx, run, []shard.BatchRef{{Key: a.Key}, {Key: b.Key}})
	if err == nil || !strings.Contains(err.Error(), "thumbprint update failed") {
		t.Errorf("Notify() error = %v, want the batch's update failure", err)
	}
	if rep == nil || rep.Checked != 8 || rep.Counts[drift.InSync] != 4 || rep.Counts[drift.Drift] != 4 ||
		len(rep.Results) != 4 || rep.ResultsOmitted != 4 || shard.Sent(rep)[alert.TransitionNew] != 4 {
		t.Errorf("Notify() = %+v, want 8 checked, the 4 quiet in-sync results counted and omitted, 4 new drift", rep)
	}
	// One notify for the whole run: both batches' claims at once, so that
	// grouping sees them together; the checks sent nothing.
	if len(alerts.notified) != 1 || len(alerts.notified[0]) != 4 {
		t.Errorf("notified %d times with %v, want once with the 4 claims of both batches", len(alerts.notified), alerts.notified)
	} else if msgs := alert.Group(alerts.notified[0]); len(msgs) != 1 || len(msgs[0].Results) != 4 {
		t.Errorf("the run's claims group into %d messages, want one of 4 providers", len(msgs))
	}
	if calls != 3 {
		t.Errorf("%d checks, want 3", calls)
	}

	// A batch that could not be listed fails so that the Map retries it,
	// and writes nothing.
	failing := shard.New(shard.Options{Store: c, Bucket: bucket, Size: 10, Alerts: alerts, Check: func(context.Context, []string) (*drift.Report, error) {
		return report(), fmt.Errorf("%w: throttled", drift.ErrListFailed)
	}})
	if _, err := failing.Check(ctx, run, accountIDs(9)[8:]); !errors.Is(err, drift.ErrListFailed) {
		t.Errorf("Check() error = %v, want the listing error", err)
	}
	if _, err := r.Notify(ctx, run, []shard.BatchRef{{Key: "runs/" + run + "/checked-ffffffffffffffff.json"}}); err == nil {
		t.Error("Notify() of a batch that wrote nothing succeeded")
	}
}

// recording is the notify pipeline, remembering what Notify was given.
type recording struct {
	*alert.Pipeline
	notified [][]alert.Claimed
}

func (r *recording) Notify(ctx context.Context, claimed []alert.Claimed) (alert.Delivery, error) {
	r.notified = append(r.notified, claimed)
	return r.Pipeline.Notify(ctx, claimed)
}

// racing claims what each call is given, as a lifecycle whose earlier
// claims make a later claim of the same results lose.
type racing struct {
	claims   [][]alert.Claimed
	notified []alert.Claimed
}

func (r *racing) ClaimHeld(context.Context, *drift.Report, time.Duration) ([]alert.Claimed, error) {
	c := r.claims[0]
	r.claims = r.claims[1:]
	return c, nil
}

func (r *racing) Notify(_ context.Context, claimed []alert.Claimed) (alert.Delivery, error) {
	r.notified = append(r.notified, claimed...)
	return alert.Delivery{Sent: map[alert.Transition]int{}, Unsent: map[string]bool{}}, nil
}

func TestRetriedCheckKeepsEarlierClaims(t *testing.T) {
	c := store(t)
	const run = "20261207T031500Z-0a1b2c3d"
	accts := accountIDs(3)
	now := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	claim := func(i int, until time.Time) alert.Claimed {
		return alert.Claimed{Result: drift.Result{ProviderARN: "arn:aws:iam::" + accts[i] + ":oidc-provider/idp.example", Outcome: drift.Drift},
			Transition: alert.TransitionNew, Claim: fmt.Sprintf("attempt-1-%d", i), ClaimUntil: until}
	}
	held, lapsed, fresh := claim(0, now.Add(time.Minute)), claim(1, now.Add(-time.Second)), claim(2, now.Add(time.Minute))
	fresh.Claim = "attempt-2-2"
	alerts := &racing{claims: [][]alert.Claimed{
		{held, lapsed}, // the first attempt claims two, then its process dies
		{fresh},        // the retry loses the held claim, wins a new one
	}}
	r := shard.New(shard.Options{Store: c, Bucket: bucket, Size: 10, Alerts: alerts, Now: func() time.Time { return now },
		Check: func(context.Context, []string) (*drift.Report, error) { return report(), nil }})
	ctx := context.Background()
	first, err := r.Check(ctx, run, accts)
	if err != nil {
		t.Fatal(err)
	}
	retry, err := r.Check(ctx, run, accts)
	if err != nil || retry.Key != first.Key {
		t.Fatalf("retried Check() = %+v, %v; want the same key %s", retry, err, first.Key)
	}
	if _, err := r.Notify(ctx, run, []shard.BatchRef{{Key: retry.Key}}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range alerts.notified {
		got = append(got, c.Claim)
	}
	slices.Sort(got)
	// The held claim of the first attempt is kept; its lapsed one is not
	// (another invocation may hold it now; the lifecycle decides again next run).
	if want := []string{"attempt-1-0", "attempt-2-2"}; !slices.Equal(got, want) {
		t.Errorf("notify sent claims %v, want %v", got, want)
	}
}
