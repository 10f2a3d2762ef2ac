package samtemplate

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/thumbprint-drift/thumbprint-drift/internal/rehearsal"
)

// cfnFiles are the CloudFormation templates at the repository root: the SAM
// application and the role for member accounts.
var cfnFiles = []string{"template.yaml", "member-role.yaml"}

const (
	functionID     = "DriftCheckFunction"
	functionRoleID = "DriftCheckFunctionRole"
	oidcProviderID = "arn:${AWS::Partition}:iam::${AWS::AccountId}:oidc-provider/*"
	accountRoot    = "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"
	cloudwatch     = "cloudwatch.amazonaws.com"
)

func TestTemplateIsSAM(t *testing.T) {
	tp := loadTemplate(t)
	if !regexp.MustCompile(`(?m)^Transform: AWS::Serverless-2016-10-31$`).Match(tp.raw) {
		t.Error("template.yaml does not declare Transform: AWS::Serverless-2016-10-31")
	}
	if tp.doc["Transform"] != nil {
		t.Errorf("the transformed template keeps Transform %v", tp.doc["Transform"])
	}
	// Exactly one function, and SAM made it.
	if got := tp.resourcesOfType("AWS::Lambda::Function"); !reflect.DeepEqual(got, []string{functionID}) {
		t.Errorf("functions = %v, want exactly [%s]", got, functionID)
	}
	tags := rehearsal.AsList(lookup(tp.doc, "Resources", functionID, "Properties", "Tags"))
	if !slices.ContainsFunc(tags, func(tag any) bool { return lookup(tag, "Key") == "lambda:createdBy" && lookup(tag, "Value") == "SAM" }) {
		t.Errorf("function Tags %v: want SAM's lambda:createdBy", tags)
	}
}

func TestFunctionProperties(t *testing.T) {
	tp := loadTemplate(t)
	props := tp.functionProps(t, functionID)
	fn := tp.resource(t, functionID, "AWS::Lambda::Function")
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"Runtime", props["Runtime"], "provided.al2023"},
		{"Architectures", props["Architectures"], []any{"arm64"}},
		{"Handler", props["Handler"], "bootstrap"},
		{"Code (sam package uploads CodeUri)", props["Code"], map[string]any{"S3Bucket": codeBucket, "S3Key": codeKey}},
		{"CodeUri in the source", regexp.MustCompile(`(?m)^      CodeUri: \.$`).Match(tp.raw), true},
		{"Metadata.BuildMethod", lookup(fn, "Metadata", "BuildMethod"), "makefile"},
		{"MemorySize", props["MemorySize"], 256},
		// A reservation fails the first deploy in a new account (quota 10): Lambda
		// refuses one that takes unreserved concurrency below its minimum.
		{"ReservedConcurrentExecutions", props["ReservedConcurrentExecutions"], nil},
		{"LoggingConfig.LogFormat", lookup(props, "LoggingConfig", "LogFormat"), "JSON"},
		{"FunctionName", props["FunctionName"], sub("${AWS::StackName}-drift-check")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("%s = %#v, want %#v", tc.name, tc.got, tc.want)
			}
		})
	}

	t.Run("Timeout", func(t *testing.T) {
		// The engine keeps a deadline reserve of a few seconds; Lambda allows 900 s.
		timeout, ok := props["Timeout"].(int)
		if !ok || timeout < 60 || timeout > 900 {
			t.Errorf("Timeout = %#v, want seconds in [60, 900]", props["Timeout"])
		}
	})
}

