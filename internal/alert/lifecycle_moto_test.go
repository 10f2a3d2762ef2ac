package alert_test

// The alert lifecycle end to end through the pipeline: moto's DynamoDB (the
// table as the template creates it), the integrations read back, an
// injected clock, and the engine's results as the engine reports them.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/state"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// snsOnly keeps SNS as the one integration.
func (w *pipeWorld) snsOnly() {
	w.cfg.EventBusName, w.cfg.SecurityHub = "", false
}

// run runs one invocation's pipeline over rep and returns what SNS
// received, by key (provider ARN, or "account#<id>"), as
// "<transition> <outcome>", and the results sent by transition.
func (w *pipeWorld) run(rep *drift.Report) (map[string][]string, map[alert.Transition]int) {
	w.t.Helper()
	sent, err := w.pipeline().Run(context.Background(), rep)
	if err != nil {
		w.t.Fatalf("Run: %v", err)
	}
	return w.snsByKey(), sent
}

// snsByKey drains the topic's queue: what each key was sent.
func (w *pipeWorld) snsByKey() map[string][]string {
	w.t.Helper()
	msgs, err := w.alerts.Drain(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string][]string{}
	for _, m := range msgs {
		for _, r := range m.Results() {
			key, _ := r["provider_arn"].(string)
			if key == "" {
				key = fmt.Sprint("account#", r["account_id"])
			}
			out[key] = append(out[key], m.Attr("transition")+" "+m.Attr("outcome"))
		}
	}
	return out
}

// only checks that got holds, for each key of want, exactly the one
// transition named ("" none), and nothing for other keys.
func only(t *testing.T, step string, got map[string][]string, want map[string]string) {
	t.Helper()
	for key, w := range want {
		g := strings.Join(got[key], ";")
		if g != w {
			t.Errorf("%s: %s sent %q, want %q", step, key, g, w)
		}
		delete(got, key)
	}
	for key, g := range got {
		t.Errorf("%s: %s sent %q, want nothing", step, key, g)
	}
}

func resultOf(t *testing.T, rep *drift.Report, key string) drift.Result {
	t.Helper()
	for _, r := range rep.Results {
		if r.Key() == key {
			return r
		}
	}
	t.Fatalf("no result for %s", key)
	return drift.Result{}
}

