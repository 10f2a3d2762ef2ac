package alert

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/sorted"
)

// Transition is what the alert lifecycle sends for a result; empty when
// nothing is sent.
type Transition string

// The transitions of DESIGN.md's lifecycle table.
const (
	TransitionNone     Transition = ""
	TransitionNew      Transition = "new"
	TransitionChanged  Transition = "changed"
	TransitionReminder Transition = "reminder"
	TransitionResolved Transition = "resolved"
	TransitionApplied  Transition = "applied"
)

// Transitions lists the transitions that are sent, in the order metrics show them.
var Transitions = []Transition{TransitionNew, TransitionChanged, TransitionReminder, TransitionResolved, TransitionApplied}

// Message is one grouped alert: the results of a run that share transition,
// outcome, host and live thumbprints (DESIGN.md "Messages"). An identity
// provider's rotation seen in 500 accounts is one message of 500 results.
type Message struct {
	Transition Transition
	Outcome    drift.Outcome
	// Severity is the highest severity of the results; at least info for
	// resolved (DESIGN.md's lifecycle table).
	Severity drift.Severity
	// Host is the results' grouping host (drift.Result.Host).
	Host string
	// LiveThumbprints are the results' live thumbprints, lowercase, sorted.
	LiveThumbprints []string
	// Mode is the run's mode.
	Mode      config.Mode
	CheckedAt time.Time
	// Results are the message's results, ordered by account then provider ARN.
	Results []drift.Result
	// Findings holds, by result key, when the result's Security Hub finding
	// was created (its first problem); a result absent has no finding to
	// import (an applied that closes no alerted problem).
	Findings map[string]time.Time

	// delivered holds, by result key, the integrations that took the
	// result's transition before (Claimed.Delivered).
	delivered map[string][]string
}

// groupKey identifies a message within a run.
type groupKey struct {
	transition Transition
	outcome    drift.Outcome
	host       string
	live       string
}

// SortedLive is a result's live thumbprints lowercased and sorted: with the
// outcome, the identity of a problem, and part of a message's key.
func SortedLive(live []string) []string {
	out := make([]string, len(live))
	for i, t := range live {
		out[i] = strings.ToLower(t)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

var severityRank = map[drift.Severity]int{"": 0, drift.SeverityNone: 0, drift.SeverityInfo: 1, drift.SeverityWarning: 2, drift.SeverityCritical: 3}

// Group is the grouping stage: the messages of claimed transitions, one per
// transition, outcome, host and live thumbprints, whatever invocation or
// batch claimed them. Messages come in a stable order: transition, outcome,
// host, live thumbprints; a message's results by account, then provider ARN.
func Group(claimed []Claimed) []Message {
	idx := map[groupKey]int{}
	var msgs []Message
	for _, c := range claimed {
		if c.Transition == TransitionNone {
			continue
		}
		r := c.Result
		live := SortedLive(r.LiveThumbprints)
		k := groupKey{c.Transition, r.Outcome, c.Host, strings.Join(live, ",")}
		i, ok := idx[k]
		if !ok {
			i = len(msgs)
			idx[k] = i
			msgs = append(msgs, Message{Transition: c.Transition, Outcome: r.Outcome, Host: c.Host, LiveThumbprints: live,
				Mode: c.Mode, CheckedAt: c.CheckedAt, Findings: map[string]time.Time{}, delivered: map[string][]string{}})
		}
		m := &msgs[i]
		r.Host, r.Transition = c.Host, string(c.Transition)
		m.Results = append(m.Results, r)
		if len(c.Delivered) > 0 {
			m.delivered[r.Key()] = c.Delivered
		}
		if !c.FindingCreated.IsZero() {
			m.Findings[r.Key()] = c.FindingCreated
		}
		if c.CheckedAt.After(m.CheckedAt) {
			m.CheckedAt = c.CheckedAt
		}
		if severityRank[r.Severity] > severityRank[m.Severity] {
			m.Severity = r.Severity
		}
	}
	for i := range msgs {
		// A resolved problem is news, not an outcome's severity (none).
		if msgs[i].Transition == TransitionResolved && severityRank[msgs[i].Severity] < severityRank[drift.SeverityInfo] {
			msgs[i].Severity = drift.SeverityInfo
		}
		rs := msgs[i].Results
		order := sorted.Order(len(rs), func(x, y int) int {
			a, b := &rs[x], &rs[y]
			return cmp.Or(cmp.Compare(a.Account(), b.Account()), cmp.Compare(a.ProviderARN, b.ProviderARN))
		})
		msgs[i].Results = make([]drift.Result, len(rs))
		for k, j := range order {
			msgs[i].Results[k] = rs[j]
		}
	}
	order := sorted.Order(len(msgs), func(x, y int) int {
		a, b := &msgs[x], &msgs[y]
		return cmp.Or(cmp.Compare(a.Transition, b.Transition), cmp.Compare(a.Outcome, b.Outcome), cmp.Compare(a.Host, b.Host),
			cmp.Compare(strings.Join(a.LiveThumbprints, ","), strings.Join(b.LiveThumbprints, ",")))
	})
	out := make([]Message, len(msgs))
	for k, j := range order {
		out[k] = msgs[j]
	}
	return out
}

// only is m with just the results whose key keep reports true (nil when none).
func (m Message) only(keep func(key string) bool) *Message {
	out := m
	out.Results = nil
	for _, r := range m.Results {
		if keep(r.Key()) {
			out.Results = append(out.Results, r)
		}
	}
	if len(out.Results) == 0 {
		return nil
	}
	return &out
}