func TestFunctionEnvironment(t *testing.T) {
	tp := loadTemplate(t)
	vars, _ := lookup(tp.functionProps(t, functionID), "Environment", "Variables").(map[string]any)
	want := map[string]any{
		"SNS_TOPIC_ARN":    ref(alertTopic(t, tp)),
		"DRIFT_MODE":       ref("DriftMode"),
		"CONCURRENCY":      ref("Concurrency"),
		"PROBE_TIMEOUT":    ref("ProbeTimeout"),
		"PROBE_HANDSHAKES": ref("ProbeHandshakes"),
		// Several accounts; an empty value means unset.
		"ACCOUNT_ROLE_ARNS":       ref("AccountRoleArns"),
		"ORG_ROLE_NAME":           ref("OrgRoleName"),
		"ASSUME_ROLE_EXTERNAL_ID": ref("AssumeRoleExternalId"),
		"ACCOUNT_CONCURRENCY":     ref("AccountConcurrency"),
		"STATE_TABLE":             ref(stateTable(t, tp)),
		// Alert lifecycle and integrations.
		"ORG_INCLUDE_MANAGEMENT_ACCOUNT": ref("OrgIncludeManagementAccount"),
		"PROBE_CONCURRENCY":              ref("ProbeConcurrency"),
		"REALERT_INTERVAL":               ref("RealertInterval"),
		"PROBE_FAILURES_TO_ALERT":        ref("ProbeFailuresToAlert"),
		"EXPIRY_WARNING":                 ref("ExpiryWarning"),
		"ALERT_FORMAT":                   ref("AlertFormat"),
		"EVENT_BUS_NAME":                 ref("EventBusName"),
		"SECURITY_HUB":                   ref("SecurityHub"),
		// Sharded runs; the bucket only when sharded, else empty.
		"SHARD_SIZE":   ref("ShardSize"),
		"SHARD_BUCKET": map[string]any{"Fn::If": []any{"Sharded", ref("ShardBucket"), ""}},
	}
	for name, w := range want {
		if got := vars[name]; !reflect.DeepEqual(got, w) {
			t.Errorf("environment %s = %#v, want %#v", name, got, w)
		}
	}
	for name := range vars {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected environment variable %s (add it to this test and to DESIGN.md)", name)
		}
	}
}

func TestParameters(t *testing.T) {
	tp := loadTemplate(t)
	// Ranges and patterns are checked against the function by
	// TestTemplateFunctionParity; whole numbers are Strings (a Number admits 8.5).
	tests := []struct {
		name, typ string
		def       any
	}{
		{name: "ScheduleExpression", typ: "String", def: "rate(1 hour)"},
		{name: "DriftMode", typ: "String", def: "remediate"},
		{name: "AlertEmail", typ: "String", def: ""},
		{name: "AlertFormat", typ: "String", def: "json"},
		{name: "RealertInterval", typ: "String", def: "24h"},
		{name: "ProbeFailuresToAlert", typ: "String", def: "2"},
		{name: "ExpiryWarning", typ: "String", def: "720h"},
		{name: "EventBusName", typ: "String", def: ""},
		{name: "SecurityHub", typ: "String", def: "false"},
		{name: "Concurrency", typ: "String", def: "8"},
		{name: "ProbeConcurrency", typ: "String", def: "64"},
		{name: "ProbeTimeout", typ: "String", def: "10s"},
		{name: "ProbeHandshakes", typ: "String", def: "2"},
		{name: "LogRetentionDays", typ: "Number", def: 30},
		{name: "AccountRoleArns", typ: "String", def: ""},
		{name: "OrgRoleName", typ: "String", def: ""},
		{name: "AssumeRoleExternalId", typ: "String", def: ""},
		{name: "AccountConcurrency", typ: "String", def: "16"},
		{name: "OrgIncludeManagementAccount", typ: "String", def: "false"},
		{name: "OrganizationId", typ: "String", def: ""},
		{name: "ShardSize", typ: "String", def: "0"},
		{name: "ShardMaxConcurrency", typ: "String", def: "10"},
		{name: "ShardToleratedFailurePercentage", typ: "String", def: "0"},
	}
	params, _ := tp.doc["Parameters"].(map[string]any)
	if len(params) != len(tests) {
		t.Errorf("template has %d parameters, this test knows %d: add the new ones here", len(params), len(tests))
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := lookup(tp.doc, "Parameters", tc.name).(map[string]any)
			if !ok {
				t.Fatalf("parameter %s missing", tc.name)
			}
			if p["Type"] != tc.typ {
				t.Errorf("Type = %v, want %s", p["Type"], tc.typ)
			}
			if !reflect.DeepEqual(p["Default"], tc.def) {
				t.Errorf("Default = %#v, want %#v", p["Default"], tc.def)
			}
			if d, _ := p["Description"].(string); d == "" {
				t.Errorf("%s has no Description", tc.name)
			}
			if _, hasPattern := p["AllowedPattern"]; hasPattern && p["ConstraintDescription"] == nil {
				t.Errorf("%s has an AllowedPattern and no ConstraintDescription: the console would show the pattern", tc.name)
			}
		})
	}

	t.Run("DriftMode AllowedValues", func(t *testing.T) {
		got := strs(lookup(tp.doc, "Parameters", "DriftMode", "AllowedValues"))
		slices.Sort(got)
		if want := []string{"alert", "remediate", "report"}; !slices.Equal(got, want) {
			t.Errorf("DriftMode AllowedValues = %v, want %v", got, want)
		}
	})
	t.Run("LogRetentionDays AllowedValues has default", func(t *testing.T) {
		if allowed := lookup(tp.doc, "Parameters", "LogRetentionDays", "AllowedValues"); !slices.Contains(rehearsal.AsList(allowed), any(30)) {
			t.Errorf("LogRetentionDays AllowedValues %v lack the default 30", allowed)
		}
	})
	t.Run("ProbeTimeout pattern", func(t *testing.T) {
		pattern, _ := lookup(tp.doc, "Parameters", "ProbeTimeout", "AllowedPattern").(string)
		re, err := regexp.Compile(pattern)
		if err != nil {
			t.Fatalf("AllowedPattern %q: %v", pattern, err)
		}
		for s, want := range map[string]bool{"10s": true, "1500ms": true, "1m30s": true, "2.5s": true, "": false, "10": false, "ten": false, "-1s": false} {
			if got := re.MatchString(s); got != want {
				t.Errorf("AllowedPattern matches %q = %v, want %v", s, got, want)
			}
		}
	})
}