func TestLifecycleTransitions(t *testing.T) {
	w := newPipeWorld(t)
	w.snsOnly()
	drifted, fixed := pipeARN("idp.example", "drifted"), pipeARN("idp.example", "fixed")
	runWith := func(d drift.Result) (*drift.Report, map[string][]string, map[alert.Transition]int) {
		inSync := result(fixed, drift.InSync, tpLiveA)
		inSync.StoredThumbprints = []string{tpLiveA, tpOld} // the list run 1 wrote, still in place
		rep := report(d, inSync)
		got, sent := w.run(rep)
		return rep, got, sent
	}

	rep := report(result(drifted, drift.Drift, tpLiveA), result(fixed, drift.Updated, tpLiveA))
	got, sent := w.run(rep)
	only(t, "run 1", got, map[string]string{drifted: "new drift", fixed: "applied updated"})
	if r := resultOf(t, rep, drifted); r.Transition != "new" || r.FirstSeen != rfc(pipeT0) {
		t.Errorf("run 1: transition %q first_seen %q, want new %s", r.Transition, r.FirstSeen, rfc(pipeT0))
	}
	if sent[alert.TransitionNew] != 1 || sent[alert.TransitionApplied] != 1 {
		t.Errorf("run 1: sent %v", sent)
	}

	// An hour later: the same problem, nothing sent, nothing written.
	w.clock.Advance(time.Hour)
	w.db.Calls()
	rep, got, _ = runWith(result(drifted, drift.Drift, tpLiveA))
	only(t, "run 2", got, nil)
	if r := resultOf(t, rep, drifted); r.Transition != "" || r.FirstSeen != rfc(pipeT0) {
		t.Errorf("run 2: transition %q first_seen %q, want none, %s", r.Transition, r.FirstSeen, rfc(pipeT0))
	}
	if gets, upds, txs := w.db.Calls(); gets != 1 || upds+txs != 0 {
		t.Errorf("run 2: %d BatchGetItem, %d UpdateItem, %d TransactWriteItems; want 1 and no write", gets, upds, txs)
	}

	// A second before the interval: still nothing; at the interval: reminder.
	w.clock.Advance(23*time.Hour - time.Second)
	_, got, _ = runWith(result(drifted, drift.Drift, tpLiveA))
	only(t, "run 3, before the interval", got, nil)
	w.clock.Advance(time.Second)
	rep, got, _ = runWith(result(drifted, drift.Drift, tpLiveA))
	only(t, "run 4, at the interval", got, map[string]string{drifted: "reminder drift"})
	if r := resultOf(t, rep, drifted); r.FirstSeen != rfc(pipeT0) {
		t.Errorf("reminder: first_seen %q", r.FirstSeen)
	}

	// The identity provider rotates again: changed, first_seen kept.
	w.clock.Advance(time.Hour)
	rep, got, _ = runWith(result(drifted, drift.Drift, tpLiveB))
	only(t, "run 5, rotated", got, map[string]string{drifted: "changed drift"})
	if r := resultOf(t, rep, drifted); r.FirstSeen != rfc(pipeT0) {
		t.Errorf("changed: first_seen %q, want %s kept while the outcome persists", r.FirstSeen, rfc(pipeT0))
	}
	w.clock.Advance(time.Hour)
	_, got, _ = runWith(result(drifted, drift.Drift, tpLiveB))
	only(t, "run 6", got, nil)

	// Someone stores the new thumbprint: resolved, once, severity info.
	w.clock.Advance(time.Hour)
	rep, got, _ = runWith(result(drifted, drift.InSync, tpLiveB))
	only(t, "run 7, fixed", got, map[string]string{drifted: "resolved in-sync"})
	if r := resultOf(t, rep, drifted); r.Transition != "resolved" || r.FirstSeen != "" {
		t.Errorf("resolved: transition %q first_seen %q", r.Transition, r.FirstSeen)
	}
	for range 2 {
		w.clock.Advance(25 * time.Hour)
		_, got, _ = runWith(result(drifted, drift.InSync, tpLiveB))
		only(t, "after resolved", got, nil)
	}
}

func TestLifecycleProbeFailedAfterTwoRuns(t *testing.T) {
	w := newPipeWorld(t)
	w.snsOnly()
	dead := pipeARN("dead.example", "t")
	failed := func() *drift.Report {
		r := result(dead, drift.ProbeFailed, tpLiveA)
		r.LiveThumbprints, r.Severity = []string{}, drift.SeverityWarning
		return report(r)
	}
	rep := failed()
	got, _ := w.run(rep)
	only(t, "run 1", got, nil)
	if r := rep.Results[0]; r.Transition != "" || r.FirstSeen != rfc(pipeT0) {
		t.Fatalf("run 1: transition %q first_seen %q", r.Transition, r.FirstSeen)
	}
	w.clock.Advance(time.Hour)
	rep = failed()
	got, _ = w.run(rep)
	only(t, "run 2", got, map[string]string{dead: "new probe-failed"})
	if r := rep.Results[0]; r.FirstSeen != rfc(pipeT0) {
		t.Errorf("run 2: first_seen %q, want the first failed run %s", r.FirstSeen, rfc(pipeT0))
	}
	w.clock.Advance(time.Hour)
	w.db.Calls()
	got, _ = w.run(failed())
	only(t, "run 3", got, nil)
	if _, upds, txs := w.db.Calls(); upds+txs != 0 {
		t.Errorf("run 3 wrote %d times: the count stops at the threshold", upds+txs)
	}
}

