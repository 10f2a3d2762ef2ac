package alert

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/state"
)

// Policy is the lifecycle's configuration.
type Policy struct {
	// RealertInterval: a problem still there this long after its last alert
	// is sent again as a reminder; 0 never reminds (REALERT_INTERVAL).
	RealertInterval time.Duration
	// ProbeFailuresToAlert is how many consecutive runs must fail to probe a
	// provider before probe-failed is alerted (PROBE_FAILURES_TO_ALERT).
	ProbeFailuresToAlert int
}

// Timing of the seen-live record and of applied's deduplication.
const (
	// SeenRefresh: when a live thumbprint was last seen is written again
	// only this long after the time recorded, so a quiet run writes nothing.
	SeenRefresh = 24 * time.Hour
	// SeenWindow is how long a sighting counts for Merge; older ones are
	// forgotten. A staged thumbprint (the CLI's stage) counts as seen for as
	// long.
	SeenWindow = state.Retention
	// MaxSeen bounds the sightings kept per provider (the most recent).
	MaxSeen = 16
	// AppliedWindow: an update identical to the one last applied (same
	// stored list replaced by the same new list) within this window is the
	// same action seen by two concurrent invocations (both wrote the same
	// list before either read the other's write), so applied is sent once.
	// It is Lambda's longest invocation.
	AppliedWindow = 15 * time.Minute
)

// Step is the lifecycle's decision for one key in one run.
type Step struct {
	// Transition is what to send; none when nothing is.
	Transition drift.Transition
	// FirstSeen is when the result's problem was first seen (zero for
	// results that are not problems). For probe-failed it is the first
	// failed run of the streak, before the alert threshold too.
	FirstSeen time.Time
	// Quiet is the item with this run's observations (probe-failure count,
	// current problem, seen times): written without a delivery, by the claim
	// when there is a transition.
	Quiet state.Item
	// Full is Quiet plus what the delivered transition records.
	Full state.Item
	// Write says Quiet differs from the item read.
	Write bool
	// Owed, when set, is an update an earlier run applied whose applied was
	// not delivered (stored list ">" new list); this step's applied
	// delivers it, and OwedAt is when it was applied.
	Owed   string
	OwedAt time.Time
}

// Next decides the transition of result r given prev, the key's item as
// read (Version 0: none), at now. It is DESIGN.md's lifecycle table:
//
//   - a problem (drift, probe-failed, update-failed, expiring,
//     account-failed), identified by its outcome and sorted live
//     thumbprints: new when none is open, changed when the open one differs,
//     reminder when it is the same and RealertInterval has passed since it
//     was last sent (never with 0);
//   - probe-failed counts as a problem only once ProbeFailuresToAlert
//     consecutive runs failed; until then it is counted, not sent;
//   - in-sync: resolved when a problem is open;
//   - updated: applied, which also closes an open problem, except when
//     the identical update was applied within AppliedWindow.
//
// An applied whose delivery failed is owed: the claim stores it (the record
// clears it), so that a retry, which finds the provider in sync, still sends
// applied (in place of resolved). A problem seen again drops it: its own
// transitions tell the state that matters now.
//
// first_seen is kept while the problem's outcome persists: a changed live
// thumbprint (the identity provider rotated again while the provider still
// drifts) sends changed but keeps first_seen, since the provider has been
// drifting since then; a different outcome starts it again.
func Next(prev state.Item, r drift.Result, now time.Time, p Policy) Step {
	q := prev.Clone()
	q.Key = r.Key()
	dirty := false

	live := drift.SortedLive(r.LiveThumbprints)
	for _, t := range live {
		if last, ok := q.Seen[t]; !ok || now.Sub(last) >= SeenRefresh {
			if q.Seen == nil {
				q.Seen = map[string]time.Time{}
			}
			q.Seen[t] = now
			dirty = true
		}
	}

	var problem drift.Outcome
	var since time.Time
	switch {
	case r.Outcome == drift.ProbeFailed:
		if q.ProbeFailures == 0 {
			q.FailingSince = now
		}
		if q.ProbeFailures < max(p.ProbeFailuresToAlert, 1) {
			q.ProbeFailures++
			dirty = true
		}
		if q.ProbeFailures < p.ProbeFailuresToAlert {
			// Not a problem yet: the open problem, if any, stays as it is.
			return finish(Step{FirstSeen: q.FailingSince, Quiet: q, Full: q, Write: dirty}, now)
		}
		problem, since = drift.ProbeFailed, q.FailingSince
	case r.Outcome.Problem():
		problem, since = r.Outcome, now
		if q.Owed != "" {
			q.Owed, q.OwedAt = "", time.Time{}
			dirty = true
		}
	}
	if r.Outcome != drift.ProbeFailed && (q.ProbeFailures != 0 || !q.FailingSince.IsZero()) {
		q.ProbeFailures, q.FailingSince = 0, time.Time{}
		dirty = true
	}
	if q.Problem != string(problem) {
		q.Problem, q.FirstSeen = string(problem), since
		dirty = true
	}

	step := Step{FirstSeen: q.FirstSeen, Quiet: q, Write: dirty}
	full := q.Clone()
	switch {
	case r.Outcome == drift.Updated:
		id := appliedID(r)
		if prev.Applied == id && !now.Before(prev.AppliedAt) && now.Sub(prev.AppliedAt) < AppliedWindow {
			break // another invocation sent this very update
		}
		step.Transition = drift.TransitionApplied
		step.Quiet.Owed, step.Quiet.OwedAt = id, now
		full.Outcome, full.Live, full.AlertedAt = "", nil, time.Time{}
		full.Applied, full.AppliedAt = id, now
		full.Owed, full.OwedAt = "", time.Time{}
	case problem != "":
		switch {
		case prev.Outcome == "":
			step.Transition = drift.TransitionNew
		case prev.Outcome != string(problem) || !slices.Equal(prev.Live, live):
			step.Transition = drift.TransitionChanged
		case p.RealertInterval > 0 && !now.Before(prev.AlertedAt.Add(p.RealertInterval)):
			step.Transition = drift.TransitionReminder
		}
		if step.Transition != drift.TransitionNone {
			full.Outcome, full.Live, full.AlertedAt = string(problem), live, now
		}
	case q.Owed != "":
		step.Transition, step.Owed, step.OwedAt = drift.TransitionApplied, q.Owed, q.OwedAt
		full.Outcome, full.Live, full.AlertedAt = "", nil, time.Time{}
		full.Applied, full.AppliedAt = q.Owed, q.OwedAt
		full.Owed, full.OwedAt = "", time.Time{}
	default:
		if prev.Outcome != "" {
			step.Transition = drift.TransitionResolved
			full.Outcome, full.Live, full.AlertedAt = "", nil, time.Time{}
		}
	}
	if step.Transition == drift.TransitionNone {
		full = q
	}
	step.Full = full
	return finish(step, now)
}

