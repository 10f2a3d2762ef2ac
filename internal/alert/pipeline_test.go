package alert_test

// The notify pipeline end to end against moto_server: the state table, an
// SNS topic read back through SQS, an EventBridge rule read back through SQS
// and Security Hub, each integration's service behind its own fault proxy,
// reached as the function reaches it (the SDK's standard chain, with
// AWS_ENDPOINT_URL_<SERVICE> naming the proxy), so that one integration can
// fail while the others work.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	shtypes "github.com/aws/aws-sdk-go-v2/service/securityhub/types"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/app"
	"github.com/thumbprint-drift/thumbprint-drift/internal/awsclient"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/state"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

// clock is the injected clock of the pipelines under test.
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

// The services of the integrations, by integration name, as the SDK names
// them in AWS_ENDPOINT_URL_<SERVICE>.
var services = map[string]string{"sns": "SNS", "eventbridge": "EVENTBRIDGE", "securityhub": "SECURITYHUB"}

// pipeWorld is moto_server with the state table and every integration's
// receiver, and a fault proxy in front of each integration's service.
type pipeWorld struct {
	t       *testing.T
	awsCfg  aws.Config
	cfg     config.Config
	proxies map[string]*testpeer.FaultProxy
	alerts  *testpeer.AlertQueue
	events  *testpeer.EventQueue
	hub     *securityhub.Client
	db      *testpeer.AtomicDynamo
	store   *state.Store
	clock   *clock
	// seen are the proxies' request counts at the last take.
	seen map[string]int
	// imports counts the findings imported (passed to moto), by id.
	mu      sync.Mutex
	imports map[string]int
}

const pipeTable = "thumbprint-drift-state"

var pipeT0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