func TestAlertEmailSubscriptionIsConditional(t *testing.T) {
	tp := loadTemplate(t)
	want := map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{ref("AlertEmail"), ""}}}}
	if got := lookup(tp.doc, "Conditions", "HasAlertEmail"); !reflect.DeepEqual(got, want) {
		t.Errorf("Conditions.HasAlertEmail = %#v, want %#v", got, want)
	}
	subs := tp.resourcesOfType("AWS::SNS::Subscription")
	if len(subs) != 1 {
		t.Fatalf("SNS subscriptions = %v, want exactly one (the optional email)", subs)
	}
	s := tp.resource(t, subs[0], "AWS::SNS::Subscription")
	if s["Condition"] != "HasAlertEmail" {
		t.Errorf("subscription Condition = %v, want HasAlertEmail", s["Condition"])
	}
	checks := map[string]any{
		"Protocol": "email",
		"Endpoint": ref("AlertEmail"),
		"TopicArn": ref(alertTopic(t, tp)),
	}
	for k, w := range checks {
		if got := lookup(s, "Properties", k); !reflect.DeepEqual(got, w) {
			t.Errorf("subscription %s = %#v, want %#v", k, got, w)
		}
	}
}

// statement is one IAM policy statement, normalised.
type statement struct {
	sid       string
	effect    string
	actions   []string
	resources []any
	raw       map[string]any
	// condition names the template condition the statement exists under, for a
	// statement written as !If [condition, statement, !Ref AWS::NoValue]; empty
	// for a statement that always applies.
	condition string
}

func statements(t *testing.T, doc any) []statement {
	t.Helper()
	var out []statement
	for _, s := range rehearsal.AsList(lookup(doc, "Statement")) {
		m, ok := s.(map[string]any)
		if !ok {
			t.Fatalf("statement %#v is not a mapping", s)
		}
		var condition string
		if ifArgs, ok := m["Fn::If"]; ok {
			args := rehearsal.AsList(ifArgs)
			name, _ := args[0].(string)
			then, _ := args[1].(map[string]any)
			if len(m) != 1 || len(args) != 3 || name == "" || then == nil || !reflect.DeepEqual(args[2], ref("AWS::NoValue")) {
				t.Fatalf("statement %#v: a conditional statement must be !If [condition, statement, !Ref AWS::NoValue]", s)
			}
			m, condition = then, name
		}
		out = append(out, statement{
			sid:       fmt.Sprint(m["Sid"]),
			effect:    fmt.Sprint(m["Effect"]),
			actions:   strs(m["Action"]),
			resources: rehearsal.AsList(m["Resource"]),
			raw:       m,
			condition: condition,
		})
	}
	return out
}

// functionRole returns the logical id and the resource of the function's
// execution role, failing t unless the function names an AWS::IAM::Role of the
// template as its Role.
func functionRole(t *testing.T, tp *template) (string, map[string]any) {
	t.Helper()
	props := tp.functionProps(t, functionID)
	ga := rehearsal.AsList(lookup(props, "Role", "Fn::GetAtt"))
	if len(ga) != 2 || ga[1] != "Arn" || !tp.isResource(ga[0], "AWS::IAM::Role") {
		t.Fatalf("function Role = %#v, want GetAtt Arn of an AWS::IAM::Role in the template", props["Role"])
	}
	id := ga[0].(string)
	return id, tp.resource(t, id, "AWS::IAM::Role")
}

