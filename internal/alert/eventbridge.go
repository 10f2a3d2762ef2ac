package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
)

// EventBridgeAPI is the part of the EventBridge client this package calls.
type EventBridgeAPI interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, optFns ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

var _ EventBridgeAPI = (*eventbridge.Client)(nil)

// EventSource is the source of every event the function puts.
const EventSource = "thumbprint-drift"

// MaxEventBytes is PutEvents' limit on one entry, 256 KB; an entry must be
// smaller, so an event is at most MaxEventBytes-1 as EventBridge counts it
// (EventSize).
const MaxEventBytes = 256 * 1024

// eventAttempts is how many times an entry EventBridge failed with a
// retryable code (throttling, internal failure) is put.
const eventAttempts = 4

// Event is one grouped message as an EventBridge entry.
type Event struct {
	Entry ebtypes.PutEventsRequestEntry
	// Document is the entry's detail, its results bounded.
	Document Document
	// Omitted are the results left out to keep the entry under MaxEventBytes.
	Omitted []drift.Result
}

// Size is the entry's size as EventBridge counts it against its limit: 14
// bytes for a time, then the bytes of source, detail-type, detail and each
// resource.
func (e Event) Size() int { return EventSize(e.Entry) }

// EventSize is the size of a PutEvents entry as EventBridge counts it.
func EventSize(e ebtypes.PutEventsRequestEntry) int {
	n := 0
	if e.Time != nil {
		n += 14
	}
	n += len(aws.ToString(e.Source)) + len(aws.ToString(e.DetailType)) + len(aws.ToString(e.Detail))
	for _, r := range e.Resources {
		n += len(r)
	}
	return n
}

// BuildEvent is m as an entry for bus: source EventSource, detail-type
// DetailType(m.Transition), detail the JSON document (always the document,
// whatever ALERT_FORMAT), resources the listed provider ARNs, time the check.
// As many results as keep the entry under MaxEventBytes are listed, in m's
// order; the others are counted in the document's omitted.
func BuildEvent(m drift.Message, bus string) (Event, error) {
	return buildEvent(m, bus, MaxEventBytes-1)
}

func buildEvent(m drift.Message, bus string, limit int) (Event, error) {
	full := NewDocument(m)
	build := func(n int) (Event, error) {
		d := full.first(n)
		detail, err := marshal(d)
		if err != nil {
			return Event{}, err
		}
		e := ebtypes.PutEventsRequestEntry{
			Source:     aws.String(EventSource),
			DetailType: aws.String(DetailType(m.Transition)),
			Detail:     aws.String(detail),
			Time:       aws.Time(m.CheckedAt.UTC()),
			Resources:  []string{},
		}
		if bus != "" {
			e.EventBusName = aws.String(bus)
		}
		for _, r := range d.Results {
			if r.ProviderARN != "" {
				e.Resources = append(e.Resources, r.ProviderARN)
			}
		}
		return Event{Entry: e, Document: d, Omitted: m.Results[n:]}, nil
	}
	ev, err := largestFitting(len(full.Results), limit, build)
	if err != nil {
		return Event{}, fmt.Errorf("%s %s event for %s: %w", m.Transition, m.Outcome, messageWhere(m), err)
	}
	return ev, nil
}

// EventBridgePublisher puts one event per grouped message on an EventBridge
// bus (EVENT_BUS_NAME).
type EventBridgePublisher struct {
	api     EventBridgeAPI
	bus     string
	logger  *slog.Logger
	backoff func(attempt int) time.Duration
}

var _ drift.Publisher = (*EventBridgePublisher)(nil)

// EventBridgeOption configures an EventBridgePublisher.
type EventBridgeOption func(*EventBridgePublisher)

// WithEventLogger sets where results left out of an event are logged.
func WithEventLogger(l *slog.Logger) EventBridgeOption {
	return func(p *EventBridgePublisher) {
		if l != nil {
			p.logger = l
		}
	}
}

