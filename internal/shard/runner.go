package shard

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
)

// ObjectStore is the part of the S3 client the steps call.
type ObjectStore interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

var _ ObjectStore = (*s3.Client)(nil)

// Options configure a Runner.
type Options struct {
	// Store and Bucket hold the runs' objects (SHARD_BUCKET).
	Store  ObjectStore
	Bucket string
	// Size is how many accounts a batch holds (SHARD_SIZE).
	Size int
	// Accounts lists the ids of the accounts a run checks (the organisation's,
	// or those of ACCOUNT_ROLE_ARNS), for plan.
	Accounts func(ctx context.Context) ([]string, error)
	// Check checks the accounts of one batch, for check: the engine's
	// results, nothing alerted.
	Check func(ctx context.Context, accounts []string) (*drift.Report, error)
	// Alerts is the notify pipeline: check claims its batch's transitions,
	// notify groups every batch's claims, sends and records them.
	Alerts Alerts
	// Now is the clock (run ids); nil means time.Now.
	Now func() time.Time
	// Logger; nil discards.
	Logger *slog.Logger
}

// Alerts is the notify pipeline's two halves (an *alert.Pipeline).
type Alerts interface {
	ClaimHeld(ctx context.Context, rep *drift.Report, hold time.Duration) ([]alert.Claimed, error)
	Notify(ctx context.Context, claimed []alert.Claimed) (alert.Delivery, error)
}

var _ Alerts = (*alert.Pipeline)(nil)

// ClaimHold is how long a batch's claims are held for notify, which runs
// after the last batch: a sharded run must finish within it. It is shorter
// than the template's default schedule (rate(1 hour)), so the claims of a
// run that dies lapse before the next run claims: that run sends them.
const ClaimHold = 50 * time.Minute

// DefaultMaxReportBytes bounds notify's report far under the 256 KiB Step
// Functions passes from a task to the execution's output: the handler
// bounds the report it returns to it (handler.Bound), as it bounds an
// invocation's report to Lambda's limit.
const DefaultMaxReportBytes = 128 << 10

// readConcurrency bounds the batch results notify reads at once.
const readConcurrency = 16

// Runner runs the steps.
type Runner struct {
	opts Options
}

// New returns a Runner.
func New(opts Options) *Runner {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{opts: opts}
}

// ErrNotSharded: a shard payload reached a function deployed without
// ShardSize (no bucket or no batch size); nothing is done.
var ErrNotSharded = errors.New("not deployed for sharded runs (SHARD_BUCKET or SHARD_SIZE unset)")

// Planned is plan's answer, the state machine's input to the Map.
type Planned struct {
	Run    string `json:"run"`
	Bucket string `json:"bucket"`
	// Key is the object holding the batches: a JSON array of arrays of
	// account ids.
	Key      string `json:"key"`
	Accounts int    `json:"accounts"`
	Batches  int    `json:"batches"`
}

// Plan lists the run's accounts and writes them to a new run's prefix as
// batches of Size account ids.
func (r *Runner) Plan(ctx context.Context) (*Planned, error) {
	if err := r.sharded(); err != nil {
		return nil, err
	}
	ids, err := r.opts.Accounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan: list accounts: %w", err)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("plan: no accounts to check")
	}
	batches := Batches(ids, r.opts.Size)
	if len(batches) > MaxBatches {
		return nil, fmt.Errorf("plan: %d accounts in batches of %d are %d batches, more than %d (Step Functions passes at most 256 KiB between states): raise ShardSize to at least %d",
			len(ids), r.opts.Size, len(batches), MaxBatches, (len(ids)+MaxBatches-1)/MaxBatches)
	}
	run, err := newRunID(r.opts.Now())
	if err != nil {
		return nil, err
	}
	p := &Planned{Run: run, Bucket: r.opts.Bucket, Key: batchesKey(run), Accounts: len(ids), Batches: len(batches)}
	if err := r.put(ctx, p.Key, batches); err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	r.opts.Logger.InfoContext(ctx, "sharded run planned", "run", run, "accounts", p.Accounts, "batches", p.Batches,
		"shard_size", r.opts.Size, "bucket", p.Bucket, "key", p.Key)
	return p, nil
}

// Batches cuts ids into batches of size, in order.
func Batches(ids []string, size int) [][]string {
	var out [][]string
	for c := range slices.Chunk(ids, size) {
		out = append(out, c)
	}
	return out
}

// Checked is check's answer; the Map keeps only Key.
type Checked struct {
	Run     string                `json:"run"`
	Key     string                `json:"key"`
	Checked int                   `json:"checked"`
	Counts  map[drift.Outcome]int `json:"counts"`
}

