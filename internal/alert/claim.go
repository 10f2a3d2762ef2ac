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
	// settle stores what delivery made of claimed transitions, together:
	// each recorded, or released so that a retry sends it. errs[i] is the
	// error of ss[i].
	settle(ctx context.Context, ss []settlement, now time.Time) (errs []error)
}

// settlement is what delivery made of one claimed transition: recorded as
// delivered to the integrations delivered (complete false: the others are
// still owed it), or, with release, delivered to none.
type settlement struct {
	c         Claimed
	delivered []string
	complete  bool
	release   bool
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

func (stateless) settle(_ context.Context, ss []settlement, _ time.Time) []error {
	return make([]error, len(ss))
}

// Lifecycle is the alert lifecycle over the state table (DESIGN.md "Alert
// lifecycle"): Next decides, conditional writes claim, record and release.
type Lifecycle struct {
	store  *state.Store
	policy Policy
	logger *slog.Logger
}

var _ lifecycle = (*Lifecycle)(nil)

// writeConcurrency bounds a run's state writes in flight outside
// transactions: the claims read and decided again.
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
// read or written; the results concerned carry no transition.
//
// The claims are written together (state.WriteAll: a transaction of up to
// state.MaxTransactItems claims at a time), each lasting hold from its
// transaction's write; those another invocation wrote in between are read,
// decided and claimed again one by one (claimAgain). observe writes its
// observations together too.
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
	type pending struct {
		i     int // in obs
		prev  state.Item
		st    Step
		until time.Time
	}
	var quiet []state.Write
	var todo []pending
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
		switch {
		case st.Transition == TransitionNone:
			if st.Write {
				quiet = append(quiet, state.SaveWrite(prev, st.Quiet, now))
			}
		case prev.Claimed(now, ""):
			l.lost(ctx, *r, st.Transition, "another invocation holds it")
		default:
			todo = append(todo, pending{i: i, prev: prev, st: st})
		}
	}
	claimed := make([]*Claimed, len(obs))
	var errs []error
	var again []pending
	for from := 0; from < len(todo); from += state.MaxTransactItems {
		chunk := todo[from:min(from+state.MaxTransactItems, len(todo))]
		until := now.Add(hold + time.Since(start).Truncate(time.Second))
		ws := make([]state.Write, len(chunk))
		for j, p := range chunk {
			ws[j] = state.ClaimWrite(p.prev, p.st.Quiet, id, until, now)
		}
		for j, err := range l.store.WriteAll(ctx, ws) {
			p := chunk[j]
			switch {
			case err == nil:
				claimed[p.i] = newClaimed(obs[p.i], p.st, id, until, p.prev.Version+1)
			case errors.Is(err, state.ErrConflict):
				p.until = until
				again = append(again, p)
			default:
				errs = append(errs, err)
			}
		}
	}
	var mu sync.Mutex
	var writes errgroup.Group
	writes.SetLimit(writeConcurrency)
	for _, p := range again {
		writes.Go(func() error {
			c, err := l.claimAgain(ctx, obs[p.i], now, id, p.until)
			switch {
			case err != nil:
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			case c != nil:
				claimed[p.i] = c
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
		for _, err := range l.store.WriteAll(ctx, quiet) {
			// One that loses a race is dropped: the other invocation
			// observed the same.
			if err != nil && !errors.Is(err, state.ErrConflict) {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	return out, observe, errors.Join(errs...)
}

// claimAttempts bounds how often a claim is written: the first, and again
// after another invocation wrote the item in between (an observation, or
// its own claim).
const claimAttempts = 3

// claimAgain claims r's transition after its claim lost to another
// invocation's write (an observation, a claim, a record): it reads the item
// again and decides again. The transition is then claimed, or found held or
// already sent by the other invocation (nil, no error).
func (l *Lifecycle) claimAgain(ctx context.Context, r drift.Result, now time.Time, id string, until time.Time) (*Claimed, error) {
	for attempt := 2; ; attempt++ {
		items, err := l.store.Get(ctx, []string{r.Key()})
		if err != nil {
			return nil, err
		}
		prev, ok := items[r.Key()]
		if !ok {
			prev = state.Item{Key: r.Key()}
		}
		st := Next(prev, r, now, l.policy)
		switch {
		case st.Transition == TransitionNone:
			l.lost(ctx, r, "", "another invocation sent it")
			return nil, nil
		case prev.Claimed(now, ""):
			l.lost(ctx, r, st.Transition, "another invocation holds it")
			return nil, nil
		}
		err = l.store.Claim(ctx, prev, st.Quiet, id, until, now)
		switch {
		case err == nil:
			return newClaimed(r, st, id, until, prev.Version+1), nil
		case !errors.Is(err, state.ErrConflict):
			return nil, err
		case attempt == claimAttempts:
			l.lost(ctx, r, st.Transition, "another invocation claimed or sent it")
			return nil, nil
		}
	}
}

// newClaimed is r's transition of st, claimed with id until until; the
// claim wrote version.
func newClaimed(r drift.Result, st Step, id string, until time.Time, version int64) *Claimed {
	full := st.Full
	c := &Claimed{Result: r, Transition: st.Transition, Delivered: st.Delivered, FindingCreated: st.FindingCreated,
		Claim: id, ClaimUntil: until, Version: version, Record: &full}
	if st.Owed != "" {
		owedResult(&c.Result, st.Owed, st.OwedAt)
	}
	return c
}

// settle stores the settlements together (state.WriteAll): a transition
// recorded as sent (Record), with the integrations that took it when others
// did not, or its claim released (Release) so that a retry sends it. A
// claim taken over after it lapsed means the other invocation sends the
// transition too (at-least-once): that is logged, not an error; a release
// that finds the claim gone needs nothing. A release that fails leaves the
// claim to lapse: the retry after it sends.
func (l *Lifecycle) settle(ctx context.Context, ss []settlement, now time.Time) []error {
	errs := make([]error, len(ss))
	var ws []state.Write
	var at []int // ws[j] settles ss[at[j]]
	for i, s := range ss {
		switch {
		case s.release:
			ws = append(ws, state.ReleaseWrite(s.c.Key(), s.c.Claim))
		case s.c.Record == nil:
			errs[i] = fmt.Errorf("record alert state of %s: the claim carries no record", s.c.Key())
			continue
		default:
			next := s.c.Record.Clone()
			if !s.complete {
				next.OwedTransition, next.DeliveredTo = string(s.c.Transition), s.delivered
			}
			ws = append(ws, state.RecordWrite(next, s.c.Version, s.c.Claim, now))
		}
		at = append(at, i)
	}
	for j, err := range l.store.WriteAll(ctx, ws) {
		i := at[j]
		if errors.Is(err, state.ErrConflict) {
			if !ss[i].release {
				l.logger.WarnContext(ctx, "transition delivered after its claim lapsed and another invocation took it over: it may be sent twice", "key", ss[i].c.Key())
			}
			err = nil
		}
		errs[i] = err
	}
	return errs
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
