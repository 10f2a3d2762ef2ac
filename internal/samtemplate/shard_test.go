package samtemplate

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/thumbprint-drift/thumbprint-drift/internal/rehearsal"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

// transformedWith is template.yaml as sam deploy submits it with params.
func transformedWith(t *testing.T, params map[string]string) map[string]any {
	t.Helper()
	body, err := rehearsal.Transform(context.Background(), repoRoot(t), rehearsal.CentralTemplate, "s3://code/bootstrap.zip", params)
	if errors.Is(err, testpeer.ErrMissing) {
		peertest.Missing(t, "aws-sam-translator (python3)")
	}
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// shardParams shards an organisation in batches of 20.
var shardParams = map[string]string{"OrgRoleName": "thumbprint-drift-member", "ShardSize": "20"}

func TestShardedResources(t *testing.T) {
	doc := transformedWith(t, shardParams)
	res := func(id, typ string) map[string]any {
		t.Helper()
		r, _ := lookup(doc, "Resources", id).(map[string]any)
		if r == nil || r["Type"] != typ {
			t.Fatalf("resource %s: %#v, want a %s", id, r, typ)
		}
		if id != "DriftCheckFunctionSchedule" && r["Condition"] != "Sharded" {
			t.Errorf("resource %s has Condition %v, want Sharded: ShardSize 0 must change nothing", id, r["Condition"])
		}
		return r
	}

	t.Run("bucket", func(t *testing.T) {
		b := res("ShardBucket", "AWS::S3::Bucket")
		if got := lookup(b, "Properties", "BucketEncryption", "ServerSideEncryptionConfiguration"); len(rehearsal.AsList(got)) != 1 ||
			lookup(rehearsal.AsList(got)[0], "ServerSideEncryptionByDefault", "SSEAlgorithm") == nil {
			t.Errorf("BucketEncryption = %#v, want default encryption", got)
		}
		for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
			if lookup(b, "Properties", "PublicAccessBlockConfiguration", k) != true {
				t.Errorf("PublicAccessBlockConfiguration.%s is not true", k)
			}
		}
		rules := rehearsal.AsList(lookup(b, "Properties", "LifecycleConfiguration", "Rules"))
		if len(rules) != 1 || lookup(rules[0], "Status") != "Enabled" || lookup(rules[0], "ExpirationInDays") != float64(1) {
			t.Errorf("lifecycle rules %#v, want objects expiring after a day", rules)
		}
		p := res("ShardBucketPolicy", "AWS::S3::BucketPolicy")
		var denies bool
		for _, s := range rehearsal.AsList(lookup(p, "Properties", "PolicyDocument", "Statement")) {
			if lookup(s, "Effect") == "Deny" && lookup(s, "Condition", "Bool", "aws:SecureTransport") == "false" && lookup(s, "Action") == "s3:*" {
				denies = true
			}
		}
		if !denies {
			t.Error("the bucket policy does not deny requests without TLS")
		}
	})

	t.Run("state machine", func(t *testing.T) {
		sm := res("DriftCheckStateMachine", "AWS::StepFunctions::StateMachine")
		// The name the role (its Map's child executions) and the dashboard use.
		if got := lookup(sm, "Properties", "StateMachineName"); !reflect.DeepEqual(got, sub("${AWS::StackName}-shards")) {
			t.Errorf("StateMachineName = %#v, want <stack>-shards", got)
		}
		if got := lookup(sm, "Properties", "LoggingConfiguration", "Level"); got != "ERROR" {
			t.Errorf("log level %v, want ERROR", got)
		}
		dest := rehearsal.AsList(lookup(sm, "Properties", "LoggingConfiguration", "Destinations"))
		if len(dest) != 1 || !reflect.DeepEqual(lookup(dest[0], "CloudWatchLogsLogGroup", "LogGroupArn"), getAtt("DriftCheckStateMachineLogGroup", "Arn")) {
			t.Errorf("log destinations %#v, want the stack's log group", dest)
		}
		res("DriftCheckStateMachineLogGroup", "AWS::Logs::LogGroup")
		if got := lookup(sm, "Properties", "RoleArn"); !reflect.DeepEqual(got, getAtt("DriftCheckStateMachineRole", "Arn")) {
			t.Errorf("RoleArn = %#v, want the stack's state machine role", got)
		}
		subs, _ := lookup(sm, "Properties", "DefinitionSubstitutions").(map[string]any)
		want := map[string]any{"Partition": ref("AWS::Partition"), "FunctionArn": getAtt(functionID, "Arn"),
			"MaxConcurrency": ref("ShardMaxConcurrency"), "ToleratedFailurePercentage": ref("ShardToleratedFailurePercentage")}
		if !reflect.DeepEqual(subs, want) {
			t.Errorf("DefinitionSubstitutions = %#v, want %#v", subs, want)
		}
	})

	t.Run("definition", func(t *testing.T) {
		body, _ := json.Marshal(doc)
		def, err := rehearsal.StateMachineDefinition(body, "DriftCheckStateMachine", map[string]string{
			"Partition": "aws", "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:f", "MaxConcurrency": "7", "ToleratedFailurePercentage": "5"})
		if err != nil {
			t.Fatal(err)
		}
		var asl map[string]any
		if err := json.Unmarshal([]byte(def), &asl); err != nil {
			t.Fatalf("definition is not JSON: %v", err)
		}
		plan, check, notify := lookup(asl, "States", "Plan"), lookup(asl, "States", "Check"), lookup(asl, "States", "Notify")
		if lookup(asl, "StartAt") != "Plan" || lookup(plan, "Next") != "Check" || lookup(check, "Next") != "Notify" || lookup(notify, "End") != true {
			t.Fatalf("states %v, want Plan -> Check -> Notify", lookup(asl, "States"))
		}
		if lookup(plan, "Parameters", "Payload", "shard") != "plan" || lookup(notify, "Parameters", "Payload", "shard") != "notify" ||
			lookup(check, "ItemSelector", "shard") != "check" || lookup(check, "ItemSelector", "accounts.$") != "$$.Map.Item.Value" {
			t.Error("the steps do not send the function its shard payloads")
		}
		// The parameters reach the Map as numbers.
		if lookup(plan, "ResultSelector", "max_concurrency.$") != "States.StringToJson('7')" ||
			lookup(plan, "ResultSelector", "tolerated_failure_percentage.$") != "States.StringToJson('5')" ||
			lookup(check, "MaxConcurrencyPath") != "$.max_concurrency" || lookup(check, "ToleratedFailurePercentagePath") != "$.tolerated_failure_percentage" {
			t.Error("MaxConcurrency and ToleratedFailurePercentage do not come from the parameters")
		}
		if lookup(check, "ItemProcessor", "ProcessorConfig", "Mode") != "DISTRIBUTED" ||
			lookup(check, "ItemReader", "Resource") != "arn:aws:states:::s3:getObject" ||
			lookup(check, "ItemReader", "ReaderConfig", "InputType") != "JSON" {
			t.Errorf("Check = %v, want a Distributed Map reading the batches with s3:getObject as JSON", check)
		}
		for _, k := range []string{"ItemBatcher", "ResultWriter"} {
			if lookup(check, k) != nil {
				t.Errorf("Check has %s: the design needs neither (and moto runs neither)", k)
			}
		}
		task := lookup(check, "ItemProcessor", "States", "CheckBatch")
		for name, st := range map[string]any{"Plan": plan, "CheckBatch": task, "Notify": notify} {
			if lookup(st, "Resource") != "arn:aws:states:::lambda:invoke" || lookup(st, "Parameters", "FunctionName") != "arn:aws:lambda:us-east-1:123456789012:function:f" {
				t.Errorf("%s does not invoke the function", name)
			}
			var retried []string
			for _, r := range rehearsal.AsList(lookup(st, "Retry")) {
				retried = append(retried, strs(lookup(r, "ErrorEquals"))...)
			}
			for _, e := range []string{"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException"} {
				if !slices.Contains(retried, e) {
					t.Errorf("%s does not retry %s (retries %v)", name, e, retried)
				}
			}
			// The function's errors: plan and a batch are retried; notify's
			// error comes after it sent, and a retry would send again.
			if got := slices.Contains(retried, "States.TaskFailed") || slices.Contains(retried, "States.ALL"); got != (name != "Notify") {
				t.Errorf("%s retries the function's errors: %v, want %v", name, got, name != "Notify")
			}
		}
	})

	t.Run("role", func(t *testing.T) {
		role := res("DriftCheckStateMachineRole", "AWS::IAM::Role")
		trust := rehearsal.AsList(lookup(role, "Properties", "AssumeRolePolicyDocument", "Statement"))
		if len(trust) != 1 || lookup(trust[0], "Principal", "Service") != "states.amazonaws.com" {
			t.Errorf("trust %#v, want Step Functions only", trust)
		}
		var actions []string
		for _, p := range rehearsal.AsList(lookup(role, "Properties", "Policies")) {
			for _, s := range rehearsal.AsList(lookup(p, "PolicyDocument", "Statement")) {
				acts := strs(lookup(s, "Action"))
				if a, ok := lookup(s, "Action").(string); ok {
					acts = []string{a}
				}
				actions = append(actions, acts...)
				resource := lookup(s, "Resource")
				switch {
				case slices.Contains(acts, "lambda:InvokeFunction"):
					if !reflect.DeepEqual(resource, getAtt(functionID, "Arn")) {
						t.Errorf("lambda:InvokeFunction on %#v, want only the function", resource)
					}
				case slices.ContainsFunc(acts, func(a string) bool { return strings.HasPrefix(a, "s3:") }):
					if !reflect.DeepEqual(acts, []string{"s3:GetObject"}) || !reflect.DeepEqual(resource, sub("${ShardBucket.Arn}/runs/*")) {
						t.Errorf("%v on %#v, want s3:GetObject on the bucket's runs only", acts, resource)
					}
				case slices.ContainsFunc(acts, func(a string) bool { return strings.HasPrefix(a, "states:") }):
					if r, _ := lookup(resource, "Fn::Sub").(string); !strings.Contains(r, "${AWS::StackName}-shards") {
						t.Errorf("%v on %#v, want its own executions only", acts, resource)
					}
				}
			}
		}
		slices.Sort(actions)
		want := []string{"lambda:InvokeFunction", "logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups",
			"logs:DescribeResourcePolicies", "logs:GetLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
			"logs:UpdateLogDelivery", "s3:GetObject", "states:DescribeExecution", "states:StartExecution", "states:StopExecution"}
		if !slices.Equal(actions, want) {
			t.Errorf("state machine actions %v, want %v", actions, want)
		}
	})

	t.Run("schedule", func(t *testing.T) {
		fnRule := res("DriftCheckFunctionSchedule", "AWS::Events::Rule")
		if got := lookup(fnRule, "Properties", "State"); !reflect.DeepEqual(got, map[string]any{"Fn::If": []any{"Sharded", "DISABLED", "ENABLED"}}) {
			t.Errorf("the function's schedule State = %#v, want DISABLED when sharded", got)
		}
		smRule := res("DriftCheckStateMachineSchedule", "AWS::Events::Rule")
		targets := rehearsal.AsList(lookup(smRule, "Properties", "Targets"))
		if len(targets) != 1 || !reflect.DeepEqual(lookup(targets[0], "Arn"), ref("DriftCheckStateMachine")) ||
			!reflect.DeepEqual(lookup(smRule, "Properties", "ScheduleExpression"), ref("ScheduleExpression")) ||
			!reflect.DeepEqual(lookup(targets[0], "DeadLetterConfig", "Arn"), getAtt("DeadLetterQueue", "Arn")) {
			t.Errorf("the state machine's schedule %#v, want ScheduleExpression starting the state machine, undelivered events to the dead-letter queue", smRule)
		}
	})
}