// TestLifecycleSNSFailsThenRecovers: SNS refuses a's message and the
// applied one; b's goes through. The retry sends what was not sent, the
// applied included though the provider is in sync by then.
func TestLifecycleSNSFailsThenRecovers(t *testing.T) {
	w := newPipeWorld(t)
	w.snsOnly()
	a, b, fixed := pipeARN("idp-a.example", "t"), pipeARN("idp-b.example", "t"), pipeARN("idp-c.example", "t")
	w.proxies["sns"].SetRule(func(c testpeer.Call) testpeer.Fault {
		if s := c.Form.Get("Subject"); c.Action == "Publish" && (strings.Contains(s, "applied") || strings.Contains(s, "idp-a.example")) {
			return testpeer.AccessDenied
		}
		return testpeer.Pass
	})
	rep := report(result(a, drift.Drift, tpLiveA), result(b, drift.Drift, tpLiveA), result(fixed, drift.Updated, tpLiveA))
	_, err := w.pipeline().Run(context.Background(), rep)
	if !errors.Is(err, alert.ErrNotDelivered) {
		t.Fatalf("run 1: error %v, want ErrNotDelivered", err)
	}
	only(t, "run 1", w.snsByKey(), map[string]string{b: "new drift"})
	for key, want := range map[string]string{a: "", b: "new", fixed: ""} {
		if r := resultOf(t, rep, key); r.Transition != want {
			t.Errorf("run 1: %s transition %q, want %q", key, r.Transition, want)
		}
	}

	// The retry, at once (the claims were released).
	w.fail("sns", false)
	rep = report(result(a, drift.Drift, tpLiveA), result(b, drift.Drift, tpLiveA), result(fixed, drift.InSync, tpLiveA))
	got, _ := w.run(rep)
	only(t, "retry", got, map[string]string{a: "new drift", fixed: "applied updated"})
	if r := resultOf(t, rep, fixed); r.Outcome != drift.InSync || r.Transition != "applied" {
		t.Errorf("retry: %s transition %q, want in-sync applied", r.Outcome, r.Transition)
	}
	w.clock.Advance(time.Hour)
	got, _ = w.run(report(result(a, drift.Drift, tpLiveA), result(b, drift.Drift, tpLiveA), result(fixed, drift.InSync, tpLiveA)))
	only(t, "after", got, nil)
}

// TestLifecycleStateWriteFailsAfterPublish: a record that fails after the
// delivery errors the run; the claim lapses and the transition goes again
// (at-least-once, the one exception).
func TestLifecycleStateWriteFailsAfterPublish(t *testing.T) {
	w := newPipeWorld(t)
	w.snsOnly()
	arn := pipeARN("idp.example", "t")
	drifted := func() *drift.Report { return report(result(arn, drift.Drift, tpLiveA)) }
	w.db.FailRecords(1)
	rep := drifted()
	_, err := w.pipeline().Run(context.Background(), rep)
	if !errors.Is(err, alert.ErrState) || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("run 1: error %v, want the state error", err)
	}
	if rep.Results[0].Transition != "new" {
		t.Errorf("run 1: transition %q, want new (it was delivered)", rep.Results[0].Transition)
	}
	only(t, "run 1", w.snsByKey(), map[string]string{arn: "new drift"})
	got, _ := w.run(drifted())
	only(t, "retry within the claim", got, nil)
	w.clock.Advance(alert.ClaimHold(context.Background()))
	got, _ = w.run(drifted())
	only(t, "retry after the claim lapsed", got, map[string]string{arn: "new drift"})
	w.clock.Advance(time.Hour)
	got, _ = w.run(drifted())
	only(t, "then", got, nil)
}

