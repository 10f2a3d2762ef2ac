package samtemplate

import (
	"github.com/thumbprint-drift/thumbprint-drift/internal/rehearsal"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"

	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Tests of the event-driven check: the EventBridge rule on IAM's CloudTrail
// events for OIDC providers, where it exists, what it matches, and how it
// reaches the function (DESIGN.md, "Events in and out").

const providerChangeRule = "ProviderChangeRule"

// providerCalls are the IAM calls that check the provider they name.
var providerCalls = []string{
	"CreateOpenIDConnectProvider",
	"UpdateOpenIDConnectProviderThumbprint",
	"TagOpenIDConnectProvider",
	"UntagOpenIDConnectProvider",
}

// matchesPattern reports whether event matches an EventBridge event pattern
// made of lists of exact strings and nested objects (the only forms these
// templates use).
func matchesPattern(pattern map[string]any, event map[string]any) bool {
	for k, want := range pattern {
		got, ok := event[k]
		if !ok {
			return false
		}
		switch w := want.(type) {
		case map[string]any:
			sub, ok := got.(map[string]any)
			if !ok || !matchesPattern(w, sub) {
				return false
			}
		case []any:
			var values []any
			if l, ok := got.([]any); ok {
				values = l
			} else {
				values = []any{got}
			}
			if !slices.ContainsFunc(values, func(v any) bool { return slices.Contains(w, v) }) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func readEvent(t *testing.T, path string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return ev
}

func TestProviderChangeRule(t *testing.T) {
	tp := loadTemplate(t)
	rule := tp.resource(t, providerChangeRule, "AWS::Events::Rule")
	props, _ := rule["Properties"].(map[string]any)
	pattern, _ := props["EventPattern"].(map[string]any)

	want := map[string]any{
		"source":      []any{"aws.iam"},
		"detail-type": []any{"AWS API Call via CloudTrail"},
		"detail": map[string]any{
			"eventSource": []any{"iam.amazonaws.com"},
			"eventName":   []any{providerCalls[0], providerCalls[1], providerCalls[2], providerCalls[3]},
		},
	}
	if !reflect.DeepEqual(pattern, want) {
		t.Errorf("EventPattern = %#v, want %#v", pattern, want)
	}
	if props["State"] != "ENABLED" {
		t.Errorf("State = %v, want ENABLED", props["State"])
	}

	t.Run("matches the sample CloudTrail events", func(t *testing.T) {
		paths, err := filepath.Glob(filepath.Join(repoRoot(t), "events", "cloudtrail-*.json"))
		if err != nil || len(paths) == 0 {
			t.Fatalf("no events/cloudtrail-*.json (%v)", err)
		}
		seen := map[string]bool{}
		for _, p := range paths {
			ev := readEvent(t, p)
			if !matchesPattern(pattern, ev) {
				t.Errorf("%s does not match the rule", filepath.Base(p))
			}
			name, _ := lookup(ev, "detail", "eventName").(string)
			seen[name] = true
		}
		for _, call := range providerCalls {
			if !seen[call] {
				t.Errorf("no sample event of %s under events/", call)
			}
		}
	})
	t.Run("matches nothing else", func(t *testing.T) {
		base := readEvent(t, filepath.Join(repoRoot(t), "events", "cloudtrail-update-thumbprint.json"))
		for name, change := range map[string]func(ev map[string]any){
			"another IAM call":       func(ev map[string]any) { ev["detail"].(map[string]any)["eventName"] = "DeleteOpenIDConnectProvider" },
			"another source":         func(ev map[string]any) { ev["source"] = "aws.sts" },
			"another detail-type":    func(ev map[string]any) { ev["detail-type"] = "AWS Console Sign In via CloudTrail" },
			"another event source":   func(ev map[string]any) { ev["detail"].(map[string]any)["eventSource"] = "sts.amazonaws.com" },
			"a call without details": func(ev map[string]any) { delete(ev, "detail") },
		} {
			ev := readEvent(t, filepath.Join(repoRoot(t), "events", "cloudtrail-update-thumbprint.json"))
			change(ev)
			if matchesPattern(pattern, ev) {
				t.Errorf("%s matches the rule", name)
			}
		}
		if !matchesPattern(pattern, base) {
			t.Error("the unchanged sample does not match the rule")
		}
		if matchesPattern(pattern, readEvent(t, filepath.Join(repoRoot(t), "events", "scheduled.json"))) {
			t.Error("the scheduled event matches the rule")
		}
	})

	t.Run("target", func(t *testing.T) {
		targets := rehearsal.AsList(props["Targets"])
		if len(targets) != 1 {
			t.Fatalf("Targets = %#v, want one: the function", targets)
		}
		target := targets[0]
		if got := lookup(target, "Arn"); !reflect.DeepEqual(got, getAtt(functionID, "Arn")) {
			t.Errorf("target Arn = %#v, want the function", got)
		}
		if n, ok := lookup(target, "RetryPolicy", "MaximumRetryAttempts").(int); !ok || n < 1 || n > 185 {
			t.Errorf("RetryPolicy.MaximumRetryAttempts = %#v, want 1 to 185", lookup(target, "RetryPolicy", "MaximumRetryAttempts"))
		}
		if got := lookup(target, "DeadLetterConfig", "Arn"); !reflect.DeepEqual(got, getAtt(deadLetterQueue(t, tp), "Arn")) {
			t.Errorf("DeadLetterConfig.Arn = %#v, want the dead-letter queue", got)
		}
	})

	t.Run("permission", func(t *testing.T) {
		var found bool
		for _, id := range tp.resourcesOfType("AWS::Lambda::Permission") {
			p := tp.resource(t, id, "AWS::Lambda::Permission")
			if !reflect.DeepEqual(lookup(p, "Properties", "SourceArn"), getAtt(providerChangeRule, "Arn")) {
				continue
			}
			found = true
			for k, w := range map[string]any{"Action": "lambda:InvokeFunction", "Principal": "events.amazonaws.com", "FunctionName": ref(functionID)} {
				if got := lookup(p, "Properties", k); !reflect.DeepEqual(got, w) {
					t.Errorf("permission %s %s = %#v, want %#v", id, k, got, w)
				}
			}
			if p["Condition"] != rule["Condition"] {
				t.Errorf("permission %s Condition = %v, want the rule's %v", id, p["Condition"], rule["Condition"])
			}
		}
		if !found {
			t.Errorf("no AWS::Lambda::Permission lets %s invoke the function", providerChangeRule)
		}
	})

	t.Run("dead-letter queue admits the rule", func(t *testing.T) {
		queue := deadLetterQueue(t, tp)
		var found bool
		for _, id := range tp.resourcesOfType("AWS::SQS::QueuePolicy") {
			p := tp.resource(t, id, "AWS::SQS::QueuePolicy")
			if !reflect.DeepEqual(lookup(p, "Properties", "Queues"), []any{ref(queue)}) {
				continue
			}
			for _, s := range statements(t, lookup(p, "Properties", "PolicyDocument")) {
				if s.effect == "Allow" && slices.Equal(s.actions, []string{"sqs:SendMessage"}) &&
					reflect.DeepEqual(lookup(s.raw, "Condition", "ArnEquals", "aws:SourceArn"), getAtt(providerChangeRule, "Arn")) {
					found = true
					if s.condition != rule["Condition"] {
						t.Errorf("queue statement %s exists under %q, want the rule's %v", s.sid, s.condition, rule["Condition"])
					}
				}
			}
		}
		if !found {
			t.Errorf("no queue policy lets %s send undelivered events to %s", providerChangeRule, queue)
		}
	})
}

// TestProviderChangeRuleRegions: the rule exists where IAM's CloudTrail events
// reach EventBridge, the partition's IAM region, and where the organisation's
// members forward theirs (OrganizationId set), and nowhere else.
func TestProviderChangeRuleRegions(t *testing.T) {
	tp := loadTemplate(t)
	cond, _ := tp.resource(t, providerChangeRule, "AWS::Events::Rule")["Condition"].(string)
	if cond == "" {
		t.Fatalf("%s has no Condition: it would exist in regions IAM's events never reach", providerChangeRule)
	}
	tests := []struct {
		params map[string]string
		want   bool
	}{
		{map[string]string{"AWS::Region": "us-east-1"}, true},
		{map[string]string{"AWS::Region": "us-gov-west-1", "AWS::Partition": "aws-us-gov"}, true},
		{map[string]string{"AWS::Region": "cn-north-1", "AWS::Partition": "aws-cn"}, true},
		{map[string]string{"AWS::Region": "us-east-2"}, false},
		{map[string]string{"AWS::Region": "eu-west-1"}, false},
		{map[string]string{"AWS::Region": "us-gov-east-1", "AWS::Partition": "aws-us-gov"}, false},
		// Members forward their changes to the central bus, in any region.
		{map[string]string{"AWS::Region": "eu-west-1", "OrganizationId": "o-abcdef1234"}, true},
		{map[string]string{"AWS::Region": "us-east-1", "OrganizationId": "o-abcdef1234"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.params["AWS::Region"]+" "+tc.params["OrganizationId"], func(t *testing.T) {
			got := tp.conditionIn(t, tc.params, cond)
			if got != tc.want {
				t.Errorf("condition %s in %s = %v, want %v", cond, tc.params["AWS::Region"], got, tc.want)
			}
		})
	}
}

const orgID = "o-abcdef1234"

func TestOrganizationBusPolicy(t *testing.T) {
	tp := loadTemplate(t)
	busArn := sub("arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default")

	t.Run("OrganizationId pattern", func(t *testing.T) {
		checkAccepts(t, tp, "OrganizationId", map[string]bool{
			"":                     true,
			orgID:                  true,
			"o-" + repeat("a", 32): true,
			"o-" + repeat("a", 9):  false,
			"o-" + repeat("a", 33): false,
			"o-ABCDEF1234":         false,
			"abcdef1234":           false,
			"*":                    false,
			"o-abcdef1234 ":        false,
		})
	})
	t.Run("condition", func(t *testing.T) {
		for value, want := range map[string]bool{"": false, orgID: true} {
			got := tp.conditionIn(t, map[string]string{"OrganizationId": value}, "HasOrganizationId")
			if got != want {
				t.Errorf("HasOrganizationId with %q = %v, want %v", value, got, want)
			}
		}
	})

	policies := tp.resourcesOfType("AWS::Events::EventBusPolicy")
	if len(policies) != 1 {
		t.Fatalf("event bus policies = %v, want one", policies)
	}
	p := tp.resource(t, policies[0], "AWS::Events::EventBusPolicy")
	if p["Condition"] != "HasOrganizationId" {
		t.Errorf("%s Condition = %v, want HasOrganizationId: no organisation, no cross-account access", policies[0], p["Condition"])
	}
	props, _ := p["Properties"].(map[string]any)
	tests := []struct {
		name      string
		got, want any
	}{
		{"EventBusName", props["EventBusName"], "default"},
		{"Statement", props["Statement"], map[string]any{
			"Effect":    "Allow",
			"Principal": "*",
			"Action":    "events:PutEvents",
			"Resource":  busArn,
			// The organisation's principals only.
			"Condition": map[string]any{"StringEquals": map[string]any{"aws:PrincipalOrgID": ref("OrganizationId")}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("%s = %#v, want %#v", tc.name, tc.got, tc.want)
			}
		})
	}
	t.Run("StatementId unique per stack and within 64 characters", func(t *testing.T) {
		id, _ := lookup(props, "StatementId", "Fn::Sub").(string)
		if !strings.Contains(id, "${AWS::StackName}") {
			t.Fatalf("StatementId = %#v, want one naming the stack", props["StatementId"])
		}
		// FunctionName <stack>-drift-check limits the stack name to 52 characters.
		if n := len(strings.ReplaceAll(id, "${AWS::StackName}", repeat("s", 52))); n > 64 {
			t.Errorf("StatementId %q is %d characters with a 52-character stack name, want at most 64", id, n)
		}
	})
	t.Run("output for member-role.yaml", func(t *testing.T) {
		out, _ := lookup(tp.doc, "Outputs", "ProviderChangeBusArn").(map[string]any)
		if !reflect.DeepEqual(out["Value"], busArn) || out["Condition"] != "HasOrganizationId" {
			t.Errorf("output ProviderChangeBusArn = %#v, want the default bus ARN under HasOrganizationId", out)
		}
		arn := tp.deploy(t, "", map[string]string{"OrganizationId": orgID}).Outputs["ProviderChangeBusArn"]
		if want := "arn:aws:events:" + testpeer.Region + ":" + testpeer.AccountID + ":event-bus/default"; arn != want {
			t.Errorf("output ProviderChangeBusArn of a stack = %q, want %q", arn, want)
		}
		member, _ := loadMemberRole(t)
		checkAccepts(t, member, "CentralEventBusArn", map[string]bool{arn: true})
	})
}

func repeat(s string, n int) string { return strings.Repeat(s, n) }

// TestMemberForwardsProviderChanges checks the optional forwarding in
// member-role.yaml: where it exists, that it forwards exactly what the central
// rule checks, and that its role may only put events on the central bus.
func TestMemberForwardsProviderChanges(t *testing.T) {
	central := loadTemplate(t)
	tp, _ := loadMemberRole(t)
	const bus = "arn:aws:events:us-east-1:999999999999:event-bus/default"

	t.Run("CentralEventBusArn pattern", func(t *testing.T) {
		checkAccepts(t, tp, "CentralEventBusArn", map[string]bool{
			"":  true,
			bus: true,
			"arn:aws-cn:events:cn-north-1:999999999999:event-bus/central": true,
			"default": false,
			"arn:aws:events:us-east-1:999999999999:rule/x":      false,
			"arn:aws:events:us-east-1:99999999999:event-bus/x":  false,
			"arn:aws:events:us-east-1:999999999999:event-bus/":  false,
			"arn:aws:events:us-east-1:999999999999:event-bus/*": false,
		})
	})
	t.Run("condition", func(t *testing.T) {
		tests := []struct {
			params map[string]string
			want   bool
		}{
			{map[string]string{}, false},
			{map[string]string{"CentralEventBusArn": bus}, true},
			{map[string]string{"CentralEventBusArn": bus, "AWS::Region": "eu-west-1"}, false},
			{map[string]string{"CentralEventBusArn": bus, "AWS::Region": "us-gov-west-1", "AWS::Partition": "aws-us-gov"}, true},
		}
		for _, tc := range tests {
			got := tp.conditionIn(t, tc.params, "ForwardsProviderChanges")
			if got != tc.want {
				t.Errorf("ForwardsProviderChanges with %v = %v, want %v", tc.params, got, tc.want)
			}
		}
	})

	rule := tp.resource(t, "ProviderChangeForwardRule", "AWS::Events::Rule")
	t.Run("same pattern as the central rule", func(t *testing.T) {
		want := lookup(central.resource(t, providerChangeRule, "AWS::Events::Rule"), "Properties", "EventPattern")
		if got := lookup(rule, "Properties", "EventPattern"); !reflect.DeepEqual(got, want) {
			t.Errorf("forwarding EventPattern = %#v, want the central rule's %#v", got, want)
		}
	})
	t.Run("target", func(t *testing.T) {
		targets := rehearsal.AsList(lookup(rule, "Properties", "Targets"))
		if len(targets) != 1 {
			t.Fatalf("Targets = %#v, want one: the central bus", targets)
		}
		if got := lookup(targets[0], "Arn"); !reflect.DeepEqual(got, ref("CentralEventBusArn")) {
			t.Errorf("target Arn = %#v, want Ref CentralEventBusArn", got)
		}
		if got := lookup(targets[0], "RoleArn"); !reflect.DeepEqual(got, getAtt("ProviderChangeForwardRole", "Arn")) {
			t.Errorf("target RoleArn = %#v, want GetAtt ProviderChangeForwardRole.Arn", got)
		}
	})
	t.Run("role", func(t *testing.T) {
		role := tp.resource(t, "ProviderChangeForwardRole", "AWS::IAM::Role")
		trust := statements(t, lookup(role, "Properties", "AssumeRolePolicyDocument"))
		if len(trust) != 1 || !reflect.DeepEqual(principalServices(trust[0]), []string{"events.amazonaws.com"}) || !slices.Equal(trust[0].actions, []string{"sts:AssumeRole"}) {
			t.Errorf("trust = %#v, want events.amazonaws.com sts:AssumeRole only", trust)
		}
		if lookup(role, "Properties", "ManagedPolicyArns") != nil || lookup(role, "Properties", "RoleName") != nil {
			t.Error("the forwarding role has managed policies or a fixed name")
		}
		var got []statement
		for _, p := range rehearsal.AsList(lookup(role, "Properties", "Policies")) {
			got = append(got, statements(t, lookup(p, "PolicyDocument"))...)
		}
		if len(got) != 1 || !slices.Equal(got[0].actions, []string{"events:PutEvents"}) || !reflect.DeepEqual(got[0].resources, []any{ref("CentralEventBusArn")}) || got[0].effect != "Allow" {
			t.Errorf("forwarding role statements = %#v, want only events:PutEvents on Ref CentralEventBusArn", got)
		}
	})
}