// functionStatements returns every statement of the inline policies of the
// function's role. Only inline policy documents are allowed: managed policies
// cannot be audited here.
func functionStatements(t *testing.T, tp *template) []statement {
	t.Helper()
	_, role := functionRole(t, tp)
	var out []statement
	for i, p := range rehearsal.AsList(lookup(role, "Properties", "Policies")) {
		doc, ok := lookup(p, "PolicyDocument").(map[string]any)
		if !ok || doc["Statement"] == nil {
			t.Fatalf("role Policies[%d] = %#v: want an inline PolicyDocument with Statement", i, p)
		}
		out = append(out, statements(t, doc)...)
	}
	if len(out) == 0 {
		t.Fatal("the function's role has no policy statements")
	}
	return out
}

func TestFunctionPoliciesLeastPrivilege(t *testing.T) {
	tp := loadTemplate(t)
	topic := alertTopic(t, tp)
	key := topicKey(t, tp)
	logGroup := functionLogGroup(t, tp)
	queue := deadLetterQueue(t, tp)
	stmts := functionStatements(t, tp)

	// The complete set of actions the function may take. Adding one is a
	// deliberate change of this test, of the README's permissions section and
	// of the IAM review it implies.
	wantActions := []string{
		"dynamodb:BatchGetItem",
		"dynamodb:UpdateItem",
		"events:PutEvents", // only with EventBusName
		"iam:GetOpenIDConnectProvider",
		"iam:ListOpenIDConnectProviders",
		"iam:UpdateOpenIDConnectProviderThumbprint",
		"kms:Decrypt",
		"kms:GenerateDataKey*",
		"logs:CreateLogStream",
		"logs:PutLogEvents",
		"organizations:DescribeOrganization", // only with OrgRoleName
		"organizations:ListAccounts",         // only with OrgRoleName
		"s3:GetObject",                       // only with ShardSize above 0
		"s3:PutObject",                       // only with ShardSize above 0
		"securityhub:BatchImportFindings",    // only with SecurityHub=true
		"sns:Publish",
		"sqs:SendMessage",
		"sts:AssumeRole", // only with AccountRoleArns or OrgRoleName
	}
	var gotActions []string
	for _, s := range stmts {
		gotActions = append(gotActions, s.actions...)
	}
	slices.Sort(gotActions)
	if gotActions = slices.Compact(gotActions); !slices.Equal(gotActions, wantActions) {
		t.Errorf("function actions = %v, want %v", gotActions, wantActions)
	}

	for _, s := range stmts {
		t.Run(s.sid, func(t *testing.T) {
			if s.effect != "Allow" {
				t.Errorf("Effect = %s, want Allow", s.effect)
			}
			for _, k := range []string{"NotAction", "NotResource", "Principal", "NotPrincipal"} {
				if _, ok := s.raw[k]; ok {
					t.Errorf("statement uses %s", k)
				}
			}
			if len(s.actions) == 0 || len(s.resources) == 0 {
				t.Fatalf("statement needs Action and Resource, has %v and %v", s.actions, s.resources)
			}
			for _, a := range s.actions {
				if a == "*" || strings.HasSuffix(a, ":*") || strings.EqualFold(a, "iam:*") {
					t.Errorf("action %q is a wildcard", a)
				}
				if strings.Contains(a, "*") && a != "kms:GenerateDataKey*" {
					t.Errorf("action %q has a wildcard", a)
				}
			}
			for _, r := range s.resources {
				if r == "*" && !slices.Equal(s.actions, []string{"iam:ListOpenIDConnectProviders"}) &&
					!slices.Equal(s.actions, []string{"organizations:ListAccounts", "organizations:DescribeOrganization"}) {
					t.Errorf("Resource * with actions %v: only iam:ListOpenIDConnectProviders, organizations:ListAccounts and organizations:DescribeOrganization may use it", s.actions)
				}
			}
			// The single-account statements always apply; the ones for other
			// accounts only when their parameter is set.
			for _, a := range s.actions {
				switch a {
				case "sts:AssumeRole", "organizations:ListAccounts", "organizations:DescribeOrganization":
				case "events:PutEvents":
					if s.condition != "HasEventBus" {
						t.Errorf("%s under condition %q, want HasEventBus", a, s.condition)
					}
				case "s3:GetObject", "s3:PutObject":
					if s.condition != "Sharded" {
						t.Errorf("%s under condition %q, want Sharded", a, s.condition)
					}
				case "securityhub:BatchImportFindings":
					if s.condition != "UsesSecurityHub" {
						t.Errorf("%s under condition %q, want UsesSecurityHub", a, s.condition)
					}
				default:
					if s.condition != "" {
						t.Errorf("%s exists only under condition %s; it must always apply", a, s.condition)
					}
				}
			}
			for _, a := range s.actions {
				var want any
				switch {
				case a == "sts:AssumeRole" && s.condition == "HasAccountRoleArns":
					// Exactly the listed roles.
					want = map[string]any{"Fn::Split": []any{",", ref("AccountRoleArns")}}
				case a == "sts:AssumeRole" && s.condition == "HasOrgRoleName":
					// The member role's name in any account, never any role.
					want = sub("arn:${AWS::Partition}:iam::*:role/${OrgRoleName}")
				case a == "sts:AssumeRole":
					t.Errorf("sts:AssumeRole under condition %q, want HasAccountRoleArns or HasOrgRoleName", s.condition)
					continue
				case a == "organizations:ListAccounts" || a == "organizations:DescribeOrganization":
					if s.condition != "HasOrgRoleName" {
						t.Errorf("%s under condition %q, want HasOrgRoleName", a, s.condition)
					}
					want = "*"
				case a == "events:PutEvents":
					// The bus by ARN, or by name in this account and region
					// (TestAlertEventsPermission evaluates it).
					want = map[string]any{"Fn::If": []any{"EventBusIsArn", ref("EventBusName"),
						sub("arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}")}}
				case strings.HasPrefix(a, "s3:"):
					// The runs' objects in the stack's own bucket, nothing else.
					want = sub("${ShardBucket.Arn}/runs/*")
				case a == "securityhub:BatchImportFindings":
					want = sub("arn:${AWS::Partition}:securityhub:${AWS::Region}:${AWS::AccountId}:product/${AWS::AccountId}/default")
				case strings.HasPrefix(a, "logs:"):
					want = getAtt(logGroup, "Arn")
				case a == "sqs:SendMessage":
					want = getAtt(queue, "Arn")
				case a == "iam:ListOpenIDConnectProviders":
					want = "*"
				case strings.HasPrefix(a, "iam:"):
					want = sub(oidcProviderID)
				case a == "sns:Publish":
					want = ref(topic)
				case strings.HasPrefix(a, "kms:"):
					want = getAtt(key, "Arn")
				case strings.HasPrefix(a, "dynamodb:"):
					want = getAtt(stateTable(t, tp), "Arn")
				default:
					t.Errorf("action %s has no expected resource in this test", a)
					continue
				}
				if !reflect.DeepEqual(s.resources, []any{want}) {
					t.Errorf("%s on %#v, want only %#v", a, s.resources, want)
				}
			}
		})
	}
}

