package alert_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
)

// TestGroup: the grouping stage makes one message per transition, outcome,
// host and live thumbprints, whichever batch claimed its results.
func TestGroup(t *testing.T) {
	a, b := strings.Repeat("aa", 20), strings.Repeat("bb", 20)
	at := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	res := func(acct, arn string, tr alert.Transition, o drift.Outcome, sev drift.Severity, host string, live ...string) alert.Claimed {
		return alert.Claimed{Result: drift.Result{AccountID: acct, ProviderARN: arn, Outcome: o, Severity: sev, LiveThumbprints: live},
			Host: host, Transition: tr, Mode: config.ModeAlert, CheckedAt: at}
	}
	tests := []struct {
		name    string
		results []alert.Claimed
		want    [][]string // provider ARNs per message, in order
		sev     []drift.Severity
	}{
		{name: "no transition, no message", results: []alert.Claimed{res("1", "p1", alert.TransitionNone, drift.Drift, drift.SeverityCritical, "h", a)}},
		{name: "one rotation across accounts is one message",
			results: []alert.Claimed{
				res("2", "p2", alert.TransitionNew, drift.Drift, drift.SeverityWarning, "h", a),
				res("1", "p1", alert.TransitionNew, drift.Drift, drift.SeverityCritical, "h", strings.ToUpper(a)),
			},
			want: [][]string{{"p1", "p2"}}, sev: []drift.Severity{drift.SeverityCritical}},
		{name: "live thumbprints in another order are the same group",
			results: []alert.Claimed{res("1", "p1", alert.TransitionNew, drift.Drift, drift.SeverityWarning, "h", a, b), res("1", "p2", alert.TransitionNew, drift.Drift, drift.SeverityWarning, "h", b, a)},
			want:    [][]string{{"p1", "p2"}}, sev: []drift.Severity{drift.SeverityWarning}},
		{name: "transition, outcome, host and live split groups",
			results: []alert.Claimed{
				res("1", "p1", alert.TransitionNew, drift.Drift, drift.SeverityWarning, "h", a),
				res("1", "p2", alert.TransitionReminder, drift.Drift, drift.SeverityWarning, "h", a),
				res("1", "p3", alert.TransitionNew, drift.ProbeFailed, drift.SeverityWarning, "h"),
				res("1", "p4", alert.TransitionNew, drift.Drift, drift.SeverityWarning, "h:8443", a),
				res("1", "p5", alert.TransitionNew, drift.Drift, drift.SeverityWarning, "h", b),
			},
			want: [][]string{{"p1"}, {"p5"}, {"p4"}, {"p3"}, {"p2"}},
			sev:  []drift.Severity{drift.SeverityWarning, drift.SeverityWarning, drift.SeverityWarning, drift.SeverityWarning, drift.SeverityWarning}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs := alert.Group(tt.results)
			var got [][]string
			var sev []drift.Severity
			for _, m := range msgs {
				var arns []string
				for _, r := range m.Results {
					arns = append(arns, r.ProviderARN)
				}
				got = append(got, arns)
				sev = append(sev, m.Severity)
				if m.Mode != config.ModeAlert || !m.CheckedAt.Equal(at) {
					t.Errorf("message mode/time = %s %s", m.Mode, m.CheckedAt)
				}
			}
			if !reflect.DeepEqual(got, tt.want) || !reflect.DeepEqual(sev, tt.sev) {
				t.Fatalf("groups = %v %v, want %v %v", got, sev, tt.want, tt.sev)
			}
		})
	}
}
