package samtemplate

import (
	"reflect"
	"slices"
	"testing"
)

// Tests of the permissions of the optional integrations: EventBridge events out
// (EventBusName) and AWS Security Hub findings (SecurityHub), resolved the way
// CloudFormation would for each setting.

// grants resolves the function's policy for params and returns the resources
// of each action among actions.
func grants(t *testing.T, tp *template, params map[string]string, actions ...string) map[string][]any {
	t.Helper()
	e := tp.evaluator(params)
	got := map[string][]any{}
	for _, s := range functionStatements(t, tp) {
		if s.condition != "" {
			on, err := e.condition(s.condition)
			if err != nil {
				t.Fatalf("statement %s: %v", s.sid, err)
			}
			if !on {
				continue
			}
		}
		for _, a := range s.actions {
			if !slices.Contains(actions, a) {
				continue
			}
			for _, r := range s.resources {
				v, err := e.eval(r)
				if err != nil {
					t.Fatalf("statement %s resource %#v: %v", s.sid, r, err)
				}
				got[a] = append(got[a], list(v)...)
			}
		}
	}
	return got
}

func TestAlertEventsPermission(t *testing.T) {
	tp := loadTemplate(t)
	tests := []struct {
		name string
		bus  string
		want map[string][]any
	}{
		{name: "no bus: no permission", bus: "", want: map[string][]any{}},
		{name: "the default bus by name", bus: "default",
			want: map[string][]any{"events:PutEvents": {"arn:aws:events:us-east-1:123456789012:event-bus/default"}}},
		{name: "a bus by name", bus: "security-events",
			want: map[string][]any{"events:PutEvents": {"arn:aws:events:us-east-1:123456789012:event-bus/security-events"}}},
		{name: "a partner bus by name", bus: "aws.partner/example.com/123/x",
			want: map[string][]any{"events:PutEvents": {"arn:aws:events:us-east-1:123456789012:event-bus/aws.partner/example.com/123/x"}}},
		{name: "another account's bus by ARN", bus: "arn:aws:events:eu-west-1:999999999999:event-bus/central",
			want: map[string][]any{"events:PutEvents": {"arn:aws:events:eu-west-1:999999999999:event-bus/central"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			params := map[string]string{"EventBusName": tc.bus}
			if err := tp.admits(params); err != nil {
				t.Fatalf("EventBusName %q: %v", tc.bus, err)
			}
			if got := grants(t, tp, params, "events:PutEvents"); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("EventBusName %q grants %#v, want %#v", tc.bus, got, tc.want)
			}
		})
	}
}