// alertTopic returns the logical id of the template's single SNS topic.
func alertTopic(t *testing.T, tp *template) string {
	t.Helper()
	topics := tp.resourcesOfType("AWS::SNS::Topic")
	if len(topics) != 1 {
		t.Fatalf("SNS topics = %v, want exactly one", topics)
	}
	return topics[0]
}

// topicKey returns the logical id of the AWS::KMS::Key the topic is encrypted
// with, failing t when the topic uses anything else (such as alias/aws/sns).
func topicKey(t *testing.T, tp *template) string {
	t.Helper()
	topic := tp.resource(t, alertTopic(t, tp), "AWS::SNS::Topic")
	kmsKey := lookup(topic, "Properties", "KmsMasterKeyId")
	var id any
	switch k := kmsKey.(type) {
	case map[string]any:
		if r, ok := k["Ref"]; ok {
			id = r
		} else if ga := rehearsal.AsList(k["Fn::GetAtt"]); len(ga) == 2 && ga[1] == "Arn" {
			id = ga[0]
		}
	}
	if !tp.isResource(id, "AWS::KMS::Key") {
		t.Fatalf("topic KmsMasterKeyId = %#v, want a Ref or GetAtt Arn of an AWS::KMS::Key in the template", kmsKey)
	}
	return id.(string)
}