// batchResult is the object check writes: its batch's report, without the
// in-sync results that carry no transition (counted, as a bounded report
// counts them), the transitions it claimed, and the errors of its run that
// notify reports.
type batchResult struct {
	Run      string          `json:"run"`
	Accounts []string        `json:"accounts"`
	Report   *drift.Report   `json:"report"`
	Claimed  []alert.Claimed `json:"claimed"`
	Errors   []string        `json:"errors,omitempty"`
}

// Check checks one batch, decides and claims its transitions (held for
// ClaimHold) and publishes nothing: it writes its results and claims under
// the run's prefix, at a key named after the batch's accounts, and answers
// the key. A batch the Map retries writes the same object again, and keeps
// the claims an earlier attempt of the run wrote there and still holds (the
// retry's own claims on them lose to those). It fails, and the Map retries
// it, only when the batch could not be listed or S3 refused; an
// update-failed, account-failed or alert state error is recorded and
// reported by notify, which fails the run after sending, as one invocation
// would.
func (r *Runner) Check(ctx context.Context, run string, accts []string) (*Checked, error) {
	if err := r.alerting(); err != nil {
		return nil, err
	}
	rep, err := r.opts.Check(ctx, accts)
	if rep == nil || errors.Is(err, drift.ErrListFailed) {
		return nil, fmt.Errorf("check batch of run %s (%d accounts from %s): %w", run, len(accts), accts[0], err)
	}
	key := resultKeyOf(run, accts)
	obj := batchResult{Run: run, Accounts: accts}
	if err != nil {
		obj.Errors = append(obj.Errors, err.Error())
	}
	claimed, cerr := r.opts.Alerts.ClaimHeld(ctx, rep, ClaimHold)
	if cerr != nil {
		obj.Errors = append(obj.Errors, cerr.Error())
	}
	kept, err := r.earlierClaims(ctx, key, run, claimed)
	if err != nil {
		return nil, fmt.Errorf("check batch of run %s: %w", run, err)
	}
	obj.Claimed = append(claimed, kept...)
	obj.Report = withoutQuietInSync(rep, obj.Claimed)
	if err := r.put(ctx, key, obj); err != nil {
		return nil, fmt.Errorf("check batch of run %s: %w", run, err)
	}
	r.opts.Logger.InfoContext(ctx, "batch checked", "run", run, "accounts", len(accts), "checked", rep.Checked, "counts", rep.Counts,
		"claimed", len(obj.Claimed), "kept_from_earlier_attempt", len(kept), "key", key)
	return &Checked{Run: run, Key: key, Checked: rep.Checked, Counts: rep.Counts}, nil
}

// earlierClaims are the claims an earlier attempt of this batch wrote at
// key and still holds, for the results the new claims do not cover.
func (r *Runner) earlierClaims(ctx context.Context, key, run string, claimed []alert.Claimed) ([]alert.Claimed, error) {
	var prev batchResult
	found, err := r.getIfExists(ctx, key, &prev)
	if err != nil || !found || prev.Run != run {
		return nil, err
	}
	have := make(map[string]bool, len(claimed))
	for _, c := range claimed {
		have[c.Key()] = true
	}
	now := r.opts.Now()
	var kept []alert.Claimed
	for _, c := range prev.Claimed {
		if !have[c.Key()] && (c.Claim == "" || c.ClaimUntil.After(now)) {
			kept = append(kept, c)
		}
	}
	return kept, nil
}

// withoutQuietInSync is rep without the in-sync results that carry no
// transition (claimed), counted in ResultsOmitted.
func withoutQuietInSync(rep *drift.Report, claimed []alert.Claimed) *drift.Report {
	held := make(map[string]bool, len(claimed))
	for _, c := range claimed {
		held[c.Key()] = true
	}
	c := *rep
	c.Results = make([]drift.Result, 0, len(rep.Results))
	for _, res := range rep.Results {
		if res.Outcome == drift.InSync && !held[res.Key()] {
			c.ResultsOmitted++
			continue
		}
		c.Results = append(c.Results, res)
	}
	return &c
}

// resultKeyOf is the key of a batch's results: named after its accounts, so
// that a retried batch writes the same object.
func resultKeyOf(run string, accts []string) string {
	sum := sha256.Sum256([]byte(strings.Join(accts, ",")))
	return resultPrefix(run) + hex.EncodeToString(sum[:8]) + ".json"
}