// finish forgets sightings past SeenWindow (beyond MaxSeen, the oldest) in
// what is about to be written.
func finish(s Step, now time.Time) Step {
	if !s.Write && s.Transition == drift.TransitionNone {
		return s
	}
	prune := func(it *state.Item) {
		if len(it.Seen) == 0 {
			return
		}
		seen := maps.Clone(it.Seen)
		maps.DeleteFunc(seen, func(_ string, at time.Time) bool { return now.Sub(at) >= SeenWindow })
		if len(seen) > MaxSeen {
			keys := slices.SortedFunc(maps.Keys(seen), func(a, b string) int { return seen[b].Compare(seen[a]) })
			for _, k := range keys[MaxSeen:] {
				delete(seen, k)
			}
		}
		it.Seen = seen
	}
	prune(&s.Quiet)
	prune(&s.Full)
	return s
}

// appliedID identifies an update: the stored list it replaced and the list
// it wrote.
func appliedID(r drift.Result) string {
	lower := func(l []string) string {
		out := make([]string, len(l))
		for i, t := range l {
			out[i] = strings.ToLower(t)
		}
		return strings.Join(out, ",")
	}
	return lower(r.StoredThumbprints) + ">" + lower(r.NewThumbprints)
}

// Lifecycle is the alert lifecycle over the state table: a drift.Lifecycle.
type Lifecycle struct {
	store  *state.Store
	policy Policy
	logger *slog.Logger
	// writes bounds the state writes in flight across a run's messages.
	writes chan struct{}
}

var _ drift.Lifecycle = (*Lifecycle)(nil)

// writeConcurrency bounds a run's state writes in flight.
const writeConcurrency = 16

// NewLifecycle returns the lifecycle over store; logger (nil: discard)
// receives the transitions lost to concurrent invocations.
func NewLifecycle(store *state.Store, p Policy, logger *slog.Logger) *Lifecycle {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Lifecycle{store: store, policy: p, logger: logger, writes: make(chan struct{}, writeConcurrency)}
}

// LastSeen reads when the provider's thumbprints were last seen live, within
// SeenWindow.
func (l *Lifecycle) LastSeen(ctx context.Context, providerARN string, now time.Time) (drift.LastSeen, error) {
	items, err := l.store.Get(ctx, []string{providerARN})
	if err != nil {
		return nil, err
	}
	out := drift.LastSeen{}
	for t, at := range items[providerARN].Seen {
		if now.Sub(at) < SeenWindow {
			out[t] = at
		}
	}
	return out, nil
}