func principalServices(s statement) []string {
	return strs(lookup(s.raw, "Principal", "Service"))
}

func TestAlertTopicKey(t *testing.T) {
	tp := loadTemplate(t)
	key := tp.resource(t, topicKey(t, tp), "AWS::KMS::Key")

	if got := lookup(key, "Properties", "EnableKeyRotation"); got != true {
		t.Errorf("EnableKeyRotation = %#v, want true", got)
	}
	stmts := statements(t, lookup(key, "Properties", "KeyPolicy"))

	var rootAdmin, cloudwatchUses bool
	for _, s := range stmts {
		if s.effect != "Allow" {
			continue
		}
		if p := lookup(s.raw, "Principal"); p == "*" || lookup(p, "AWS") == "*" {
			t.Errorf("key policy statement %s admits any principal", s.sid)
		}
		if reflect.DeepEqual(lookup(s.raw, "Principal", "AWS"), sub(accountRoot)) && slices.Contains(s.actions, "kms:*") {
			rootAdmin = true
		}
		if slices.Contains(principalServices(s), cloudwatch) &&
			slices.Contains(s.actions, "kms:Decrypt") && slices.Contains(s.actions, "kms:GenerateDataKey*") {
			cloudwatchUses = true
			// Only on behalf of this account's alarms: without it, any account's
			// CloudWatch could use the key through a topic that names it.
			if got := lookup(s.raw, "Condition", "StringEquals", "aws:SourceAccount"); !reflect.DeepEqual(got, ref("AWS::AccountId")) {
				t.Errorf("key policy statement %s for %s: Condition StringEquals aws:SourceAccount = %#v, want Ref AWS::AccountId", s.sid, cloudwatch, got)
			}
		}
	}
	if !rootAdmin {
		t.Errorf("key policy lacks the account root (%s) administering the key", accountRoot)
	}
	if !cloudwatchUses {
		t.Errorf("key policy does not let %s use kms:Decrypt and kms:GenerateDataKey*", cloudwatch)
	}
}

func TestAlertTopicPolicy(t *testing.T) {
	tp := loadTemplate(t)
	topic := alertTopic(t, tp)
	var found bool
	for _, id := range tp.resourcesOfType("AWS::SNS::TopicPolicy") {
		p := tp.resource(t, id, "AWS::SNS::TopicPolicy")
		if !slices.ContainsFunc(rehearsal.AsList(lookup(p, "Properties", "Topics")), func(v any) bool { return reflect.DeepEqual(v, ref(topic)) }) {
			continue
		}
		for _, s := range statements(t, lookup(p, "Properties", "PolicyDocument")) {
			if s.effect != "Allow" || !slices.Contains(principalServices(s), cloudwatch) {
				continue
			}
			if !slices.Equal(s.actions, []string{"sns:Publish"}) {
				t.Errorf("cloudwatch statement actions = %v, want [sns:Publish]", s.actions)
			}
			acct := lookup(s.raw, "Condition", "StringEquals", "aws:SourceAccount")
			if !reflect.DeepEqual(acct, ref("AWS::AccountId")) && !reflect.DeepEqual(acct, sub("${AWS::AccountId}")) {
				t.Errorf("cloudwatch statement aws:SourceAccount = %#v, want this account", acct)
			}
			found = true
		}
	}
	if !found {
		t.Errorf("no topic policy on %s lets %s publish", topic, cloudwatch)
	}
}

func TestAlarms(t *testing.T) {
	tp := loadTemplate(t)
	topic := alertTopic(t, tp)
	alarms := tp.resourcesOfType("AWS::CloudWatch::Alarm")

	tests := []struct{ namespace, metric string }{
		{"AWS/Lambda", "Errors"},
		{"ThumbprintDrift", "BreakingDrift"},
	}
	for _, tc := range tests {
		t.Run(tc.metric, func(t *testing.T) {
			var props map[string]any
			for _, id := range alarms {
				p, _ := lookup(tp.resource(t, id, "AWS::CloudWatch::Alarm"), "Properties").(map[string]any)
				if p["Namespace"] == tc.namespace && p["MetricName"] == tc.metric {
					props = p
				}
			}
			if props == nil {
				t.Fatalf("no alarm on %s %s", tc.namespace, tc.metric)
			}
			wantDim := []any{map[string]any{"Name": "FunctionName", "Value": ref(functionID)}}
			if got := props["Dimensions"]; !reflect.DeepEqual(got, wantDim) {
				t.Errorf("Dimensions = %#v, want %#v", got, wantDim)
			}
			if got := props["TreatMissingData"]; got != "notBreaching" {
				t.Errorf("TreatMissingData = %v, want notBreaching", got)
			}
		})
	}

	for _, id := range alarms {
		actions := lookup(tp.resource(t, id, "AWS::CloudWatch::Alarm"), "Properties", "AlarmActions")
		if !reflect.DeepEqual(actions, []any{ref(topic)}) {
			t.Errorf("alarm %s AlarmActions = %#v, want [Ref %s]", id, actions, topic)
		}
	}
}