// Notify reads every batch's results and claims, sends the claims of all
// batches through the notify pipeline as one run's (grouped into messages
// whatever the batch, each integration's delivery recorded or the claim
// released), and returns the run's report: counts, results and accounts of
// all batches, each result's transition the one sent (the handler bounds
// it). It returns an error, after sending, when a message was not
// delivered, the state failed, or a batch reported an error (update-failed,
// account-failed), as one invocation's run would; a batch result that
// cannot be read fails notify before anything is sent (a retry reads again;
// the claims lapse otherwise).
func (r *Runner) Notify(ctx context.Context, run string, batches []BatchRef) (*drift.Report, error) {
	if err := r.alerting(); err != nil {
		return nil, err
	}
	objs := make([]batchResult, len(batches))
	errs := make([]error, len(batches))
	var g errgroup.Group
	g.SetLimit(readConcurrency)
	for i, b := range batches {
		g.Go(func() error {
			if err := r.get(ctx, b.Key, &objs[i]); err != nil {
				errs[i] = err
				return nil
			}
			if objs[i].Run != run || objs[i].Report == nil {
				errs[i] = fmt.Errorf("batch result %s: not a result of run %s", b.Key, run)
			}
			return nil
		})
	}
	_ = g.Wait() // every read's error is in errs
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("notify run %s: %w", run, err)
	}
	var reps []*drift.Report
	var claimed []alert.Claimed
	var runErrs []error
	for _, o := range objs {
		reps = append(reps, o.Report)
		claimed = append(claimed, o.Claimed...)
		for _, e := range o.Errors {
			runErrs = append(runErrs, fmt.Errorf("batch of %d accounts from %s: %s", len(o.Accounts), o.Accounts[0], e))
		}
	}
	d, err := r.opts.Alerts.Notify(ctx, claimed)
	if err != nil {
		runErrs = append(runErrs, err)
	}
	sent := make(map[string]string, len(claimed))
	for _, c := range claimed {
		if !d.Unsent[c.Key()] {
			sent[c.Key()] = string(c.Transition)
		}
	}
	rep := Merge(reps)
	for i := range rep.Results {
		rep.Results[i].Transition = sent[rep.Results[i].Key()]
	}
	r.opts.Logger.InfoContext(ctx, "sharded run finished", "run", run, "batches", len(batches), "checked", rep.Checked, "counts", rep.Counts,
		"claimed", len(claimed), "sent", d.Sent)
	if len(runErrs) > 0 {
		return rep, fmt.Errorf("run %s: %w", run, errors.Join(runErrs...))
	}
	return rep, nil
}

// Merge is the report of a run made of the batches' reports: counts,
// results, omitted results and accounts of every batch.
func Merge(reps []*drift.Report) *drift.Report {
	out := &drift.Report{Counts: map[drift.Outcome]int{}, Results: []drift.Result{}}
	for _, o := range drift.Outcomes {
		out.Counts[o] = 0
	}
	for _, rep := range reps {
		if out.Mode == "" {
			out.Mode = rep.Mode
		}
		out.Checked += rep.Checked
		for o, n := range rep.Counts {
			out.Counts[o] += n
		}
		out.Results = append(out.Results, rep.Results...)
		out.ResultsOmitted += rep.ResultsOmitted
		out.OmittedGroups = append(out.OmittedGroups, rep.OmittedGroups...)
		out.Accounts = append(out.Accounts, rep.Accounts...)
		out.AccountsOmitted += rep.AccountsOmitted
	}
	return out
}

// Sent counts rep's results by the transition sent for them (the
// TransitionsSent metric of a sharded run).
func Sent(rep *drift.Report) map[alert.Transition]int {
	out := map[alert.Transition]int{}
	for _, res := range rep.Results {
		if res.Transition != "" {
			out[alert.Transition(res.Transition)]++
		}
	}
	return out
}

func (r *Runner) sharded() error {
	if r.opts.Bucket == "" || r.opts.Size <= 0 || r.opts.Store == nil {
		return ErrNotSharded
	}
	return nil
}

// alerting is sharded, with the notify pipeline check and notify need.
func (r *Runner) alerting() error {
	if r.opts.Alerts == nil {
		return ErrNotSharded
	}
	return r.sharded()
}

func (r *Runner) put(ctx context.Context, key string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode s3://%s/%s: %w", r.opts.Bucket, key, err)
	}
	_, err = r.opts.Store.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(r.opts.Bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentType: aws.String("application/json"), ContentLength: aws.Int64(int64(len(body))),
	})
	if err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", r.opts.Bucket, key, err)
	}
	return nil
}

// getIfExists is get, false when there is no object at key.
func (r *Runner) getIfExists(ctx context.Context, key string, v any) (bool, error) {
	err := r.get(ctx, key, v)
	if errors.As(err, new(*s3types.NoSuchKey)) {
		return false, nil
	}
	return err == nil, err
}

func (r *Runner) get(ctx context.Context, key string, v any) error {
	out, err := r.opts.Store.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(r.opts.Bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("get s3://%s/%s: %w", r.opts.Bucket, key, err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(out.Body)
	if err != nil {
		return fmt.Errorf("read s3://%s/%s: %w", r.opts.Bucket, key, err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode s3://%s/%s: %w", r.opts.Bucket, key, err)
	}
	return nil
}

// newRunID is the time of the run and 8 random hex digits.
func newRunID(now time.Time) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("run id: %w", err)
	}
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:]), nil
}