// WithEventBackoff sets the wait before the attempt-th retry of an entry
// EventBridge failed with a retryable code (default 200ms doubling).
func WithEventBackoff(f func(attempt int) time.Duration) EventBridgeOption {
	return func(p *EventBridgePublisher) { p.backoff = f }
}

// NewEventBridgePublisher returns a publisher to the bus named (or ARN) bus
// through api (an *eventbridge.Client).
func NewEventBridgePublisher(api EventBridgeAPI, bus string, opts ...EventBridgeOption) *EventBridgePublisher {
	p := &EventBridgePublisher{api: api, bus: bus, logger: slog.New(slog.DiscardHandler),
		backoff: func(attempt int) time.Duration { return 200 * time.Millisecond << (attempt - 1) }}
	for _, o := range opts {
		o(p)
	}
	return p
}

// ErrEventFailed is returned (wrapped) when EventBridge did not accept an
// event: the message counts as undelivered.
var ErrEventFailed = errors.New("event not accepted")

// Publish puts m as one event. An entry EventBridge fails (FailedEntryCount)
// is an error, after retries when its code is throttling or an internal
// failure: the message is undelivered, so its transitions are not recorded
// and a retried invocation sends it again.
func (p *EventBridgePublisher) Publish(ctx context.Context, m drift.Message) error {
	ev, err := BuildEvent(m, p.bus)
	if err != nil {
		return fmt.Errorf("build event for bus %s: %w", p.bus, err)
	}
	logOmitted(ctx, p.logger, "EventBridge event", m, ev.Omitted, MaxEventBytes-1)
	what := fmt.Sprintf("%s event for %s (%d providers) on bus %s", aws.ToString(ev.Entry.DetailType), messageWhere(m), len(m.Results), p.bus)
	for attempt := 1; ; attempt++ {
		out, err := p.api.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{ev.Entry}})
		if err != nil {
			return fmt.Errorf("put %s: %w", what, err)
		}
		if out.FailedEntryCount == 0 && (len(out.Entries) == 0 || out.Entries[0].ErrorCode == nil) {
			return nil
		}
		code, msg := "unknown", ""
		if len(out.Entries) > 0 {
			code, msg = aws.ToString(out.Entries[0].ErrorCode), aws.ToString(out.Entries[0].ErrorMessage)
		}
		if !retryableEntry(code) || attempt == eventAttempts {
			return fmt.Errorf("put %s: %w: %s: %s (attempt %d)", what, ErrEventFailed, code, msg, attempt)
		}
		wait := time.NewTimer(p.backoff(attempt))
		select {
		case <-ctx.Done():
			wait.Stop()
			return fmt.Errorf("put %s: %w: %s, retry cut short: %w", what, ErrEventFailed, code, ctx.Err())
		case <-wait.C:
		}
	}
}

// retryableEntry reports whether a failed entry's code is worth another try.
func retryableEntry(code string) bool {
	return strings.Contains(code, "Throttl") || code == "InternalFailure" || code == "InternalException" || code == "ServiceUnavailable"
}

// Publishers are the publishers cfg asks for, with clients from awsCfg: SNS
// to SNS_TOPIC_ARN in ALERT_FORMAT, and EventBridge to EVENT_BUS_NAME. None
// when neither is set.
func Publishers(awsCfg aws.Config, cfg config.Config, logger *slog.Logger) []drift.Publisher {
	var out []drift.Publisher
	if cfg.TopicARN != "" {
		out = append(out, NewPublisher(sns.NewFromConfig(awsCfg), cfg.TopicARN, WithFormat(cfg.AlertFormat), WithLogger(logger)))
	}
	if cfg.EventBusName != "" {
		out = append(out, NewEventBridgePublisher(eventbridge.NewFromConfig(awsCfg), cfg.EventBusName, WithEventLogger(logger)))
	}
	return out
}
