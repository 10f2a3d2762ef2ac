package samtemplate

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Tests of the function's execution role (no managed policy, logs scoped to its
// own log group), the dead-letter queue's transport policy, and the deletion
// policies of the stack's stateful resources.

// functionLogGroup returns the logical id of the log group the function logs to.
func functionLogGroup(t *testing.T, tp *template) string {
	t.Helper()
	lg := lookup(tp.functionProps(t, functionID), "LoggingConfig", "LogGroup")
	id, _ := lookup(lg, "Ref").(string)
	if !tp.isResource(id, "AWS::Logs::LogGroup") {
		t.Fatalf("LoggingConfig.LogGroup = %#v, want Ref of a log group in the template", lg)
	}
	return id
}

// deadLetterQueue returns the logical id of the template's single SQS queue.
func deadLetterQueue(t *testing.T, tp *template) string {
	t.Helper()
	queues := tp.resourcesOfType("AWS::SQS::Queue")
	if len(queues) != 1 {
		t.Fatalf("SQS queues = %v, want exactly one (the dead-letter queue)", queues)
	}
	return queues[0]
}

// findStrings returns the paths of every string in v that contains substr.
func findStrings(v any, path, substr string) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, y := range x {
			if strings.Contains(k, substr) {
				out = append(out, path+"."+k)
			}
			out = append(out, findStrings(y, path+"."+k, substr)...)
		}
	case []any:
		for i, y := range x {
			out = append(out, findStrings(y, fmt.Sprintf("%s[%d]", path, i), substr)...)
		}
	case string:
		if strings.Contains(x, substr) {
			out = append(out, path)
		}
	}
	return out
}

// TestNoManagedBasicExecutionRole: SAM attaches AWSLambdaBasicExecutionRole
// (log writes on every log group of the account) to the role it generates for
// a function without Role. The function has its own role with inline policies
// only.
func TestNoManagedBasicExecutionRole(t *testing.T) {
	tp := loadTemplate(t)
	props := tp.functionProps(t, functionID)
	id, role := functionRole(t, tp)
	rp, _ := role["Properties"].(map[string]any)

	tests := []struct {
		name string
		got  any
		want any
	}{
		// SAM's generated role had this logical id: keeping it makes an update change
		// that role in place (same ARN and unique id, which member roles trust).
		{"role logical id", id, functionID + "Role"},
		// SAM ignores Policies next to Role; they would read as granted and not be.
		{"function Policies", props["Policies"], nil},
		{"function PermissionsBoundary", props["PermissionsBoundary"], nil},
		{"role ManagedPolicyArns", rp["ManagedPolicyArns"], nil},
		// Unnamed: CAPABILITY_IAM suffices, and two stacks never collide.
		{"role RoleName", rp["RoleName"], nil},
		{"role trust", rp["AssumeRolePolicyDocument"], map[string]any{
			"Version": "2012-10-17",
			"Statement": []any{map[string]any{
				"Effect":    "Allow",
				"Principal": map[string]any{"Service": "lambda.amazonaws.com"},
				"Action":    "sts:AssumeRole",
			}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("%s = %#v, want %#v", tc.name, tc.got, tc.want)
			}
		})
	}
	t.Run("no managed policy anywhere", func(t *testing.T) {
		for _, needle := range []string{"AWSLambdaBasicExecutionRole", "ManagedPolicyArns", "arn:${AWS::Partition}:iam::aws:policy"} {
			if paths := findStrings(tp.doc, "", needle); len(paths) > 0 {
				t.Errorf("template uses %s at %v", needle, paths)
			}
		}
		for _, typ := range []string{"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"} {
			if ids := tp.resourcesOfType(typ); len(ids) > 0 {
				t.Errorf("template has %s %v; the role's permissions are its inline policies", typ, ids)
			}
		}
	})
}

