package drift_test

// The alert lifecycle end to end: moto's DynamoDB (the table as the template
// creates it), SNS and SQS, local identity providers, and an injected clock.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/app"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/oidcprovider"
	"github.com/thumbprint-drift/thumbprint-drift/internal/state"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

// clock is the injected clock of the engines under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// dynamo is the state store's view of DynamoDB: the real client, with its
// calls counted and record writes failed on demand.
//
// It also gives moto the per-item atomicity DynamoDB guarantees: moto checks
// a ConditionExpression and applies the update without a lock, so two
// conditional UpdateItem calls on one item at the same instant can both pass
// (measured: 25 of 200 pairs of identical claims). UpdateItem calls on one
// key are therefore serialised here; calls on different keys run at once.
type dynamo struct {
	*dynamodb.Client
	mu          sync.Mutex
	gets, upds  int
	failRecords int // the next n records fail
	items       map[string]*sync.Mutex
}

func (d *dynamo) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	d.mu.Lock()
	d.gets++
	d.mu.Unlock()
	return d.Client.BatchGetItem(ctx, in, optFns...)
}

func (d *dynamo) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	d.mu.Lock()
	d.upds++
	// A record is the write that stores what was sent (it names #outcome).
	fail := d.failRecords > 0 && strings.Contains(aws.ToString(in.UpdateExpression), "#outcome")
	if fail {
		d.failRecords--
	}
	if d.items == nil {
		d.items = map[string]*sync.Mutex{}
	}
	key := fmt.Sprint(in.Key[state.KeyAttribute])
	item, ok := d.items[key]
	if !ok {
		item = &sync.Mutex{}
		d.items[key] = item
	}
	d.mu.Unlock()
	if fail {
		return nil, &smithy.GenericAPIError{Code: "InternalServerError", Message: "injected: the state write failed"}
	}
	item.Lock()
	defer item.Unlock()
	return d.Client.UpdateItem(ctx, in, optFns...)
}

// calls returns and resets the call counts.
func (d *dynamo) calls() (gets, updates int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	gets, updates = d.gets, d.upds
	d.gets, d.upds = 0, 0
	return gets, updates
}

// stateWorld is a world with a state table and a clock.
type stateWorld struct {
	*world
	clock *clock
	db    *dynamo
	store *state.Store
}

const stateTable = "thumbprint-drift-state"

var t0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

func newStateWorld(t *testing.T) *stateWorld {
	t.Helper()
	w := newWorld(t)
	cfg := w.moto.Config()
	if err := testpeer.CreateStateTable(context.Background(), cfg, stateTable); err != nil {
		t.Fatal(err)
	}
	db := &dynamo{Client: dynamodb.NewFromConfig(cfg)}
	return &stateWorld{world: w, clock: &clock{t: t0}, db: db, store: state.New(db, stateTable)}
}

var policy = alert.Policy{RealertInterval: 24 * time.Hour, ProbeFailuresToAlert: 2}

// engine is the world's engine with the lifecycle over the state table and
// the injected clock. Each engine has its own lifecycle, as two invocations do.
func (sw *stateWorld) engine(opts ...engineOpt) *app.Service {
	lc := alert.NewLifecycle(sw.store, policy, nil)
	return sw.world.engine(append([]engineOpt{func(o *setup) { o.pipe.Lifecycle, o.Memory, o.Now = lc, lc, sw.clock.Now }}, opts...)...)
}

// runSent runs e as one invocation and returns the results sent, by transition.
func runSent(e *app.Service) (*drift.Report, map[alert.Transition]int, error) {
	rep, err := e.Engine.Run(context.Background(), drift.Request{})
	sent, aerr := e.Pipeline.Run(context.Background(), rep)
	return rep, sent, errors.Join(err, aerr)
}

