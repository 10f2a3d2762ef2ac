package alert_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

const bus = "thumbprint-drift-alerts"

// ebWorld is moto_server with a bus whose rule (source thumbprint-drift)
// targets a queue.
type ebWorld struct {
	eb     *eventbridge.Client
	events *testpeer.EventQueue
}

func newEBWorld(t *testing.T) *ebWorld {
	t.Helper()
	m := peertest.Moto(t)
	q, err := testpeer.NewEventQueue(context.Background(), m.Config(), bus, "alerts", alert.EventSource)
	if err != nil {
		t.Fatal(err)
	}
	return &ebWorld{eb: eventbridge.NewFromConfig(m.Config()), events: q}
}

func (w *ebWorld) drain(t *testing.T) []testpeer.Event {
	t.Helper()
	evs, err := w.events.Drain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// noWait retries at once: tests do not sleep.
func noWait(int) time.Duration { return 0 }

func TestDetailType(t *testing.T) {
	for tr, want := range map[alert.Transition]string{
		alert.TransitionNew: "OIDC Provider Thumbprint New", alert.TransitionChanged: "OIDC Provider Thumbprint Changed",
		alert.TransitionReminder: "OIDC Provider Thumbprint Reminder", alert.TransitionResolved: "OIDC Provider Thumbprint Resolved",
		alert.TransitionApplied: "OIDC Provider Thumbprint Applied",
	} {
		if got := alert.DetailType(tr); got != want {
			t.Errorf("DetailType(%s) = %q, want %q", tr, got, want)
		}
	}
}

// Each transition's message arrives through a rule on the bus with the
// documented source and detail-type, its detail the JSON document.
func TestEventBridgePublishDelivers(t *testing.T) {
	w := newEBWorld(t)
	p := alert.NewEventBridgePublisher(w.eb, bus)
	tests := []struct {
		transition alert.Transition
		outcome    drift.Outcome
	}{
		{alert.TransitionNew, drift.Drift},
		{alert.TransitionChanged, drift.Drift},
		{alert.TransitionReminder, drift.Drift},
		{alert.TransitionResolved, drift.InSync},
		{alert.TransitionApplied, drift.Updated},
	}
	for _, tt := range tests {
		t.Run(string(tt.transition), func(t *testing.T) {
			m := twoAccounts()
			m.Transition, m.Outcome = tt.transition, tt.outcome
			if err := p.Notify(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			evs := w.drain(t)
			if len(evs) != 1 {
				t.Fatalf("%d events, want 1", len(evs))
			}
			ev := evs[0]
			if ev.Source != "thumbprint-drift" || ev.DetailType != alert.DetailType(tt.transition) {
				t.Errorf("source %q detail-type %q", ev.Source, ev.DetailType)
			}
			wantResources := []string{m.Results[0].ProviderARN, m.Results[1].ProviderARN}
			if !reflect.DeepEqual(ev.Resources, wantResources) {
				t.Errorf("resources %v, want %v", ev.Resources, wantResources)
			}
			if tt.transition == alert.TransitionNew {
				golden(t, "message-document.golden.json", ev.Detail)
				return
			}
			var doc alert.Document
			if err := json.Unmarshal(ev.Detail, &doc); err != nil {
				t.Fatal(err)
			}
			if doc.Transition != tt.transition || doc.Outcome != tt.outcome || doc.Count != 2 || len(doc.Results) != 2 {
				t.Errorf("detail %s", ev.Detail)
			}
		})
	}
}

// faultyEB fails entries with the codes in fail (one per call, in order),
// then passes calls to the real client, recording every entry put.
type faultyEB struct {
	alert.EventBridgeAPI
	mu      sync.Mutex
	fail    []string
	calls   int
	entries []ebtypes.PutEventsRequestEntry
}

func (f *faultyEB) PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, opts ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	f.mu.Lock()
	f.calls++
	f.entries = append(f.entries, in.Entries...)
	var code string
	if len(f.fail) > 0 {
		code, f.fail = f.fail[0], f.fail[1:]
	}
	f.mu.Unlock()
	if code != "" {
		return &eventbridge.PutEventsOutput{FailedEntryCount: 1, Entries: []ebtypes.PutEventsResultEntry{{ErrorCode: aws.String(code), ErrorMessage: aws.String("injected")}}}, nil
	}
	return f.EventBridgeAPI.PutEvents(ctx, in, opts...)
}

// notifyVia sends m's results through a stateless pipeline of integ alone,
// with retry's attempts and no wait between them.
func notifyVia(ctx context.Context, integ alert.Integration, attempts int, backoff func(int) time.Duration, m alert.Message) (alert.Delivery, error) {
	var claimed []alert.Claimed
	for _, r := range m.Results {
		claimed = append(claimed, alert.Claimed{Result: r, Host: m.Host, Mode: m.Mode, CheckedAt: m.CheckedAt, Transition: m.Transition})
	}
	p := alert.New(alert.Options{Integrations: []alert.Integration{integ}, Retry: alert.Retry{Attempts: attempts, Backoff: backoff}})
	return p.Notify(ctx, claimed)
}

// A failed entry is an undelivered message: an error, after the pipeline's
// retries for throttling; an entry that fails for good is never reported as
// sent.
func TestEventBridgeFailedEntries(t *testing.T) {
	w := newEBWorld(t)
	tests := []struct {
		name      string
		fail      []string
		wantErr   bool
		wantCalls int
	}{
		{"throttled once, then delivered", []string{"ThrottlingException"}, false, 2},
		{"internal failure twice, then delivered", []string{"InternalFailure", "InternalFailure"}, false, 3},
		{"throttled every time", []string{"ThrottlingException", "ThrottlingException", "ThrottlingException", "ThrottlingException"}, true, 4},
		{"refused entry is not retried", []string{"InvalidArgument"}, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &faultyEB{EventBridgeAPI: w.eb, fail: tt.fail}
			d, err := notifyVia(context.Background(), alert.NewEventBridgePublisher(f, bus), 4, noWait, twoAccounts())
			if (err != nil) != tt.wantErr || tt.wantErr && !errors.Is(err, alert.ErrNotDelivered) || tt.wantErr != (len(d.Unsent) == 2) {
				t.Fatalf("Publish = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr && (!strings.Contains(err.Error(), bus) || !strings.Contains(err.Error(), tt.fail[len(tt.fail)-1])) {
				t.Errorf("error %v lacks the bus or the code", err)
			}
			if f.calls != tt.wantCalls {
				t.Errorf("%d PutEvents calls, want %d", f.calls, tt.wantCalls)
			}
			want := 1
			if tt.wantErr {
				want = 0
			}
			if evs := w.drain(t); len(evs) != want {
				t.Errorf("%d events delivered, want %d", len(evs), want)
			}
		})
	}

	t.Run("a bus that does not exist", func(t *testing.T) {
		_, err := notifyVia(context.Background(), alert.NewEventBridgePublisher(w.eb, "no-such-bus"), 4, noWait, twoAccounts())
		if err == nil || !strings.Contains(err.Error(), "no-such-bus") {
			t.Fatalf("Publish = %v, want an error naming the bus", err)
		}
	})

	t.Run("context cancelled during backoff", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		f := &faultyEB{EventBridgeAPI: w.eb, fail: []string{"ThrottlingException"}}
		_, err := notifyVia(ctx, alert.NewEventBridgePublisher(f, bus), 4, func(int) time.Duration { cancel(); return time.Hour }, twoAccounts())
		if !errors.Is(err, context.Canceled) || !errors.Is(err, alert.ErrNotDelivered) {
			t.Fatalf("Publish = %v, want cancelled and undelivered", err)
		}
	})
}

