package alert

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/state"
)

// Claimed is a result whose transition an invocation holds, waiting for
// delivery: the unit that passes from the lifecycle stage (Pipeline.Claim)
// to grouping, fan-out and record (Pipeline.Notify). It is a plain value,
// JSON included, so that one invocation can claim and a later one notify.
type Claimed struct {
	// Result is the result as its message lists it (an applied owed by an
	// earlier run is restated as that update).
	Result drift.Result `json:"result"`
	// Host is the result's grouping host (drift.Result.Host).
	Host string `json:"host"`
	// Mode and CheckedAt are the run's.
	Mode      config.Mode `json:"mode"`
	CheckedAt time.Time   `json:"checked_at"`
	// Transition is what is sent.
	Transition Transition `json:"transition"`
	// Delivered are the integrations that took Transition before (by name,
	// as "sns"): Notify sends it to the others only.
	Delivered []string `json:"delivered,omitempty"`
	// FindingCreated is when the result's Security Hub finding was created;
	// zero: no finding to import (an applied that closes nothing).
	FindingCreated time.Time `json:"finding_created,omitzero"`
	// Claim is the claim id in the state table and ClaimUntil when it
	// lapses; empty without a state table (nothing to record).
	Claim      string    `json:"claim,omitempty"`
	ClaimUntil time.Time `json:"claim_until,omitzero"`
	// Version is the item version the claim wrote; Record is the item the
	// record stage writes once the integrations took the transition.
	Version int64       `json:"version,omitempty"`
	Record  *state.Item `json:"record,omitempty"`
}

// Key is the claimed result's key in the alert state.
func (c Claimed) Key() string { return c.Result.Key() }

// lifecycle is the stage that decides and claims transitions, and the one
// that records or releases them after delivery.
type lifecycle interface {
	// claim sets each observation's FirstSeen and returns the transitions
	// it claimed, in the observations' order, and observe, which writes
	// what needs no delivery (probe-failure counts, when thumbprints were
	// last seen): a run calls it after delivery, so that those writes never
	// hold up a claimed transition.
	claim(ctx context.Context, obs []drift.Result, now time.Time, hold time.Duration) (claimed []Claimed, observe func(context.Context) error, err error)
	// record stores c as delivered to the integrations delivered; when
	// complete is false, the others are still owed it.
	record(ctx context.Context, c Claimed, delivered []string, complete bool, now time.Time) error
	// release lets a retry send c.
	release(ctx context.Context, c Claimed) error
}

// stateless is the lifecycle without a state table: every problem is new,
// every update applied, on every run (probe-failed included); nothing is
// recorded.
type stateless struct{}

func (stateless) claim(_ context.Context, obs []drift.Result, now time.Time, _ time.Duration) ([]Claimed, func(context.Context) error, error) {
	var out []Claimed
	for i := range obs {
		r := &obs[i]
		c := Claimed{Result: *r}
		switch {
		case r.Outcome == drift.Updated:
			c.Transition = TransitionApplied
		case r.Outcome.Problem():
			c.Transition = TransitionNew
			r.FirstSeen = now.UTC().Format(time.RFC3339)
			c.Result.FirstSeen, c.FindingCreated = r.FirstSeen, now
		default:
			continue
		}
		out = append(out, c)
	}
	return out, func(context.Context) error { return nil }, nil
}

func (stateless) record(context.Context, Claimed, []string, bool, time.Time) error { return nil }
func (stateless) release(context.Context, Claimed) error                           { return nil }

// Lifecycle is the alert lifecycle over the state table (DESIGN.md "Alert
// lifecycle"): Next decides, conditional writes claim, record and release.
type Lifecycle struct {
	store  *state.Store
	policy Policy
	logger *slog.Logger
}

var _ lifecycle = (*Lifecycle)(nil)

// writeConcurrency bounds a run's state writes in flight.
const writeConcurrency = 16