func TestScheduleEvent(t *testing.T) {
	tp := loadTemplate(t)
	// SAM turns the function's Schedule event into a rule targeting it.
	var rule string
	for _, id := range tp.resourcesOfType("AWS::Events::Rule") {
		targets := rehearsal.AsList(lookup(tp.doc, "Resources", id, "Properties", "Targets"))
		if lookup(tp.doc, "Resources", id, "Properties", "ScheduleExpression") != nil &&
			len(targets) > 0 && reflect.DeepEqual(lookup(targets[0], "Arn"), getAtt(functionID, "Arn")) {
			if rule != "" {
				t.Fatalf("schedule rules %s and %s, want one", rule, id)
			}
			rule = id
		}
	}
	if rule == "" {
		t.Fatal("the function has no Schedule event")
	}
	ruleProps, _ := lookup(tp.doc, "Resources", rule, "Properties").(map[string]any)
	if got := ruleProps["ScheduleExpression"]; !reflect.DeepEqual(got, ref("ScheduleExpression")) {
		t.Errorf("ScheduleExpression = %#v, want Ref ScheduleExpression", got)
	}
	targets := rehearsal.AsList(ruleProps["Targets"])
	if len(targets) != 1 || !reflect.DeepEqual(lookup(targets[0], "Arn"), getAtt(functionID, "Arn")) {
		t.Fatalf("schedule Targets = %#v, want the function only", targets)
	}
	props, _ := targets[0].(map[string]any)
	if n, ok := lookup(props, "RetryPolicy", "MaximumRetryAttempts").(int); !ok || n < 1 || n > 185 {
		t.Errorf("RetryPolicy.MaximumRetryAttempts = %#v, want 1 to 185", lookup(props, "RetryPolicy", "MaximumRetryAttempts"))
	}
	ga := rehearsal.AsList(lookup(props, "DeadLetterConfig", "Arn", "Fn::GetAtt"))
	if len(ga) != 2 || ga[1] != "Arn" || !tp.isResource(ga[0], "AWS::SQS::Queue") {
		t.Fatalf("DeadLetterConfig = %#v, want Arn: GetAtt of an SQS queue in the template", props["DeadLetterConfig"])
	}

	// With an explicit Arn, SAM adds no queue policy: the template must let the
	// rule SAM generates send to the queue.
	queue := ga[0].(string)
	var allowed bool
	for _, id := range tp.resourcesOfType("AWS::SQS::QueuePolicy") {
		p := tp.resource(t, id, "AWS::SQS::QueuePolicy")
		if !reflect.DeepEqual(lookup(p, "Properties", "Queues"), []any{ref(queue)}) {
			continue
		}
		for _, s := range statements(t, lookup(p, "Properties", "PolicyDocument")) {
			if s.effect == "Allow" && slices.Contains(principalServices(s), "events.amazonaws.com") &&
				slices.Equal(s.actions, []string{"sqs:SendMessage"}) &&
				reflect.DeepEqual(lookup(s.raw, "Condition", "ArnEquals", "aws:SourceArn"), getAtt(rule, "Arn")) {
				allowed = true
			}
		}
	}
	if !allowed {
		t.Errorf("no queue policy lets events.amazonaws.com send to %s from rule %s only", queue, rule)
	}
}