// An entry of exactly the largest size PutEvents takes (one byte under
// 256 KB as EventBridge counts it) is put whole; one byte more and the last
// result leaves the detail, counted in omitted and logged.
func TestEventBridgeAtTheSizeEdge(t *testing.T) {
	w := newEBWorld(t)
	limit := alert.MaxEventBytes - 1
	msg := manyProviders(200, 900)
	first, err := alert.BuildEvent(msg, bus)
	if err != nil {
		t.Fatal(err)
	}
	msg.Results = msg.Results[:len(first.Document.Results)]
	size := func() (int, bool) {
		e, err := alert.BuildEvent(msg, bus)
		if err != nil {
			t.Fatal(err)
		}
		return e.Size(), len(e.Omitted) == 0
	}
	// Each detail character is one byte of the entry.
	s, _ := size()
	for i := 0; s < limit; i = (i + 1) % len(msg.Results) {
		grow := min(limit-s, alert.MaxDetailBytes-len(msg.Results[i].Detail))
		msg.Results[i].Detail += strings.Repeat("x", grow)
		s, _ = size()
	}
	if s, whole := size(); s != limit || !whole {
		t.Fatalf("built %d bytes (whole %v), want %d", s, whole, limit)
	}
	n := len(msg.Results)

	f := &faultyEB{EventBridgeAPI: w.eb}
	logger, logs := logBuffer()
	p := alert.NewEventBridgePublisher(f, bus, alert.WithEventLogger(logger))
	if err := p.Notify(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	if got := alert.EventSize(f.entries[0]); got != limit {
		t.Fatalf("entry put is %d bytes, want %d", got, limit)
	}
	evs := w.drain(t)
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	var doc alert.Document
	if err := json.Unmarshal(evs[0].Detail, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Count != n || doc.Omitted != 0 || len(doc.Results) != n {
		t.Fatalf("at the edge: count %d omitted %d listed %d", doc.Count, doc.Omitted, len(doc.Results))
	}

	msg.Results[n-1].Detail += "x"
	if err := p.Notify(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	if got := alert.EventSize(f.entries[1]); got > limit {
		t.Fatalf("entry put is %d bytes, over %d", got, limit)
	}
	evs = w.drain(t)
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	doc = alert.Document{}
	if err := json.Unmarshal(evs[0].Detail, &doc); err != nil {
		t.Fatal(err)
	}
	last := msg.Results[n-1].ProviderARN
	if doc.Count != n || doc.Omitted != 1 || len(doc.Results) != n-1 {
		t.Fatalf("one byte over: count %d omitted %d listed %d", doc.Count, doc.Omitted, len(doc.Results))
	}
	if arns := omittedARNs(t, logs); !reflect.DeepEqual(arns, []string{last}) {
		t.Fatalf("logged %v as left out, want [%s]", arns, last)
	}
	t.Logf("%d results of a %d-byte detail fill an entry of %d bytes", n, len(msg.Results[0].Detail), limit)
}