// NewLifecycle returns the lifecycle over store; logger (nil: discard)
// receives the transitions lost to concurrent invocations.
func NewLifecycle(store *state.Store, p Policy, logger *slog.Logger) *Lifecycle {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Lifecycle{store: store, policy: p, logger: logger}
}

// Recall reads what the state remembers of a provider for its decision (a
// drift.Memory): when its thumbprints were last seen live (within
// SeenWindow), its last writer other than the function, the list the
// function last applied, and whether one was ever set back.
//
// The items are read in batches (BatchGetItem, 100 keys a call); a provider
// without an item is absent from the map.
func (l *Lifecycle) Recall(ctx context.Context, providerARNs []string, now time.Time) (map[string]drift.Recall, error) {
	items, err := l.store.Get(ctx, providerARNs)
	if err != nil {
		return nil, err
	}
	out := make(map[string]drift.Recall, len(items))
	for key, it := range items {
		rec := drift.Recall{Seen: drift.LastSeen{}, Writer: it.Writer, Wrote: it.Wrote, WroteAt: it.WroteAt, RevertedAt: it.RevertedAt}
		for t, at := range it.Seen {
			if now.Sub(at) < SeenWindow {
				rec.Seen[t] = at
			}
		}
		out[key] = rec
	}
	return out, nil
}

var _ drift.Memory = (*Lifecycle)(nil)

// claim reads the observations' state in batches, decides each transition
// (Next) and claims it; observe writes the observations that need no
// delivery. A transition another invocation holds or has already recorded
// is lost, which is no error. The error reports state that could not be
// read or written; the results concerned carry no transition. Each claim
// lasts hold from its own write.
func (l *Lifecycle) claim(ctx context.Context, obs []drift.Result, now time.Time, hold time.Duration) ([]Claimed, func(context.Context) error, error) {
	keys := make([]string, len(obs))
	for i, r := range obs {
		keys[i] = r.Key()
	}
	items, err := l.store.Get(ctx, keys)
	if err != nil {
		return nil, func(context.Context) error { return nil }, err
	}
	id, start := claimID(), time.Now()
	var quiet []func(context.Context) error
	claimed := make([]*Claimed, len(obs))
	var mu sync.Mutex
	var errs []error
	var writes errgroup.Group
	writes.SetLimit(writeConcurrency)
	for i := range obs {
		r := &obs[i]
		prev, ok := items[r.Key()]
		if !ok {
			prev = state.Item{Key: r.Key()}
		}
		st := Next(prev, *r, now, l.policy)
		if !st.FirstSeen.IsZero() {
			r.FirstSeen = st.FirstSeen.UTC().Format(time.RFC3339)
		}
		if st.Transition == TransitionNone {
			if st.Write {
				// One that loses a race is dropped: the other invocation
				// observed the same.
				quiet = append(quiet, func(ctx context.Context) error {
					if err := l.store.Save(ctx, prev, st.Quiet, now); err != nil && !errors.Is(err, state.ErrConflict) {
						return err
					}
					return nil
				})
			}
			continue
		}
		writes.Go(func() error {
			until := now.Add(hold + time.Since(start).Truncate(time.Second))
			c, err := l.claimOne(ctx, prev, st, *r, now, id, until)
			switch {
			case err != nil:
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			case c != nil:
				claimed[i] = c
			}
			return nil
		})
	}
	_ = writes.Wait()
	var out []Claimed
	for _, c := range claimed {
		if c != nil {
			out = append(out, *c)
		}
	}
	observe := func(ctx context.Context) error {
		var errs []error
		var mu sync.Mutex
		var g errgroup.Group
		g.SetLimit(writeConcurrency)
		for _, save := range quiet {
			g.Go(func() error {
				if err := save(ctx); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
				return nil
			})
		}
		_ = g.Wait()
		return errors.Join(errs...)
	}
	return out, observe, errors.Join(errs...)
}

// claimAttempts bounds how often a claim is decided again after another
// invocation wrote the item in between (an observation, or its own claim).
const claimAttempts = 3

