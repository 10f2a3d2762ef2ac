package samtemplate

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/thumbprint-drift/thumbprint-drift/internal/rehearsal"
)

// Tests of the permissions of the optional integrations: EventBridge events out
// (EventBusName) and AWS Security Hub findings (SecurityHub), as moto's
// CloudFormation resolves them for each setting.

// grants are the resources of each action among actions that the function's
// role allows in a stack moto's CloudFormation created with params.
func grants(t *testing.T, tp *template, params map[string]string, actions ...string) map[string][]any {
	t.Helper()
	got := map[string][]any{}
	for a, resources := range tp.deploy(t, "", params).grants(functionRoleID) {
		if !slices.Contains(actions, a) {
			continue
		}
		for _, r := range resources {
			got[a] = append(got[a], r)
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
			if err := tp.admits(t, params); err != nil {
				t.Fatalf("EventBusName %q: %v", tc.bus, err)
			}
			if got := grants(t, tp, params, "events:PutEvents"); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("EventBusName %q grants %#v, want %#v", tc.bus, got, tc.want)
			}
		})
	}
}

func TestSecurityHubPermission(t *testing.T) {
	tp := loadTemplate(t)
	product := "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default"
	for value, want := range map[string]map[string][]any{
		"false": {},
		"true":  {"securityhub:BatchImportFindings": {product}},
	} {
		t.Run("SecurityHub="+value, func(t *testing.T) {
			if got := grants(t, tp, map[string]string{"SecurityHub": value}, "securityhub:BatchImportFindings"); !reflect.DeepEqual(got, want) {
				t.Errorf("SecurityHub=%s grants %#v, want %#v", value, got, want)
			}
		})
	}
}

// TestMemberRoleImportsFindings: with SecurityHub=true the member role may
// import findings into its own account's default product, in any region (the
// central function's), and nothing more; by default not at all.
func TestMemberRoleImportsFindings(t *testing.T) {
	tp, role := loadMemberRole(t)
	var found []statement
	for _, p := range rehearsal.AsList(lookup(role, "Properties", "Policies")) {
		for _, s := range statements(t, lookup(p, "PolicyDocument")) {
			if slices.ContainsFunc(s.actions, func(a string) bool { return strings.HasPrefix(a, "securityhub:") }) {
				found = append(found, s)
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("member role Security Hub statements = %d, want 1", len(found))
	}
	s := found[0]
	if s.condition != "ImportsFindings" || s.effect != "Allow" || !slices.Equal(s.actions, []string{"securityhub:BatchImportFindings"}) {
		t.Errorf("statement %s: %s %v under %q, want Allow securityhub:BatchImportFindings under ImportsFindings", s.sid, s.effect, s.actions, s.condition)
	}
	if want := []any{sub("arn:${AWS::Partition}:securityhub:*:${AWS::AccountId}:product/${AWS::AccountId}/default")}; !reflect.DeepEqual(s.resources, want) {
		t.Errorf("resources = %#v, want %#v", s.resources, want)
	}
	for value, want := range map[string]bool{"false": false, "true": true} {
		if on := tp.condition(t, "", map[string]string{"SecurityHub": value}, "ImportsFindings"); on != want {
			t.Errorf("member SecurityHub=%s imports findings = %v, want %v", value, on, want)
		}
	}
	central, _ := lookup(loadTemplate(t).doc, "Parameters", "SecurityHub", "AllowedValues").([]any)
	member, _ := lookup(tp.doc, "Parameters", "SecurityHub", "AllowedValues").([]any)
	if !reflect.DeepEqual(central, member) {
		t.Errorf("member SecurityHub AllowedValues %v differ from the central stack's %v", member, central)
	}
}