// run runs e and returns the report and what was sent, by provider.
func (sw *stateWorld) run(e *app.Service) (*drift.Report, map[string][]sent) {
	sw.t.Helper()
	rep, err := e.Run(context.Background(), drift.Request{})
	if err != nil {
		sw.t.Fatalf("Run: %v", err)
	}
	return rep, sw.sentByProvider()
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// only checks that got holds exactly one result for arn, with transition and
// outcome, and nothing for other providers.
func only(t *testing.T, step string, got map[string][]sent, want map[string]string) {
	t.Helper()
	have := map[string]string{}
	for arn, ss := range got {
		for _, s := range ss {
			have[arn] += s.Transition + " " + s.Outcome + ";"
		}
	}
	for arn, w := range want {
		if w != "" {
			w += ";"
		}
		if have[arn] != w {
			t.Errorf("%s: %s sent %q, want %q", step, arn, have[arn], w)
		}
		delete(have, arn)
	}
	for arn, h := range have {
		t.Errorf("%s: %s sent %q, want nothing", step, arn, h)
	}
}

func TestLifecycleTransitions(t *testing.T) {
	sw := newStateWorld(t)
	c, _ := sw.privateChain()
	idp := sw.idp("", c)
	drifted := sw.provider(idp.URL(), []string{old1}, nil) // untrusted: drift left in place
	pc, _ := sw.publicChain()
	fixed := sw.provider(sw.idp("/pub", pc).URL(), []string{old2}, nil) // remediated
	e := sw.engine()

	rep, sent, err := runSent(e)
	if err != nil {
		t.Fatal(err)
	}
	got := sw.sentByProvider()
	only(t, "run 1", got, map[string]string{drifted: "new drift", fixed: "applied updated"})
	if r := resultFor(t, rep, drifted); r.Transition != string(alert.TransitionNew) || r.FirstSeen != rfc(t0) {
		t.Errorf("run 1: result transition %q first_seen %q, want new %s", r.Transition, r.FirstSeen, rfc(t0))
	}
	if s := got[drifted]; len(s) == 1 && s[0].Result["first_seen"] != rfc(t0) {
		t.Errorf("run 1: message first_seen %v", s[0].Result["first_seen"])
	}
	if sent[alert.TransitionNew] != 1 || sent[alert.TransitionApplied] != 1 {
		t.Errorf("run 1: transitions sent %v", sent)
	}

	// An hour later: the same problem, nothing sent, nothing written.
	sw.clock.Advance(time.Hour)
	sw.db.calls()
	rep, got = sw.run(e)
	only(t, "run 2", got, nil)
	if r := resultFor(t, rep, drifted); r.Transition != string(alert.TransitionNone) || r.FirstSeen != rfc(t0) {
		t.Errorf("run 2: transition %q first_seen %q, want none, %s", r.Transition, r.FirstSeen, rfc(t0))
	}
	// One read for the decision (the drift's owner and what the function
	// wrote), one for the lifecycle.
	if gets, upds := sw.db.calls(); gets != 2 || upds != 0 {
		t.Errorf("run 2: %d BatchGetItem, %d UpdateItem; want 2 and 0", gets, upds)
	}

	// A second before the interval: still nothing; at the interval: reminder.
	sw.clock.Advance(23*time.Hour - time.Second)
	_, got = sw.run(e)
	only(t, "run 3, before the interval", got, nil)
	sw.clock.Advance(time.Second)
	rep, got = sw.run(e)
	only(t, "run 4, at the interval", got, map[string]string{drifted: "reminder drift"})
	if r := resultFor(t, rep, drifted); r.FirstSeen != rfc(t0) {
		t.Errorf("reminder: first_seen %q, want %s", r.FirstSeen, rfc(t0))
	}

	// The identity provider rotates again: changed, first_seen kept.
	ca2, err := testidp.NewRoot("Private Corp Root 2")
	if err != nil {
		t.Fatal(err)
	}
	c2, tp2 := sw.chain(ca2)
	idp.SetChains(c2)
	sw.clock.Advance(time.Hour)
	rep, got = sw.run(e)
	only(t, "run 5, rotated", got, map[string]string{drifted: "changed drift"})
	if s := got[drifted]; len(s) == 1 && fmt.Sprint(s[0].Message.Body["live_thumbprints"]) != fmt.Sprint([]any{tp2}) {
		t.Errorf("changed: live_thumbprints %v, want [%s]", s[0].Message.Body["live_thumbprints"], tp2)
	}
	if r := resultFor(t, rep, drifted); r.FirstSeen != rfc(t0) {
		t.Errorf("changed: first_seen %q, want %s kept while the outcome persists", r.FirstSeen, rfc(t0))
	}
	sw.clock.Advance(time.Hour)
	_, got = sw.run(e)
	only(t, "run 6", got, nil)

	// Someone stores the new thumbprint: resolved, once.
	if _, err := sw.iam.UpdateOpenIDConnectProviderThumbprint(context.Background(), &iam.UpdateOpenIDConnectProviderThumbprintInput{
		OpenIDConnectProviderArn: aws.String(drifted), ThumbprintList: []string{tp2, old1}}); err != nil {
		t.Fatal(err)
	}
	sw.clock.Advance(time.Hour)
	rep, got = sw.run(e)
	only(t, "run 7, fixed", got, map[string]string{drifted: "resolved in-sync"})
	if r := resultFor(t, rep, drifted); r.Transition != string(alert.TransitionResolved) || r.FirstSeen != "" {
		t.Errorf("resolved: transition %q first_seen %q", r.Transition, r.FirstSeen)
	}
	if s := got[drifted]; len(s) == 1 && s[0].Message.Attr("severity") != "info" {
		t.Errorf("resolved severity %q, want info", s[0].Message.Attr("severity"))
	}
	for range 2 {
		sw.clock.Advance(25 * time.Hour)
		_, got = sw.run(e)
		only(t, "after resolved", got, nil)
	}
}

func TestLifecycleProbeFailedAfterTwoRuns(t *testing.T) {
	sw := newStateWorld(t)
	port, err := testpeer.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dead := sw.provider(fmt.Sprintf("127.0.0.1:%d", port), []string{old1}, nil)
	e := sw.engine()

	rep, got := sw.run(e)
	only(t, "run 1", got, nil)
	if r := resultFor(t, rep, dead); r.Outcome != drift.ProbeFailed || r.Transition != string(alert.TransitionNone) || r.FirstSeen != rfc(t0) {
		t.Fatalf("run 1: %s transition %q first_seen %q", r.Outcome, r.Transition, r.FirstSeen)
	}
	sw.clock.Advance(time.Hour)
	rep, got = sw.run(e)
	only(t, "run 2", got, map[string]string{dead: "new probe-failed"})
	if r := resultFor(t, rep, dead); r.FirstSeen != rfc(t0) {
		t.Errorf("run 2: first_seen %q, want the first failed run %s", r.FirstSeen, rfc(t0))
	}
	sw.clock.Advance(time.Hour)
	sw.db.calls()
	_, got = sw.run(e)
	only(t, "run 3", got, nil)
	if _, upds := sw.db.calls(); upds != 0 {
		t.Errorf("run 3 wrote %d times: the count stops at the threshold", upds)
	}
}

// flaky fails the messages fail selects, while fail is on.
type flaky struct {
	inner alert.Integration
	mu    sync.Mutex
	fail  func(alert.Message) bool
}

func (f *flaky) Name() string { return f.inner.Name() }

func (f *flaky) Notify(ctx context.Context, m alert.Message) error {
	f.mu.Lock()
	fail := f.fail != nil && f.fail(m)
	f.mu.Unlock()
	if fail {
		return errors.New("injected: SNS unavailable")
	}
	return f.inner.Notify(ctx, m)
}

func (f *flaky) set(fail func(alert.Message) bool) {
	f.mu.Lock()
	f.fail = fail
	f.mu.Unlock()
}

func TestLifecycleSNSFailsThenRecovers(t *testing.T) {
	sw := newStateWorld(t)
	c, _ := sw.privateChain()
	a := sw.provider(sw.idp("/a", c).URL(), []string{old1}, nil)
	b := sw.provider(sw.idp("/b", c).URL(), []string{old1}, nil)
	pc, _ := sw.publicChain()
	fixed := sw.provider(sw.idp("/fixed", pc).URL(), []string{old2}, nil)
	pub := &flaky{inner: alert.NewSNSPublisher(sw.sns, sw.topicARN)}
	e := sw.engine(func(o *setup) { o.pipe.Integrations = []alert.Integration{pub} })

	// SNS fails for a's message and for the applied one; b's goes through.
	pub.set(func(m alert.Message) bool {
		return m.Transition == alert.TransitionApplied || m.Results[0].ProviderARN == a
	})
	rep, err := e.Run(context.Background(), drift.Request{})
	if !errors.Is(err, alert.ErrNotDelivered) {
		t.Fatalf("run 1: error %v, want ErrNotDelivered", err)
	}
	only(t, "run 1", sw.sentByProvider(), map[string]string{b: "new drift"})
	for arn, want := range map[string]alert.Transition{a: alert.TransitionNone, b: alert.TransitionNew, fixed: alert.TransitionNone} {
		if r := resultFor(t, rep, arn); r.Transition != string(want) {
			t.Errorf("run 1: %s transition %q, want %q", arn, r.Transition, want)
		}
	}

	// The retry, at once (the claims were released): what was not sent.
	// The remediated provider is in sync now; its applied is still owed.
	pub.set(nil)
	rep, got := sw.run(e)
	only(t, "retry", got, map[string]string{a: "new drift", fixed: "applied updated"})
	if r := resultFor(t, rep, fixed); r.Outcome != drift.InSync || r.Transition != string(alert.TransitionApplied) {
		t.Errorf("retry: remediated provider %s transition %q, want in-sync applied", r.Outcome, r.Transition)
	}
	if s := got[fixed]; len(s) == 1 && !strings.Contains(fmt.Sprint(s[0].Result["detail"]), "not delivered") {
		t.Errorf("owed applied detail %v", s[0].Result["detail"])
	}
	sw.clock.Advance(time.Hour)
	_, got = sw.run(e)
	only(t, "after", got, nil)
}

func TestLifecycleTwoEnginesAtOnce(t *testing.T) {
	sw := newStateWorld(t)
	c, _ := sw.privateChain()
	pc, _ := sw.publicChain()
	var arns []string
	for i := range 6 {
		chain := c
		if i%2 == 1 {
			chain = pc // remediated: both engines may write it
		}
		arns = append(arns, sw.provider(sw.idp(fmt.Sprintf("/p%d", i), chain).URL(), []string{old1}, nil))
	}
	port, _ := testpeer.FreePort()
	dead := sw.provider(fmt.Sprintf("127.0.0.1:%d", port), []string{old1}, nil)
	arns = append(arns, dead)
	e1, e2 := sw.engine(), sw.engine()

	both := func() {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, e := range []*app.Service{e1, e2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = e.Run(context.Background(), drift.Request{})
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("Run: %v (a lost race is not an error)", err)
			}
		}
	}
	both()
	got := sw.sentByProvider()
	for i, arn := range arns[:6] {
		want := "new drift"
		if i%2 == 1 {
			want = "applied updated"
		}
		only(t, "at once", map[string][]sent{arn: got[arn]}, map[string]string{arn: want})
	}
	if len(got[dead]) != 0 {
		t.Errorf("probe-failed sent after one run (two invocations at once count once): %v", got[dead])
	}
	sw.clock.Advance(time.Hour)
	both()
	only(t, "second round", sw.sentByProvider(), map[string]string{dead: "new probe-failed"})
	sw.clock.Advance(time.Hour)
	both()
	only(t, "third round", sw.sentByProvider(), nil)
}