// claimOne claims st's transition of r over prev. When the item changed
// since it was read (another invocation's observation, claim or record),
// it reads it again and decides again: the transition is then claimed, or
// found held or already sent by the other invocation (nil, no error).
func (l *Lifecycle) claimOne(ctx context.Context, prev state.Item, st Step, r drift.Result, now time.Time, id string, until time.Time) (*Claimed, error) {
	for attempt := 1; ; attempt++ {
		if prev.Claimed(now, "") {
			l.lost(ctx, r, st.Transition, "another invocation holds it")
			return nil, nil
		}
		err := l.store.Claim(ctx, prev, st.Quiet, id, until, now)
		if err == nil {
			c := &Claimed{Result: r, Transition: st.Transition, Delivered: st.Delivered, FindingCreated: st.FindingCreated,
				Claim: id, ClaimUntil: until, Version: prev.Version + 1, Record: &st.Full}
			if st.Owed != "" {
				owedResult(&c.Result, st.Owed, st.OwedAt)
			}
			return c, nil
		}
		if !errors.Is(err, state.ErrConflict) || attempt == claimAttempts {
			if errors.Is(err, state.ErrConflict) {
				l.lost(ctx, r, st.Transition, "another invocation claimed or sent it")
				return nil, nil
			}
			return nil, err
		}
		items, err := l.store.Get(ctx, []string{r.Key()})
		if err != nil {
			return nil, err
		}
		var ok bool
		if prev, ok = items[r.Key()]; !ok {
			prev = state.Item{Key: r.Key()}
		}
		if st = Next(prev, r, now, l.policy); st.Transition == TransitionNone {
			l.lost(ctx, r, "", "another invocation sent it")
			return nil, nil
		}
	}
}

// record stores c's transition as sent (Record): with the integrations
// that took it when others did not. A claim taken over after it lapsed
// means the other invocation sends the transition too (at-least-once);
// that is logged, not an error.
func (l *Lifecycle) record(ctx context.Context, c Claimed, delivered []string, complete bool, now time.Time) error {
	if c.Record == nil {
		return fmt.Errorf("record alert state of %s: the claim carries no record", c.Key())
	}
	next := c.Record.Clone()
	if !complete {
		next.OwedTransition, next.DeliveredTo = string(c.Transition), delivered
	}
	err := l.store.Record(ctx, next, c.Version, c.Claim, now)
	if errors.Is(err, state.ErrConflict) {
		l.logger.WarnContext(ctx, "transition delivered after its claim lapsed and another invocation took it over: it may be sent twice", "key", c.Key())
		return nil
	}
	return err
}

// release removes c's claim so that a retry sends it. A release that fails
// leaves the claim to lapse: the retry after it sends.
func (l *Lifecycle) release(ctx context.Context, c Claimed) error {
	if err := l.store.Release(ctx, c.Key(), c.Claim); err != nil && !errors.Is(err, state.ErrConflict) {
		return err
	}
	return nil
}

// owedResult restates r, for its message, as the update an earlier run
// applied (id: stored list ">" new list, lowercase) whose applied was not
// delivered. The report keeps what this run saw.
func owedResult(r *drift.Result, id string, at time.Time) {
	split := func(s string) []string {
		if s == "" {
			return []string{}
		}
		return strings.Split(s, ",")
	}
	stored, written, _ := strings.Cut(id, ">")
	r.Outcome, r.Severity, r.BreaksAssumeRole = drift.Updated, drift.SeverityInfo, false
	r.StoredThumbprints, r.NewThumbprints = split(stored), split(written)
	r.Detail = "thumbprint list replaced at " + at.UTC().Format(time.RFC3339) + " by a run whose alert was not delivered; sent now"
}

func (l *Lifecycle) lost(ctx context.Context, r drift.Result, t Transition, why string) {
	l.logger.InfoContext(ctx, "transition not sent by this run: "+why, "key", r.Key(), "transition", string(t), "outcome", string(r.Outcome))
}

func claimID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
