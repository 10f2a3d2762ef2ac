package alert

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/iac"
	"github.com/thumbprint-drift/thumbprint-drift/internal/oidcprovider"
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
	// ExpiryOff is EXPIRY_WARNING=0: an alerted expiring whose provider is
	// now in sync is forgotten quietly, not resolved, since turning the
	// warning off fixes nothing.
	ExpiryOff bool
}

// Timing of the seen-live record.
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
)

// Step is the lifecycle's decision for one key in one run.
type Step struct {
	// Transition is what to send; none when nothing is.
	Transition Transition
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
	// Delivered are the integrations that already took Transition: an
	// earlier run delivered it to them and not to the others, which this
	// step's delivery owes it to.
	Delivered []string
	// FindingCreated is when the key's Security Hub finding was created
	// (its first problem alerted); zero when the transition has no finding
	// to import (an applied that closes no alerted problem).
	FindingCreated time.Time
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
//   - in-sync: resolved when a problem is open, except an expiring with
//     the warning off (Policy.ExpiryOff), forgotten quietly;
//   - updated: applied, which also closes an open problem, except when the
//     identical update was applied and its list is still the one the
//     function wrote: the same action seen by two concurrent invocations
//     (both wrote the same list before either read the other's write). An
//     identical update can come again only after another writer's list was
//     found in its place (a revert is never written over).
//
// It also keeps what the state knows of the code that owns the provider
// (DESIGN.md "Infrastructure as code"), as quiet fields: the writer a
// CloudTrail event named, when newer than the one recorded; the list the
// function applied (updated), forgotten once another writer's list is found
// in sync; and when a list it applied was first found set back (reverted).
//
// An applied whose delivery failed is owed: the claim stores it (the record
// clears it), so that a retry, which finds the provider in sync, still sends
// applied (in place of resolved). A problem seen again drops it: its own
// transitions tell the state that matters now.
//
// A transition that some integrations took and others did not is recorded
// as sent with the integrations that took it (prev.OwedTransition,
// prev.DeliveredTo): while it still holds, and nothing newer is to be
// sent, the step sends it again, to the other integrations only. A newer
// transition replaces it for every integration.
//
// first_seen is kept while the problem's outcome persists: a changed live
// thumbprint (the identity provider rotated again while the provider still
// drifts) sends changed but keeps first_seen, since the provider has been
// drifting since then; a different outcome starts it again.
func Next(prev state.Item, r drift.Result, now time.Time, p Policy) Step {
	q := prev.Clone()
	q.Key = r.Key()
	dirty := false

	live := SortedLive(r.LiveThumbprints)
	for _, t := range live {
		if last, ok := q.Seen[t]; !ok || now.Sub(last) >= SeenRefresh {
			if q.Seen == nil {
				q.Seen = map[string]time.Time{}
			}
			q.Seen[t] = now
			dirty = true
		}
	}

	if w := r.EventWriter; w != nil && iac.Newer(q.Writer, w) == w {
		q.Writer = w
		dirty = true
	}
	switch {
	case r.Outcome == drift.Updated && !oidcprovider.SameList(q.Wrote, r.NewThumbprints):
		q.Wrote, q.WroteAt = slices.Clone(r.NewThumbprints), now
		dirty = true
	case r.Outcome == drift.Reverted && q.RevertedAt.IsZero():
		q.RevertedAt = now
		dirty = true
	case (r.Outcome == drift.InSync || r.Outcome == drift.Expiring) && len(q.Wrote) > 0 && !oidcprovider.SameList(q.Wrote, r.StoredThumbprints):
		q.Wrote, q.WroteAt = nil, time.Time{}
		dirty = true
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
	// Full shares q's maps and slices (fields are replaced below, never
	// changed in place): a Step's items are read, not changed, once made.
	full := q
	switch {
	case r.Outcome == drift.Updated:
		id := appliedID(r)
		if prev.Applied == id && oidcprovider.SameList(prev.Wrote, r.NewThumbprints) {
			break // another invocation sent this very update
		}
		step.Transition = TransitionApplied
		step.Quiet.Owed, step.Quiet.OwedAt = id, now
		full.Outcome, full.Live, full.AlertedAt = "", nil, time.Time{}
		full.Applied, full.AppliedAt = id, now
		full.Owed, full.OwedAt = "", time.Time{}
	case problem != "":
		switch {
		case prev.Outcome == "":
			step.Transition = TransitionNew
		case prev.Outcome != string(problem) || !slices.Equal(prev.Live, live):
			step.Transition = TransitionChanged
		case p.RealertInterval > 0 && !now.Before(prev.AlertedAt.Add(p.RealertInterval)):
			step.Transition = TransitionReminder
		}
		if step.Transition != TransitionNone {
			full.Outcome, full.Live, full.AlertedAt = string(problem), live, now
		}
	case q.Owed != "":
		step.Transition, step.Owed, step.OwedAt = TransitionApplied, q.Owed, q.OwedAt
		full.Outcome, full.Live, full.AlertedAt = "", nil, time.Time{}
		full.Applied, full.AppliedAt = q.Owed, q.OwedAt
		full.Owed, full.OwedAt = "", time.Time{}
	case p.ExpiryOff && prev.Outcome == string(drift.Expiring) && r.Outcome == drift.InSync:
		// The warning was turned off, the certificate may still expire:
		// no resolved, the open expiring is forgotten quietly.
		q.Outcome, q.Live, q.AlertedAt = "", nil, time.Time{}
		step.Quiet, step.Write = q, true
	default:
		if prev.Outcome != "" {
			step.Transition = TransitionResolved
			full.Outcome, full.Live, full.AlertedAt = "", nil, time.Time{}
		}
	}
	switch {
	case step.Transition != TransitionNone:
		step.FindingCreated = findingCreated(prev, &full, step.Transition, problem, now)
	case prev.OwedTransition != "" && owedHolds(prev, r, problem):
		step.Transition, step.Delivered = Transition(prev.OwedTransition), prev.DeliveredTo
		step.FindingCreated = prev.FindingCreated
		if step.Transition == TransitionApplied {
			step.Owed, step.OwedAt = prev.Applied, prev.AppliedAt
		}
		full = q
	default:
		full = q
	}
	// What integrations owe is set by the record of a partial delivery.
	full.OwedTransition, full.DeliveredTo = "", nil
	step.Full = full
	return finish(step, now)
}

// finish forgets sightings past SeenWindow (beyond MaxSeen, the oldest) in
// what is about to be written. The seen map is Next's own (a clone of the
// item read, which Quiet and Full share), so it is pruned in place.
func finish(s Step, now time.Time) Step {
	if !s.Write && s.Transition == TransitionNone {
		return s
	}
	for _, seen := range []map[string]time.Time{s.Quiet.Seen, s.Full.Seen} {
		maps.DeleteFunc(seen, func(_ string, at time.Time) bool { return now.Sub(at) >= SeenWindow })
		if len(seen) > MaxSeen {
			keys := slices.SortedFunc(maps.Keys(seen), func(a, b string) int { return seen[b].Compare(seen[a]) })
			for _, k := range keys[MaxSeen:] {
				delete(seen, k)
			}
		}
	}
	return s
}

// findingCreated is when the Security Hub finding of a transition t was
// created, which full (the record) keeps: the first problem's first sight,
// through every update and the archive. An applied that closes no alerted
// problem has no finding (zero).
func findingCreated(prev state.Item, full *state.Item, t Transition, problem drift.Outcome, now time.Time) time.Time {
	created := cmp.Or(prev.FindingCreated, prev.FirstSeen)
	switch {
	case problem != "" && t != TransitionApplied:
		created = cmp.Or(created, full.FirstSeen, now)
	case prev.Outcome != "":
		created = cmp.Or(created, now)
	default:
		return time.Time{}
	}
	full.FindingCreated = created
	return created
}

// owedHolds reports whether prev's partly delivered transition still tells
// the state of r: the same problem, or, for resolved and applied, no problem.
func owedHolds(prev state.Item, r drift.Result, problem drift.Outcome) bool {
	switch Transition(prev.OwedTransition) {
	case TransitionNew, TransitionChanged, TransitionReminder:
		return problem != "" && string(problem) == prev.Outcome && slices.Equal(prev.Live, SortedLive(r.LiveThumbprints))
	case TransitionResolved:
		return problem == "" && prev.Outcome == "" && r.Outcome != drift.Updated
	case TransitionApplied:
		return problem == "" && prev.Outcome == ""
	}
	return false
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
