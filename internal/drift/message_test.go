package drift

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
)

func TestGroupMessages(t *testing.T) {
	a, b := strings.Repeat("aa", 20), strings.Repeat("bb", 20)
	res := func(acct, arn string, tr Transition, o Outcome, sev Severity, host string, live ...string) Result {
		return Result{AccountID: acct, ProviderARN: arn, Transition: tr, Outcome: o, Severity: sev, Host: host, LiveThumbprints: live}
	}
	at := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		results []Result
		want    [][]string // provider ARNs per message, in order
		sev     []Severity
	}{
		{name: "no transition, no message", results: []Result{res("1", "p1", TransitionNone, Drift, SeverityCritical, "h", a)}},
		{name: "one rotation across accounts is one message",
			results: []Result{
				res("2", "p2", TransitionNew, Drift, SeverityWarning, "h", a),
				res("1", "p1", TransitionNew, Drift, SeverityCritical, "h", strings.ToUpper(a)),
			},
			want: [][]string{{"p1", "p2"}}, sev: []Severity{SeverityCritical}},
		{name: "live thumbprints in another order are the same group",
			results: []Result{res("1", "p1", TransitionNew, Drift, SeverityWarning, "h", a, b), res("1", "p2", TransitionNew, Drift, SeverityWarning, "h", b, a)},
			want:    [][]string{{"p1", "p2"}}, sev: []Severity{SeverityWarning}},
		{name: "transition, outcome, host and live split groups",
			results: []Result{
				res("1", "p1", TransitionNew, Drift, SeverityWarning, "h", a),
				res("1", "p2", TransitionReminder, Drift, SeverityWarning, "h", a),
				res("1", "p3", TransitionNew, ProbeFailed, SeverityWarning, "h"),
				res("1", "p4", TransitionNew, Drift, SeverityWarning, "h:8443", a),
				res("1", "p5", TransitionNew, Drift, SeverityWarning, "h", b),
			},
			want: [][]string{{"p1"}, {"p5"}, {"p4"}, {"p3"}, {"p2"}},
			sev:  []Severity{SeverityWarning, SeverityWarning, SeverityWarning, SeverityWarning, SeverityWarning}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs := GroupMessages(tt.results, config.ModeAlert, at)
			var got [][]string
			var sev []Severity
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