// TestLifecycleCost: 500 providers of one host. The noisy first run sends
// one message with a claim and a record per transition, written in
// transactions of 100 (ceil(n/100) TransactWriteItems calls each); a quiet
// run reads the state in ceil(n/100) BatchGetItem calls and writes nothing.
func TestLifecycleCost(t *testing.T) {
	w := newPipeWorld(t)
	w.snsOnly()
	const n = 500
	drifted := func() *drift.Report {
		rep := report()
		for i := range n {
			rep.Results = append(rep.Results, result(pipeARN("idp.example", fmt.Sprintf("id/%03d", i)), drift.Drift, tpLiveA))
		}
		return rep
	}
	w.db.Calls()
	msgs, sent := w.run(drifted())
	gets, upds, txs := w.db.Calls()
	if len(msgs) == 0 || sent[alert.TransitionNew] != n {
		t.Errorf("noisy run: %d providers listed, sent %v; want every provider new", len(msgs), sent)
	}
	if gets != (n+99)/100 || upds != 0 || txs != 2*((n+99)/100) {
		t.Errorf("noisy run: %d BatchGetItem, %d UpdateItem, %d TransactWriteItems; want %d, 0 and %d (claims, then records, 100 a call)", gets, upds, txs, (n+99)/100, 2*((n+99)/100))
	}
	w.clock.Advance(time.Hour)
	msgs, _ = w.run(drifted())
	gets, upds, txs = w.db.Calls()
	if len(msgs) != 0 || gets != (n+99)/100 || upds+txs != 0 {
		t.Errorf("quiet run: %d sent, %d BatchGetItem, %d UpdateItem, %d TransactWriteItems; want none, %d and no write", len(msgs), gets, upds, txs, (n+99)/100)
	}
}

// TestLifecycleReportModeTouchesNoState: a report-mode run, and the results
// a tag puts in report mode or skips, neither alert nor read or write the
// state.
func TestLifecycleReportModeTouchesNoState(t *testing.T) {
	w := newPipeWorld(t)
	rep := report(result(pipeARN("idp.example", "t"), drift.Drift, tpLiveA))
	rep.Mode = config.ModeReport
	w.db.Calls()
	got, _ := w.run(rep)
	if gets, upds, txs := w.db.Calls(); gets != 0 || upds+txs != 0 || len(got) != 0 || rep.Results[0].Transition != "" {
		t.Errorf("report mode: %d reads, %d writes, sent %v, transition %q", gets, upds+txs, got, rep.Results[0].Transition)
	}
	tagged, skipped := result(pipeARN("idp.example", "tagged"), drift.Drift, tpLiveA), result(pipeARN("idp.example", "skipped"), drift.Skipped, tpLiveA)
	tagged.Mode = config.ModeReport
	got, _ = w.run(report(tagged, skipped))
	if gets, upds, txs := w.db.Calls(); gets != 0 || upds+txs != 0 || len(got) != 0 {
		t.Errorf("tagged report and skipped: %d reads, %d writes, sent %v", gets, upds+txs, got)
	}
}

// TestStatelessAlertsEveryRun: without a state table every problem is new
// on every run, probe-failed from its first failure, with first_seen.
func TestStatelessAlertsEveryRun(t *testing.T) {
	w := newPipeWorld(t)
	p := alert.New(alert.Options{Integrations: []alert.Integration{alert.NewSNSPublisher(snsClient(w), w.alerts.TopicARN)}, Now: w.clock.Now})
	arn, dead := pipeARN("idp.example", "t"), pipeARN("dead.example", "t")
	for run := range 2 {
		probe := result(dead, drift.ProbeFailed, tpLiveA)
		probe.LiveThumbprints = []string{}
		rep := report(result(arn, drift.Drift, tpLiveA), probe)
		if _, err := p.Run(context.Background(), rep); err != nil {
			t.Fatal(err)
		}
		only(t, fmt.Sprintf("run %d", run+1), w.snsByKey(), map[string]string{arn: "new drift", dead: "new probe-failed"})
		for _, r := range rep.Results {
			if r.FirstSeen == "" || r.Transition != "new" {
				t.Errorf("run %d: %s transition %q first_seen %q", run+1, r.ProviderARN, r.Transition, r.FirstSeen)
			}
		}
	}
}

