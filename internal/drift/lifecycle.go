package drift

import (
	"context"
	"errors"
	"time"
)

// Lifecycle is the alert lifecycle (DESIGN.md "Alert lifecycle"): it decides
// which results carry a transition and remembers the transitions delivered,
// so that each goes out once (an *alert.Lifecycle over the state table).
// Without one, an Engine is stateless: every problem is new and every update
// applied, on every run.
type Lifecycle interface {
	// LastSeen returns when each thumbprint of a provider was last seen
	// live, for a merge that cuts the list (Merge).
	LastSeen(ctx context.Context, providerARN string, now time.Time) (LastSeen, error)
	// Begin reads the state of the results' keys (a provider's ARN, an
	// account's key for account-failed) and sets each result's Transition and
	// FirstSeen; it may restate a result for its message (the update an
	// earlier run applied, whose applied it sends now). It claims each transition so that no other invocation sends
	// it until this one records or releases it, or until hold has passed; a
	// transition another invocation holds or has already recorded is cleared
	// (the race is lost, which is no error). The error reports state that
	// could not be read or claimed; the results concerned carry no transition.
	Begin(ctx context.Context, results []Result, now time.Time, hold time.Duration) (Pending, error)
}

// Pending is a run's claimed transitions, waiting for delivery.
type Pending interface {
	// Delivered records the transitions of results (of one message) as sent.
	Delivered(ctx context.Context, results []Result) error
	// Undelivered releases their claims so that a retry sends them.
	Undelivered(ctx context.Context, results []Result) error
	// Close writes what needs no delivery: probe-failure counts and when
	// live thumbprints were last seen.
	Close(ctx context.Context) error
}

// Errors Run returns (wrapped) for alerting, after every provider was processed.
var (
	// ErrNotDelivered: a message could not be delivered; its transitions
	// were not recorded, so a retried invocation sends them.
	ErrNotDelivered = errors.New("alert not delivered")
	// ErrState: the alert state could not be read or written.
	ErrState = errors.New("alert state")
)

// ClaimHold is how long a run's claims on its transitions last, from the
// time left before the invocation's deadline: that time, at least 5s and at
// most a minute (a minute without a deadline). The run stops publishing
// before its claims lapse; a claim that a crash leaves behind lapses within
// a minute, so Lambda's retry (a minute or more later) or the next run sends
// the transition.
func ClaimHold(ctx context.Context) time.Duration {
	const lo, hi = 5 * time.Second, time.Minute
	dl, ok := ctx.Deadline()
	if !ok {
		return hi
	}
	return min(max(time.Until(dl), lo), hi)
}

// stateless is the lifecycle without a state table: every problem is new,
// every update applied, on every run (probe-failed included).
type stateless struct{}

func (stateless) LastSeen(context.Context, string, time.Time) (LastSeen, error) { return nil, nil }

func (stateless) Begin(_ context.Context, results []Result, now time.Time, _ time.Duration) (Pending, error) {
	for i := range results {
		r := &results[i]
		switch {
		case r.Outcome == Updated:
			r.Transition = TransitionApplied
		case r.Outcome.Problem():
			r.Transition = TransitionNew
			r.FirstSeen = now.UTC().Format(time.RFC3339)
		}
	}
	return nothingPending{}, nil
}

type nothingPending struct{}

func (nothingPending) Delivered(context.Context, []Result) error   { return nil }
func (nothingPending) Undelivered(context.Context, []Result) error { return nil }
func (nothingPending) Close(context.Context) error                 { return nil }
