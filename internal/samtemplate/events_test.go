package samtemplate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
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
		targets := list(props["Targets"])
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
// reach EventBridge, the partition's IAM region, and nowhere else.
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
	}
	for _, tc := range tests {
		t.Run(tc.params["AWS::Region"], func(t *testing.T) {
			got, err := tp.evaluator(tc.params).condition(cond)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("condition %s in %s = %v, want %v", cond, tc.params["AWS::Region"], got, tc.want)
			}
		})
	}
}
