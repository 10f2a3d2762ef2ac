package alert

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

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
func BuildEvent(m Message, bus string) (Event, error) {
	return buildEvent(m, bus, MaxEventBytes-1)
}

func buildEvent(m Message, bus string, limit int) (Event, error) {
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
	ev, err := largestFitting(len(full.Results), limit, func(n int) (sized, error) { return build(n) })
	if err != nil {
		return Event{}, fmt.Errorf("%s %s event for %s: %w", m.Transition, m.Outcome, messageWhere(m), err)
	}
	return ev.(Event), nil
}

// EventBridgePublisher puts one event per grouped message on an EventBridge
// bus (EVENT_BUS_NAME).
type EventBridgePublisher struct {
	api    EventBridgeAPI
	bus    string
	logger *slog.Logger
}

var _ Integration = (*EventBridgePublisher)(nil)

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

// NewEventBridgePublisher returns a publisher to the bus named (or ARN) bus
// through api (an *eventbridge.Client).
func NewEventBridgePublisher(api EventBridgeAPI, bus string, opts ...EventBridgeOption) *EventBridgePublisher {
	p := &EventBridgePublisher{api: api, bus: bus, logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Name is "eventbridge".
func (p *EventBridgePublisher) Name() string { return "eventbridge" }

// Notify puts m as one event. An entry EventBridge fails (FailedEntryCount)
// is a *Refused of every result of m, with the entry's error code: the
// pipeline's retry stage sends it again when the code is throttling or an
// internal failure, and otherwise m is not delivered to EventBridge, so a
// retried invocation sends it here again (and not to the other integrations).
func (p *EventBridgePublisher) Notify(ctx context.Context, m Message) error {
	ev, err := BuildEvent(m, p.bus)
	if err != nil {
		return fmt.Errorf("build event for bus %s: %w", p.bus, err)
	}
	logOmitted(ctx, p.logger, "EventBridge event", m, ev.Omitted, MaxEventBytes-1)
	out, err := p.api.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{ev.Entry}})
	if err != nil {
		return fmt.Errorf("put %s event for %s (%s) on bus %s: %w", aws.ToString(ev.Entry.DetailType), messageWhere(m), messageCount(m), p.bus, err)
	}
	if out.FailedEntryCount == 0 && (len(out.Entries) == 0 || out.Entries[0].ErrorCode == nil) {
		return nil
	}
	why := Refusal{Code: "unknown", Message: "PutEvents failed the entry on bus " + p.bus}
	if len(out.Entries) > 0 {
		why = Refusal{Code: aws.ToString(out.Entries[0].ErrorCode), Message: aws.ToString(out.Entries[0].ErrorMessage) + " (bus " + p.bus + ")"}
	}
	refused := &Refused{Keys: make(map[string]Refusal, len(m.Results))}
	for _, r := range m.Results {
		refused.Keys[r.Key()] = why
	}
	return refused
}