func TestLifecycleStateWriteFailsAfterPublish(t *testing.T) {
	sw := newStateWorld(t)
	c, _ := sw.privateChain()
	arn := sw.provider(sw.idp("", c).URL(), []string{old1}, nil)
	e := sw.engine()

	sw.db.mu.Lock()
	sw.db.failRecords = 1
	sw.db.mu.Unlock()
	rep, err := e.Run(context.Background(), drift.Request{})
	if !errors.Is(err, alert.ErrState) || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("run 1: error %v, want the state error", err)
	}
	if r := resultFor(t, rep, arn); r.Transition != string(alert.TransitionNew) {
		t.Errorf("run 1: transition %q, want new (it was delivered)", r.Transition)
	}
	only(t, "run 1", sw.sentByProvider(), map[string]string{arn: "new drift"})

	// A retry while the claim is live sends nothing; once it lapsed, the
	// transition goes again: at-least-once, for a failure between delivery
	// and record.
	_, got := sw.run(e)
	only(t, "retry within the claim", got, nil)
	sw.clock.Advance(alert.ClaimHold(context.Background()))
	_, got = sw.run(e)
	only(t, "retry after the claim lapsed", got, map[string]string{arn: "new drift"})
	sw.clock.Advance(time.Hour)
	_, got = sw.run(e)
	only(t, "then", got, nil)
}