// TestLifecycleAccountFailedResolved: an account-failed is keyed by its
// account, alerted once, and resolved when a run reaches the account again.
func TestLifecycleAccountFailedResolved(t *testing.T) {
	w := newPipeWorld(t)
	const member = "444455556666"
	key := "account#" + member
	failed := func() *drift.Report {
		rep := report(drift.Result{AccountID: member, Outcome: drift.AccountFailed, Severity: drift.SeverityCritical, Mode: config.ModeAlert,
			Detail: "assume role: AccessDenied", LiveThumbprints: []string{}, StoredThumbprints: []string{}, NewThumbprints: []string{}})
		rep.Reached = []string{"", testpeer.AccountID}
		return rep
	}
	reached := func() *drift.Report {
		rep := report()
		rep.Reached = []string{"", testpeer.AccountID, member}
		return rep
	}
	for i, step := range []struct {
		rep  *drift.Report
		want string
	}{{failed(), "new account-failed"}, {failed(), ""}, {reached(), "resolved in-sync"}, {reached(), ""}} {
		got, _ := w.run(step.rep)
		only(t, fmt.Sprintf("run %d", i+1), got, map[string]string{key: step.want})
		if i == 0 {
			if r := step.rep.Results[0]; r.Transition != "new" || r.FirstSeen != rfc(pipeT0) {
				t.Errorf("run 1: account result %+v", r)
			}
		}
		w.clock.Advance(time.Hour)
	}
}

// snsClient is an SNS client as the function builds it (through the proxy).
func snsClient(w *pipeWorld) *sns.Client { return sns.NewFromConfig(w.awsCfg) }

// slowObservations is the state table as a loaded one answers a large first
// run: each write to a provider whose ARN contains "quiet" (an in-sync
// provider's observation), alone or in a transaction, moves the clock on by
// step.
type slowObservations struct {
	*testpeer.AtomicDynamo
	clock  *clock
	step   time.Duration
	mu     sync.Mutex
	writes int
}

func (s *slowObservations) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	s.slow(in.Key)
	return s.AtomicDynamo.UpdateItem(ctx, in, optFns...)
}

func (s *slowObservations) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	for _, it := range in.TransactItems {
		if it.Update != nil {
			s.slow(it.Update.Key)
		}
	}
	return s.AtomicDynamo.TransactWriteItems(ctx, in, optFns...)
}

func (s *slowObservations) slow(key map[string]dbtypes.AttributeValue) {
	if strings.Contains(fmt.Sprint(key["pk"]), "quiet") {
		s.clock.Advance(s.step)
		s.mu.Lock()
		s.writes++
		s.mu.Unlock()
	}
}

// The observations of a run (the in-sync providers' last-seen writes, 4,000
// in make bench's first run over 1,000 accounts) are written after delivery:
// however long they take, they do not eat the claims' hold, and the shared
// drift is delivered. Written before delivery, as they were, twelve of them
// outlasting the hold made Notify deliver nothing (the bench's "alert not
// delivered to sns" at 1,000 accounts: context deadline exceeded).
func TestObservationsDoNotDelayDelivery(t *testing.T) {
	w := newPipeWorld(t)
	w.snsOnly()
	slow := &slowObservations{AtomicDynamo: w.db, clock: w.clock, step: alert.ClaimHold(context.Background()) / 10}
	w.store = state.New(slow, pipeTable)
	drifted := pipeARN("idp.example", "drifted")
	rep := report(result(drifted, drift.Drift, tpLiveA))
	for i := range 12 {
		rep.Results = append(rep.Results, result(pipeARN("idp.example", fmt.Sprintf("quiet-%02d", i)), drift.InSync, tpLiveA))
	}
	rep.Checked = len(rep.Results)
	got, sent := w.run(rep)
	only(t, "first run", got, map[string]string{drifted: "new drift"})
	if sent[alert.TransitionNew] != 1 {
		t.Errorf("sent %v, want 1 new", sent)
	}
	if slow.writes != 12 {
		t.Errorf("%d observation writes, want 12 (one per in-sync provider): the test no longer moves the clock", slow.writes)
	}
}