func newPipeWorld(t *testing.T) *pipeWorld {
	t.Helper()
	ctx := context.Background()
	m := peertest.Moto(t)
	w := &pipeWorld{t: t, proxies: map[string]*testpeer.FaultProxy{}, clock: &clock{t: pipeT0}, seen: map[string]int{}}
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	w.imports = map[string]int{}
	for name, svc := range services {
		p, err := testpeer.StartFaultProxy(m.Endpoint, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		w.proxies[name] = p
		w.fail(name, false)
		t.Setenv("AWS_ENDPOINT_URL_"+svc, p.URL)
	}
	var err error
	if w.awsCfg, err = awsclient.Load(ctx); err != nil {
		t.Fatal(err)
	}
	direct := m.Config()
	if err := testpeer.CreateStateTable(ctx, direct, pipeTable); err != nil {
		t.Fatal(err)
	}
	if w.alerts, err = testpeer.NewAlertQueue(ctx, direct, "alerts"); err != nil {
		t.Fatal(err)
	}
	if w.events, err = testpeer.NewEventQueue(ctx, direct, "default", "alerts", alert.EventSource); err != nil {
		t.Fatal(err)
	}
	w.hub = securityhub.NewFromConfig(direct)
	if _, err := w.hub.EnableSecurityHub(ctx, &securityhub.EnableSecurityHubInput{}); err != nil {
		t.Fatal(err)
	}
	w.db = testpeer.NewAtomicDynamo(direct)
	w.store = state.New(w.db, pipeTable)
	w.cfg = config.Default()
	w.cfg.Mode, w.cfg.StateTable, w.cfg.TopicARN, w.cfg.EventBusName, w.cfg.SecurityHub = config.ModeAlert, pipeTable, w.alerts.TopicARN, "default", true
	return w
}

// pipeline is one invocation's pipeline, wired as the function wires it.
func (w *pipeWorld) pipeline() *alert.Pipeline {
	return w.pipelineWith(alert.Policy{RealertInterval: 24 * time.Hour, ProbeFailuresToAlert: 2})
}

// pipelineWith is pipeline with the lifecycle policy pol.
func (w *pipeWorld) pipelineWith(pol alert.Policy) *alert.Pipeline {
	return alert.New(alert.Options{
		Lifecycle:    alert.NewLifecycle(w.store, pol, nil),
		Integrations: app.Integrations(context.Background(), w.awsCfg, w.cfg, nil),
		Retry:        alert.Retry{Attempts: 2, Backoff: noWait},
		Now:          w.clock.Now,
	})
}

// fail makes integration name's service answer AccessDenied to every call
// (a role without the permission), or pass everything when on is false.
func (w *pipeWorld) fail(name string, on bool) {
	rule := func(c testpeer.Call) testpeer.Fault { w.imported(c); return testpeer.Pass }
	if on {
		rule = func(testpeer.Call) testpeer.Fault { return testpeer.AccessDenied }
	}
	w.proxies[name].SetRule(rule)
}

// imported counts the findings of a BatchImportFindings call passed to moto.
func (w *pipeWorld) imported(c testpeer.Call) {
	var in struct{ Findings []struct{ Id string } }
	if json.Unmarshal(c.Body, &in) != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range in.Findings {
		w.imports[f.Id]++
	}
}

// took is what each integration took since the last take: SNS messages and
// EventBridge events by subject ("<transition> <outcome> <host>"), and
// Security Hub import calls (one per message and account). A call a fault
// proxy refused is not counted.
type took struct {
	sns, events []string
	imports     int
	// byProvider counts, by provider ARN, the results each integration
	// took: "sns", "eventbridge", "securityhub".
	byProvider map[string]map[string]int
}

func (w *pipeWorld) take() took {
	w.t.Helper()
	ctx := context.Background()
	out := took{byProvider: map[string]map[string]int{}}
	count := func(arn, integ string) {
		if out.byProvider[arn] == nil {
			out.byProvider[arn] = map[string]int{}
		}
		out.byProvider[arn][integ]++
	}
	msgs, err := w.alerts.Drain(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, m := range msgs {
		out.sns = append(out.sns, m.Attr("transition")+" "+m.Attr("outcome")+" "+m.Attr("host"))
		for _, arn := range m.ProviderARNs() {
			count(arn, "sns")
		}
	}
	evs, err := w.events.Drain(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, e := range evs {
		var d struct {
			Transition, Outcome, Host string
			Results                   []struct {
				ProviderARN string `json:"provider_arn"`
			}
		}
		if err := json.Unmarshal(e.Detail, &d); err != nil {
			w.t.Fatal(err)
		}
		out.events = append(out.events, d.Transition+" "+d.Outcome+" "+d.Host)
		for _, r := range d.Results {
			count(r.ProviderARN, "eventbridge")
		}
	}
	w.mu.Lock()
	for id, n := range w.imports {
		for range n {
			count(strings.TrimPrefix(id, "thumbprint-drift/"), "securityhub")
		}
	}
	clear(w.imports)
	w.mu.Unlock()
	p := w.proxies["securityhub"]
	n := p.Seen("") - p.Injected(testpeer.AccessDenied)
	out.imports, w.seen["securityhub"] = n-w.seen["securityhub"], n
	return out
}

// findings are Security Hub's findings, by id.
func (w *pipeWorld) findings() map[string]shtypes.AwsSecurityFinding {
	w.t.Helper()
	return findings(w.t, w.hub)
}

const (
	tpLiveA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	tpLiveB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	tpOld   = "0101010101010101010101010101010101010101"
)

func pipeARN(host, tenant string) string {
	return "arn:aws:iam::123456789012:oidc-provider/" + host + "/" + tenant
}

// result is a provider's result as the engine reports it.
func result(arn string, o drift.Outcome, live string) drift.Result {
	host, _, _ := strings.Cut(strings.TrimPrefix(arn, "arn:aws:iam::123456789012:oidc-provider/"), "/")
	r := drift.Result{ProviderARN: arn, URL: strings.TrimPrefix(arn, "arn:aws:iam::123456789012:oidc-provider/"), Outcome: o,
		Severity: drift.SeverityNone, LiveThumbprints: []string{live}, StoredThumbprints: []string{tpOld}, NewThumbprints: []string{},
		Host: host, Mode: config.ModeAlert, Detail: "test"}
	switch o {
	case drift.Drift:
		r.Severity, r.ThumbprintEnforced, r.BreaksAssumeRole, r.NewThumbprints = drift.SeverityCritical, true, true, []string{live, tpOld}
	case drift.Updated:
		r.Severity, r.NewThumbprints = drift.SeverityInfo, []string{live, tpOld}
	case drift.InSync:
		r.StoredThumbprints = []string{live}
	}
	return r
}

func report(results ...drift.Result) *drift.Report {
	return &drift.Report{Mode: config.ModeAlert, Checked: len(results), Results: results}
}

// TestIntegrationFailingAlone: two messages (two hosts' drift); one
// integration refuses everything in run 1. The run errors, the other
// integrations take each message once; run 2 delivers only the missed
// messages, to that integration only; run 3 is silent.
func TestIntegrationFailingAlone(t *testing.T) {
	a1, a2, b1 := pipeARN("idp-a.example", "t1"), pipeARN("idp-a.example", "t2"), pipeARN("idp-b.example", "t1")
	results := func() *drift.Report {
		return report(result(a1, drift.Drift, tpLiveA), result(a2, drift.Drift, tpLiveA), result(b1, drift.Drift, tpLiveB))
	}
	both := []string{"new drift idp-a.example", "new drift idp-b.example"}
	for _, failing := range []string{"sns", "eventbridge", "securityhub"} {
		t.Run(failing, func(t *testing.T) {
			w := newPipeWorld(t)
			want := func(run string, got took, to map[string]bool) {
				t.Helper()
				var wantSNS, wantEvents []string
				wantImports := 0
				if to["sns"] {
					wantSNS = both
				}
				if to["eventbridge"] {
					wantEvents = both
				}
				if to["securityhub"] {
					wantImports = 2
				}
				if !equalSets(got.sns, wantSNS) || !equalSets(got.events, wantEvents) || got.imports != wantImports {
					t.Errorf("%s: SNS %q, EventBridge %q, Security Hub %d imports; want %q, %q, %d", run, got.sns, got.events, got.imports, wantSNS, wantEvents, wantImports)
				}
			}
			others := map[string]bool{"sns": true, "eventbridge": true, "securityhub": true}
			others[failing] = false

			w.fail(failing, true)
			rep := results()
			_, err := w.pipeline().Run(context.Background(), rep)
			if !errors.Is(err, alert.ErrNotDelivered) || !strings.Contains(err.Error(), "to "+failing) {
				t.Fatalf("run 1: err = %v, want not delivered to %s", err, failing)
			}
			for _, r := range rep.Results {
				if r.Transition != "new" {
					t.Errorf("run 1: %s transition %q, want new (the other integrations took it)", r.ProviderARN, r.Transition)
				}
			}
			want("run 1", w.take(), others)

			w.fail(failing, false)
			w.clock.Advance(time.Hour)
			if _, err := w.pipeline().Run(context.Background(), results()); err != nil {
				t.Fatalf("run 2: %v", err)
			}
			want("run 2", w.take(), map[string]bool{failing: true})

			w.clock.Advance(time.Hour)
			rep = results()
			if _, err := w.pipeline().Run(context.Background(), rep); err != nil {
				t.Fatalf("run 3: %v", err)
			}
			want("run 3", w.take(), nil)
			for _, r := range rep.Results {
				if r.Transition != "" || r.FirstSeen != pipeT0.Format(time.RFC3339) {
					t.Errorf("run 3: %s transition %q first_seen %q, want none since %s", r.ProviderARN, r.Transition, r.FirstSeen, pipeT0.Format(time.RFC3339))
				}
			}
			if f := w.findings()["thumbprint-drift/"+b1]; f.RecordState != shtypes.RecordStateActive {
				t.Errorf("finding of %s: %q, want ACTIVE", b1, f.RecordState)
			}
		})
	}
}

// TestFindingTimestamps: a provider's finding keeps CreatedAt and
// FirstObservedAt of its first problem through new, reminder and resolved
// (the archive).
func TestFindingTimestamps(t *testing.T) {
	w := newPipeWorld(t)
	arn := pipeARN("idp.example", "t")
	id := "thumbprint-drift/" + arn
	steps := []struct {
		name    string
		advance time.Duration
		outcome drift.Outcome
		state   shtypes.RecordState
	}{
		{"new", 0, drift.Drift, shtypes.RecordStateActive},
		{"reminder", 25 * time.Hour, drift.Drift, shtypes.RecordStateActive},
		{"resolved", 2 * time.Hour, drift.InSync, shtypes.RecordStateArchived},
	}
	for _, st := range steps {
		w.clock.Advance(st.advance)
		rep := report(result(arn, st.outcome, tpLiveA))
		if _, err := w.pipeline().Run(context.Background(), rep); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := rep.Results[0].Transition; got != st.name {
			t.Fatalf("%s: transition %q", st.name, got)
		}
		f, ok := w.findings()[id]
		if !ok {
			t.Fatalf("%s: no finding %s", st.name, id)
		}
		created, updated := pipeT0.Format(time.RFC3339), w.clock.Now().Format(time.RFC3339)
		if aws.ToString(f.CreatedAt) != created || aws.ToString(f.FirstObservedAt) != created || aws.ToString(f.UpdatedAt) != updated || f.RecordState != st.state {
			t.Errorf("%s: CreatedAt %s FirstObservedAt %s UpdatedAt %s %s; want created %s, updated %s, %s", st.name,
				aws.ToString(f.CreatedAt), aws.ToString(f.FirstObservedAt), aws.ToString(f.UpdatedAt), f.RecordState, created, updated, st.state)
		}
	}
}

// TestNoFindingForAppliedAlone: an update with no problem alerted before is
// sent as applied to SNS and EventBridge, and creates no finding; an update
// that closes an alerted problem archives its finding.
func TestNoFindingForAppliedAlone(t *testing.T) {
	w := newPipeWorld(t)
	quiet, alerted := pipeARN("idp.example", "quiet"), pipeARN("idp.example", "alerted")
	if _, err := w.pipeline().Run(context.Background(), report(result(alerted, drift.Drift, tpLiveA))); err != nil {
		t.Fatal(err)
	}
	w.take()
	w.clock.Advance(time.Hour)
	if _, err := w.pipeline().Run(context.Background(), report(result(quiet, drift.Updated, tpLiveA), result(alerted, drift.Updated, tpLiveA))); err != nil {
		t.Fatal(err)
	}
	got := w.take()
	if !equalSets(got.sns, []string{"applied updated idp.example"}) || len(got.events) != 1 || got.imports != 1 {
		t.Errorf("SNS %q, %d events, %d imports; want one applied message, one event, one import (the alerted provider's)", got.sns, len(got.events), got.imports)
	}
	all := w.findings()
	if _, ok := all["thumbprint-drift/"+quiet]; ok {
		t.Errorf("a finding for %s, applied with no problem alerted", quiet)
	}
	if f := all["thumbprint-drift/"+alerted]; f.RecordState != shtypes.RecordStateArchived {
		t.Errorf("finding of %s: %q, want ARCHIVED", alerted, f.RecordState)
	}
}

// TestTwoInvocationsAtOnce: two pipelines over the same results at once
// send each transition once to each integration.
func TestTwoInvocationsAtOnce(t *testing.T) {
	w := newPipeWorld(t)
	var results []drift.Result
	for i := range 4 {
		results = append(results, result(pipeARN(fmt.Sprintf("idp-%d.example", i%2), fmt.Sprintf("t%d", i)), drift.Drift, tpLiveA))
	}
	for round := range 2 {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range 2 {
			wg.Go(func() {
				_, errs[i] = w.pipeline().Run(context.Background(), report(slices.Clone(results)...)) // each invocation its own results
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: %v (a lost race is no error)", round, err)
		}
		// Each invocation groups what it claimed: the two may split a
		// host's providers between two messages, but each provider's
		// transition goes once to each integration.
		got := w.take()
		for _, r := range results {
			want := map[string]int{"sns": 1, "eventbridge": 1, "securityhub": 1}
			if round == 1 {
				want = nil
			}
			if fmt.Sprint(got.byProvider[r.ProviderARN]) != fmt.Sprint(want) {
				t.Errorf("round %d: %s taken %v, want %v", round, r.ProviderARN, got.byProvider[r.ProviderARN], want)
			}
		}
		w.clock.Advance(time.Hour)
	}
}

// TestClaimedCarriesAcrossInvocations: one invocation claims and publishes
// nothing; its claims, through JSON, let a later one notify and record.
func TestClaimedCarriesAcrossInvocations(t *testing.T) {
	w := newPipeWorld(t)
	arn := pipeARN("idp.example", "t")
	claimed, err := w.pipeline().Claim(context.Background(), report(result(arn, drift.Drift, tpLiveA)))
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %d claimed, %v", len(claimed), err)
	}
	if got := w.take(); len(got.sns)+len(got.events)+got.imports != 0 {
		t.Fatalf("claim sent %+v", got)
	}
	b, err := json.Marshal(claimed)
	if err != nil {
		t.Fatal(err)
	}
	var back []alert.Claimed
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	d, err := w.pipeline().Notify(context.Background(), back)
	if err != nil || d.Sent[alert.TransitionNew] != 1 {
		t.Fatalf("notify: sent %v, %v", d.Sent, err)
	}
	if got := w.take(); !equalSets(got.sns, []string{"new drift idp.example"}) || len(got.events) != 1 || got.imports != 1 {
		t.Fatalf("notify took %+v", got)
	}
	w.clock.Advance(time.Hour)
	if claimed, err := w.pipeline().Claim(context.Background(), report(result(arn, drift.Drift, tpLiveA))); err != nil || len(claimed) != 0 {
		t.Fatalf("next run claimed %d (%v), want nothing: the notify recorded it", len(claimed), err)
	}
}

func equalSets(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	n := map[string]int{}
	for _, s := range a {
		n[s]++
	}
	for _, s := range b {
		n[s]--
	}
	for _, v := range n {
		if v != 0 {
			return false
		}
	}
	return true
}

// TestNotDeliveredNamesAnAccountsMessage: an account's own message
// (account-failed, no host) that an integration refuses is named in the
// error without an empty word: "new account-failed for account#...".
func TestNotDeliveredNamesAnAccountsMessage(t *testing.T) {
	w := newPipeWorld(t)
	w.fail("sns", true)
	rep := report(drift.Result{AccountID: "111111111111", Outcome: drift.AccountFailed, Severity: drift.SeverityCritical,
		Mode: config.ModeAlert, Detail: "assume role: AccessDenied", LiveThumbprints: []string{}, StoredThumbprints: []string{}, NewThumbprints: []string{}})
	_, err := w.pipeline().Run(context.Background(), rep)
	if !errors.Is(err, alert.ErrNotDelivered) || !strings.Contains(err.Error(), "to sns: new account-failed for account#111111111111: ") || strings.Contains(err.Error(), "  ") {
		t.Fatalf("err = %v; want not delivered to sns naming \"new account-failed for account#111111111111\", no double space", err)
	}
	w.take()
}

// TestExpiryWarningTurnedOff: an expiring alerted, then EXPIRY_WARNING=0
// makes the provider in sync: no resolved is sent (turning the warning off
// fixes nothing) and the state forgets the expiring quietly, so that
// turning it on again alerts it as new, and a later in-sync sends nothing.
func TestExpiryWarningTurnedOff(t *testing.T) {
	w := newPipeWorld(t)
	ctx := context.Background()
	arn := pipeARN("idp-x.example", "t1")
	expiring := result(arn, drift.Expiring, tpLiveA)
	expiring.Severity, expiring.ThumbprintEnforced, expiring.StoredThumbprints = drift.SeverityWarning, true, []string{tpLiveA}
	on := alert.Policy{RealertInterval: 24 * time.Hour, ProbeFailuresToAlert: 2}
	off := on
	off.ExpiryOff = true

	if _, err := w.pipelineWith(on).Run(ctx, report(expiring)); err != nil {
		t.Fatal(err)
	}
	if got := w.take(); !equalSets(got.sns, []string{"new expiring idp-x.example"}) {
		t.Fatalf("run 1: SNS %q, want new expiring", got.sns)
	}
	for i, pol := range []alert.Policy{off, off} {
		w.clock.Advance(time.Hour)
		rep := report(result(arn, drift.InSync, tpLiveA))
		if _, err := w.pipelineWith(pol).Run(ctx, rep); err != nil {
			t.Fatal(err)
		}
		if got := w.take(); len(got.sns)+len(got.events)+got.imports != 0 || rep.Results[0].Transition != "" {
			t.Fatalf("warning off, run %d: sent %+v, transition %q; want nothing", i+2, got, rep.Results[0].Transition)
		}
	}
	items, err := w.store.Get(ctx, []string{arn})
	if err != nil {
		t.Fatal(err)
	}
	if it := items[arn]; it.Outcome != "" || it.AlertedAt != (time.Time{}) {
		t.Errorf("state after the warning was turned off: outcome %q alerted at %v; want the expiring forgotten", it.Outcome, it.AlertedAt)
	}
	w.clock.Advance(time.Hour)
	if _, err := w.pipelineWith(on).Run(ctx, report(expiring)); err != nil {
		t.Fatal(err)
	}
	if got := w.take(); !equalSets(got.sns, []string{"new expiring idp-x.example"}) {
		t.Errorf("warning on again: SNS %q, want new expiring", got.sns)
	}
}