// TestLifecycleCost: 500 providers of one host. The noisy first run sends
// one message; a quiet run reads the state in ceil(n/100) BatchGetItem calls
// and writes nothing.
func TestLifecycleCost(t *testing.T) {
	if testing.Short() {
		t.Skip("500 providers")
	}
	sw := newStateWorld(t)
	const n = 500
	c, tp := sw.privateChain()
	paths := make([]string, n)
	for i := range paths {
		paths[i] = fmt.Sprintf("/id/%03d", i)
	}
	idp, err := testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{c}, Paths: paths})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	arns := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, p := range paths {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			arns[i] = sw.provider(idp.Host()+p, []string{old1}, nil)
		}()
	}
	wg.Wait()
	e := sw.engine(withMode(config.ModeAlert), func(o *setup) { o.Concurrency = 16 })

	start := time.Now()
	_, sent, _ := runSent(e)
	noisy := time.Since(start)
	gets, upds := sw.db.calls()
	msgs := sw.messages()
	if len(msgs) != 1 {
		t.Fatalf("noisy run: %d messages, want one for the host", len(msgs))
	}
	m := msgs[0]
	omitted, _ := m.Body["omitted"].(float64)
	if m.Attr("transition") != "new" || m.Body["count"] != float64(n) || len(m.Results())+int(omitted) != n {
		t.Errorf("message: %s count %v, %d results + %v omitted; want new, %d", m.Attr("transition"), m.Body["count"], len(m.Results()), omitted, n)
	}
	if fmt.Sprint(m.Body["live_thumbprints"]) != fmt.Sprint([]any{tp}) || sent[alert.TransitionNew] != n {
		t.Errorf("message live %v, sent %v", m.Body["live_thumbprints"], sent)
	}
	// Batched reads: the drifting providers' memory (their owner, what the
	// function wrote) for the decision, then the lifecycle's.
	if gets != 2*((n+99)/100) || upds != 2*n {
		t.Errorf("noisy run: %d BatchGetItem, %d UpdateItem; want %d and %d (a claim and a record per transition)", gets, upds, 2*((n+99)/100), 2*n)
	}
	t.Logf("noisy run over %d providers: %d BatchGetItem, %d UpdateItem, %v", n, gets, upds, noisy)

	sw.clock.Advance(time.Hour)
	start = time.Now()
	rep, _ := e.Run(context.Background(), drift.Request{})
	quiet := time.Since(start)
	gets, upds = sw.db.calls()
	if len(sw.messages()) != 0 || rep.Counts[drift.Drift] != n {
		t.Errorf("quiet run sent messages or changed outcomes: %v", rep.Counts)
	}
	if gets > 2*((n+99)/100) || upds != 0 {
		t.Errorf("quiet run: %d BatchGetItem, %d UpdateItem; want at most %d and none", gets, upds, 2*((n+99)/100))
	}
	t.Logf("quiet run over %d providers: %d BatchGetItem, %d UpdateItem, %v", n, gets, upds, quiet)
}