// claim is a transition this run holds.
type claim struct {
	version int64
	full    state.Item
}

// pending is a run's claims and quiet writes.
type pending struct {
	l     *Lifecycle
	id    string
	now   time.Time
	mu    sync.Mutex
	held  map[string]claim
	quiet []save
}

type save struct{ prev, next state.Item }

// Begin reads the results' state in batches, decides each transition (Next)
// and claims it.
func (l *Lifecycle) Begin(ctx context.Context, results []drift.Result, now time.Time, hold time.Duration) (drift.Pending, error) {
	keys := make([]string, len(results))
	for i, r := range results {
		keys[i] = r.Key()
	}
	items, err := l.store.Get(ctx, keys)
	if err != nil {
		return nil, err
	}
	p := &pending{l: l, id: claimID(), now: now, held: map[string]claim{}}
	until := now.Add(hold)
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for i := range results {
		r := &results[i]
		prev, ok := items[r.Key()]
		if !ok {
			prev = state.Item{Key: r.Key()}
		}
		st := Next(prev, *r, now, l.policy)
		r.Transition = drift.TransitionNone
		if !st.FirstSeen.IsZero() {
			r.FirstSeen = st.FirstSeen.UTC().Format(time.RFC3339)
		}
		if st.Transition == drift.TransitionNone {
			if st.Write {
				p.quiet = append(p.quiet, save{prev, st.Quiet})
			}
			continue
		}
		if prev.Claimed(now, "") {
			l.lost(ctx, *r, st.Transition, "another invocation holds it")
			continue
		}
		wg.Add(1)
		l.writes <- struct{}{}
		go func() {
			defer func() { <-l.writes; wg.Done() }()
			err := l.store.Claim(ctx, prev, st.Quiet, p.id, until, now)
			switch {
			case errors.Is(err, state.ErrConflict):
				l.lost(ctx, *r, st.Transition, "another invocation claimed or sent it")
			case err != nil:
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			default:
				r.Transition = st.Transition
				if st.Owed != "" {
					owedResult(r, st.Owed, st.OwedAt)
				}
				p.mu.Lock()
				p.held[r.Key()] = claim{version: prev.Version + 1, full: st.Full}
				p.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return p, errors.Join(errs...)
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

func (l *Lifecycle) lost(ctx context.Context, r drift.Result, t drift.Transition, why string) {
	l.logger.InfoContext(ctx, "transition not sent by this run: "+why, "key", r.Key(), "transition", string(t), "outcome", string(r.Outcome))
}

// each runs f for every held claim of results, at most writeConcurrency
// writes at once.
func (p *pending) each(results []drift.Result, f func(key string, c claim) error) error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, r := range results {
		p.mu.Lock()
		c, ok := p.held[r.Key()]
		delete(p.held, r.Key())
		p.mu.Unlock()
		if !ok {
			continue
		}
		wg.Add(1)
		p.l.writes <- struct{}{}
		go func() {
			defer func() { <-p.l.writes; wg.Done() }()
			if err := f(r.Key(), c); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Delivered records the transitions of results as sent. A claim taken over
// after it lapsed means the other invocation sends the transition too
// (at-least-once); that is logged, not an error.
func (p *pending) Delivered(ctx context.Context, results []drift.Result) error {
	return p.each(results, func(key string, c claim) error {
		err := p.l.store.Record(ctx, c.full, c.version, p.id, p.now)
		if errors.Is(err, state.ErrConflict) {
			p.l.logger.WarnContext(ctx, "transition delivered after its claim lapsed and another invocation took it over: it may be sent twice", "key", key)
			return nil
		}
		return err
	})
}

// Undelivered releases the claims of results, so that a retry sends them.
// A release that fails leaves the claim to lapse: the retry after it sends.
func (p *pending) Undelivered(ctx context.Context, results []drift.Result) error {
	return p.each(results, func(key string, _ claim) error {
		if err := p.l.store.Release(ctx, key, p.id); err != nil && !errors.Is(err, state.ErrConflict) {
			return err
		}
		return nil
	})
}

// Close writes the observations of results without a transition. One that
// loses a race is dropped: the other invocation observed the same.
func (p *pending) Close(ctx context.Context) error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, s := range p.quiet {
		wg.Add(1)
		p.l.writes <- struct{}{}
		go func() {
			defer func() { <-p.l.writes; wg.Done() }()
			if err := p.l.store.Save(ctx, s.prev, s.next, p.now); err != nil && !errors.Is(err, state.ErrConflict) {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	p.quiet = nil
	return errors.Join(errs...)
}

func claimID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
