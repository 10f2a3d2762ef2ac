package drift

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
)

// Message is one grouped alert: the results of a run that share transition,
// outcome, host and live thumbprints (DESIGN.md "Messages"). An identity
// provider's rotation seen in 500 accounts is one message of 500 results.
type Message struct {
	Transition Transition
	Outcome    Outcome
	// Severity is the highest severity of the results; at least info for
	// resolved (DESIGN.md's lifecycle table).
	Severity Severity
	// Host is the results' grouping host (Result.Host).
	Host string
	// LiveThumbprints are the results' live thumbprints, lowercase, sorted.
	LiveThumbprints []string
	// Mode is the run's mode.
	Mode      config.Mode
	CheckedAt time.Time
	// Results are the message's results, ordered by account then provider ARN.
	Results []Result
}

// Publisher delivers one message (SNS, EventBridge). An error means the
// message was not delivered: its transitions are not recorded, so a retried
// invocation sends them again.
type Publisher interface {
	Publish(ctx context.Context, m Message) error
}

// groupKey identifies a message within a run.
type groupKey struct {
	transition Transition
	outcome    Outcome
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

var severityRank = map[Severity]int{"": 0, SeverityNone: 0, SeverityInfo: 1, SeverityWarning: 2, SeverityCritical: 3}

// GroupMessages forms the messages of a run from the results that carry a
// transition. Messages come in a stable order: transition, outcome, host,
// live thumbprints.
func GroupMessages(results []Result, mode config.Mode, checkedAt time.Time) []Message {
	idx := map[groupKey]int{}
	var msgs []Message
	for _, r := range results {
		if r.Transition == TransitionNone {
			continue
		}
		live := SortedLive(r.LiveThumbprints)
		k := groupKey{r.Transition, r.Outcome, r.Host, strings.Join(live, ",")}
		i, ok := idx[k]
		if !ok {
			i = len(msgs)
			idx[k] = i
			msgs = append(msgs, Message{Transition: r.Transition, Outcome: r.Outcome, Host: r.Host, LiveThumbprints: live, Mode: mode, CheckedAt: checkedAt})
		}
		m := &msgs[i]
		m.Results = append(m.Results, r)
		if severityRank[r.Severity] > severityRank[m.Severity] {
			m.Severity = r.Severity
		}
	}
	for i := range msgs {
		// A resolved problem is news, not an outcome's severity (none).
		if msgs[i].Transition == TransitionResolved && severityRank[msgs[i].Severity] < severityRank[SeverityInfo] {
			msgs[i].Severity = SeverityInfo
		}
		slices.SortStableFunc(msgs[i].Results, func(a, b Result) int {
			return cmp.Or(cmp.Compare(a.accountID(), b.accountID()), cmp.Compare(a.ProviderARN, b.ProviderARN))
		})
	}
	slices.SortStableFunc(msgs, func(a, b Message) int {
		return cmp.Or(cmp.Compare(a.Transition, b.Transition), cmp.Compare(a.Outcome, b.Outcome), cmp.Compare(a.Host, b.Host),
			cmp.Compare(strings.Join(a.LiveThumbprints, ","), strings.Join(b.LiveThumbprints, ",")))
	})
	return msgs
}