// TestLifecycleMergeKeepsSeenEntries: a full stored list, a server that
// served chain B yesterday and serves A now. With state, B (seen live)
// survives the cut and the oldest never-seen entry goes.
func TestLifecycleMergeKeepsSeenEntries(t *testing.T) {
	sw := newStateWorld(t)
	cross, err := sw.public.Intermediate("Public Test Intermediate 2")
	if err != nil {
		t.Fatal(err)
	}
	ca, tpA := sw.publicChain()
	_, tpB := sw.chain(cross)
	arn := sw.provider(sw.idp("", ca).URL(), []string{old1, old2, old3, old4, tpB}, nil)
	if err := sw.store.RecordSeen(context.Background(), arn, []string{tpB}, t0.Add(-20*time.Hour)); err != nil {
		t.Fatal(err)
	}
	sw.db.calls()
	rep, got := sw.run(sw.engine())
	if want := list(tpA, tpB, old1, old2, old3); list(sw.stored(arn)...) != want {
		t.Fatalf("stored %s, want %s (the chain seen live kept)", list(sw.stored(arn)...), want)
	}
	only(t, "merge", got, map[string]string{arn: "applied updated"})
	if r := resultFor(t, rep, arn); list(r.NewThumbprints...) != list(tpA, tpB, old1, old2, old3) {
		t.Errorf("result new list %v", r.NewThumbprints)
	}
	// One read for the merge, one for the lifecycle.
	if gets, _ := sw.db.calls(); gets != 2 {
		t.Errorf("%d BatchGetItem, want 2", gets)
	}
}