func TestEventInvokeConfig(t *testing.T) {
	tp := loadTemplate(t)
	var cfg map[string]any
	for _, id := range tp.resourcesOfType("AWS::Lambda::EventInvokeConfig") {
		if reflect.DeepEqual(lookup(tp.doc, "Resources", id, "Properties", "FunctionName"), ref(functionID)) {
			cfg, _ = lookup(tp.doc, "Resources", id, "Properties").(map[string]any)
		}
	}
	if cfg == nil {
		t.Fatal("the function has no EventInvokeConfig")
	}
	if n, ok := cfg["MaximumRetryAttempts"].(int); !ok || n < 0 || n > 2 {
		t.Errorf("MaximumRetryAttempts = %#v, want 0 to 2", cfg["MaximumRetryAttempts"])
	}
	dest := lookup(cfg, "DestinationConfig", "OnFailure", "Destination")
	ga := rehearsal.AsList(lookup(dest, "Fn::GetAtt"))
	queue := len(ga) == 2 && ga[1] == "Arn" && tp.isResource(ga[0], "AWS::SQS::Queue")
	if !queue && !reflect.DeepEqual(dest, ref(alertTopic(t, tp))) {
		t.Errorf("OnFailure Destination = %#v, want GetAtt Arn of a queue in the template, or the alert topic", dest)
	}
}

func TestLogGroup(t *testing.T) {
	tp := loadTemplate(t)
	props := tp.functionProps(t, functionID)
	lg := lookup(props, "LoggingConfig", "LogGroup")
	r, _ := lg.(map[string]any)
	if r == nil || !tp.isResource(r["Ref"], "AWS::Logs::LogGroup") {
		t.Fatalf("LoggingConfig.LogGroup = %#v, want Ref of a log group in the template", lg)
	}
	group := tp.resource(t, r["Ref"].(string), "AWS::Logs::LogGroup")
	fnName, _ := lookup(props, "FunctionName", "Fn::Sub").(string)
	if got, want := lookup(group, "Properties", "LogGroupName"), sub("/aws/lambda/"+fnName); fnName == "" || !reflect.DeepEqual(got, want) {
		t.Errorf("LogGroupName = %#v, want %#v", got, want)
	}
	if got := lookup(group, "Properties", "RetentionInDays"); !reflect.DeepEqual(got, ref("LogRetentionDays")) {
		t.Errorf("RetentionInDays = %#v, want Ref LogRetentionDays", got)
	}
}

func TestOutputs(t *testing.T) {
	tp := loadTemplate(t)
	topic := alertTopic(t, tp)
	values := map[string]bool{}
	outputs, _ := tp.doc["Outputs"].(map[string]any)
	for _, o := range outputs {
		values[fmt.Sprint(lookup(o, "Value"))] = true
	}
	queue := ""
	if qs := tp.resourcesOfType("AWS::SQS::Queue"); len(qs) == 1 {
		queue = qs[0]
	}
	for name, want := range map[string]any{
		"topic ARN":       ref(topic),
		"function ARN":    getAtt(functionID, "Arn"),
		"dead-letter URL": ref(queue),
		"dead-letter ARN": getAtt(queue, "Arn"),
	} {
		if !values[fmt.Sprint(want)] {
			t.Errorf("no output with the %s (%v)", name, want)
		}
	}
}

// TestNoHardCodedPartition keeps the templates deployable in aws-cn and aws-us-gov.
func TestNoHardCodedPartition(t *testing.T) {
	re := regexp.MustCompile(`arn:aws(-[a-z]+)*:`)
	for _, name := range cfnFiles {
		// What CloudFormation receives, SAM's generated resources included.
		tp := loadCFNFile(t, name)
		if m := re.FindAll(tp.json, -1); len(m) > 0 {
			t.Errorf("%s as transformed hard-codes a partition %d times (%s...; use ${AWS::Partition})", name, len(m), m[0])
		}
	}
	// A stack created in the China partition names only its ARNs.
	d := loadTemplate(t).deploy(t, "cn-north-1", nil)
	var arns []string
	for _, v := range d.Outputs {
		if strings.HasPrefix(v, "arn:") {
			arns = append(arns, v)
		}
	}
	for _, s := range d.statements(functionRoleID) {
		arns = append(arns, s.Resource...)
	}
	if len(arns) < 5 {
		t.Fatalf("ARNs of the cn-north-1 stack: %v, want the outputs' and the function policy's", arns)
	}
	for _, a := range arns {
		// moto resolves ${AWS::Partition} to aws in an iam:: ARN of a Fn::Sub
		// whatever the region; the transformed template above shows those use
		// the pseudo parameter.
		if a != "*" && !strings.HasPrefix(a, "arn:aws-cn:") && !strings.HasPrefix(a, "arn:aws:iam::") {
			t.Errorf("stack in cn-north-1: ARN %s is not in the aws-cn partition", a)
		}
	}
}