// TestLogStatementScoped: the only log permissions are stream creation and
// writes, on the function's own log group.
func TestLogStatementScoped(t *testing.T) {
	tp := loadTemplate(t)
	want := getAtt(functionLogGroup(t, tp), "Arn")
	var actions []string
	for _, s := range functionStatements(t, tp) {
		for _, a := range s.actions {
			if !strings.HasPrefix(a, "logs:") {
				continue
			}
			actions = append(actions, a)
			if s.condition != "" {
				t.Errorf("%s exists only under %s; the function always logs", a, s.condition)
			}
			if !reflect.DeepEqual(s.resources, []any{want}) {
				t.Errorf("%s on %#v, want only the function's log group %#v", a, s.resources, want)
			}
		}
	}
	slices.Sort(actions)
	// No logs:CreateLogGroup: the stack creates the group.
	if w := []string{"logs:CreateLogStream", "logs:PutLogEvents"}; !slices.Equal(actions, w) {
		t.Errorf("log actions = %v, want %v", actions, w)
	}
}

// TestDeadLetterQueueDeniesInsecureTransport: every request to the queue
// without TLS is denied, whoever makes it.
func TestDeadLetterQueueDeniesInsecureTransport(t *testing.T) {
	tp := loadTemplate(t)
	queue := deadLetterQueue(t, tp)
	var found bool
	for _, id := range tp.resourcesOfType("AWS::SQS::QueuePolicy") {
		p := tp.resource(t, id, "AWS::SQS::QueuePolicy")
		if !reflect.DeepEqual(lookup(p, "Properties", "Queues"), []any{ref(queue)}) {
			continue
		}
		for _, s := range statements(t, lookup(p, "Properties", "PolicyDocument")) {
			if s.effect != "Deny" {
				continue
			}
			checks := []struct {
				name      string
				got, want any
			}{
				{"Principal", s.raw["Principal"], "*"},
				{"Action", s.actions, []string{"sqs:*"}},
				{"Resource", s.resources, []any{getAtt(queue, "Arn")}},
				{"Condition", s.raw["Condition"], map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}}},
			}
			for _, c := range checks {
				if !reflect.DeepEqual(c.got, c.want) {
					t.Errorf("queue policy %s deny statement %s: %s = %#v, want %#v", id, s.sid, c.name, c.got, c.want)
				}
			}
			found = true
		}
	}
	if !found {
		t.Errorf("no queue policy on %s denies requests without TLS (aws:SecureTransport false)", queue)
	}
}

// TestDeletionPolicies: each stateful resource says what happens to it when the
// stack is deleted or the resource replaced, and a comment says why.
func TestDeletionPolicies(t *testing.T) {
	tp := loadTemplate(t)
	tests := []struct {
		id, typ string
		want    string
	}{
		{stateTable(t, tp), "AWS::DynamoDB::Table", "Retain"},
		{functionLogGroup(t, tp), "AWS::Logs::LogGroup", "Delete"},
		{deadLetterQueue(t, tp), "AWS::SQS::Queue", "Delete"},
		{topicKey(t, tp), "AWS::KMS::Key", "Delete"},
	}
	lines := strings.Split(string(tp.raw), "\n")
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			r := tp.resource(t, tc.id, tc.typ)
			for _, k := range []string{"DeletionPolicy", "UpdateReplacePolicy"} {
				if r[k] != tc.want {
					t.Errorf("%s %s = %v, want %s", tc.id, k, r[k], tc.want)
				}
			}
			// The comment is in the lines between the resource's id and its
			// DeletionPolicy, or just above the id.
			start := slices.Index(lines, "  "+tc.id+":")
			if start < 0 {
				t.Fatalf("no line %q in template.yaml", "  "+tc.id+":")
			}
			var commented bool
			for i := start - 1; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), "DeletionPolicy:"); i++ {
				if i >= 0 && strings.HasPrefix(strings.TrimSpace(lines[i]), "#") {
					commented = true
				}
			}
			if !commented {
				t.Errorf("%s: no comment saying why its DeletionPolicy is %s", tc.id, tc.want)
			}
		})
	}
	if got := lookup(tp.resource(t, topicKey(t, tp), "AWS::KMS::Key"), "Properties", "PendingWindowInDays"); got != 30 {
		t.Errorf("key PendingWindowInDays = %#v, want 30 (the longest window to cancel a deletion)", got)
	}
}