func TestLifecycleReportModeWritesNoState(t *testing.T) {
	sw := newStateWorld(t)
	c, _ := sw.privateChain()
	sw.provider(sw.idp("", c).URL(), []string{old1}, nil)
	sw.db.calls()
	rep, err := sw.engine().Run(context.Background(), drift.Request{Mode: config.ModeReport})
	if err != nil {
		t.Fatal(err)
	}
	// A drift's owner and a revert are read (the plan shows them); nothing is written.
	if gets, upds := sw.db.calls(); gets > 1 || upds != 0 || len(sw.messages()) != 0 {
		t.Errorf("report mode: %d reads, %d writes of state, messages sent", gets, upds)
	}
	if rep.Results[0].Transition != string(alert.TransitionNone) {
		t.Errorf("report mode result transition %q", rep.Results[0].Transition)
	}
}

func TestStatelessAlertsEveryRun(t *testing.T) {
	w := newWorld(t)
	c, _ := w.privateChain()
	arn := w.provider(w.idp("", c).URL(), []string{old1}, nil)
	port, _ := testpeer.FreePort()
	dead := w.provider(fmt.Sprintf("127.0.0.1:%d", port), []string{old1}, nil)
	e := w.engine()
	for run := range 2 {
		rep, err := e.Run(context.Background(), drift.Request{})
		if err != nil {
			t.Fatal(err)
		}
		got := w.sentByProvider()
		for _, a := range []string{arn, dead} {
			if len(got[a]) != 1 || got[a][0].Transition != "new" {
				t.Errorf("run %d: %s sent %+v, want new", run+1, a, got[a])
			}
			if r := resultFor(t, rep, a); r.FirstSeen == "" {
				t.Errorf("run %d: %s without first_seen", run+1, a)
			}
		}
	}
}

// noProviders is an account without OIDC providers.
type noProviders struct{}

func (noProviders) List(context.Context) ([]string, error) { return nil, nil }
func (noProviders) Get(context.Context, string) (oidcprovider.Provider, error) {
	return oidcprovider.Provider{}, oidcprovider.ErrNotFound
}
func (noProviders) Update(context.Context, string, []string) error { return nil }

// TestLifecycleAccountFailedResolved: an account-failed is keyed by its
// account, alerted once, and resolved when the account is reachable again.
func TestLifecycleAccountFailedResolved(t *testing.T) {
	sw := newStateWorld(t)
	const member = "444455556666"
	var mu sync.Mutex
	broken := true
	e := sw.engine(func(o *setup) {
		o.Accounts = func(context.Context) ([]drift.Account, error) {
			return []drift.Account{
				{ID: testpeer.AccountID, Open: func(context.Context) (drift.Providers, error) { return oidcprovider.New(sw.api), nil }},
				{ID: member, RoleARN: "arn:aws:iam::" + member + ":role/thumbprint-drift", Open: func(context.Context) (drift.Providers, error) {
					mu.Lock()
					defer mu.Unlock()
					if broken {
						return nil, errors.New("assume role: AccessDenied")
					}
					return noProviders{}, nil
				}},
			}, nil
		}
	})
	accountSent := func() []string {
		var out []string
		for _, s := range sw.sentResults() {
			if s.Result["account_id"] == member {
				out = append(out, s.Transition+" "+s.Outcome)
			}
		}
		return out
	}
	for i, want := range []string{"new account-failed", "", "resolved in-sync", ""} {
		if i == 2 {
			mu.Lock()
			broken = false
			mu.Unlock()
		}
		rep, err := e.Run(context.Background(), drift.Request{})
		if broken != errors.Is(err, drift.ErrAccountFailed) {
			t.Fatalf("run %d: error %v", i+1, err)
		}
		if got := strings.Join(accountSent(), ","); got != want {
			t.Errorf("run %d: sent %q for the account, want %q", i+1, got, want)
		}
		if i == 0 {
			if r := rep.Results[len(rep.Results)-1]; r.Outcome != drift.AccountFailed || r.Transition != string(alert.TransitionNew) || r.FirstSeen != rfc(t0) {
				t.Errorf("run 1: account result %+v", r)
			}
		}
		sw.clock.Advance(time.Hour)
	}
}
