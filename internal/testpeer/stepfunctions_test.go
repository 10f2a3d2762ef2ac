package testpeer_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

// A Distributed Map over an S3 object of three items, each invoking a Lambda
// task with Retry: moto's engine runs it, its Invoke reaches the front, and
// a failed invocation is retried.
const mapDefinition = `{
 "StartAt": "Check",
 "States": {
  "Check": {
   "Type": "Map",
   "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
                  "Parameters": {"Bucket": "harness-runs", "Key": "items.json"}},
   "ItemSelector": {"item.$": "$$.Map.Item.Value"},
   "MaxConcurrency": 2,
   "ItemProcessor": {
    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
    "StartAt": "Invoke",
    "States": {"Invoke": {
     "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
     "Parameters": {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:drift-check", "Payload.$": "$"},
     "ResultSelector": {"echo.$": "$.Payload.echo"},
     "Retry": [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": 1}],
     "End": true}}
   },
   "End": true
  }
 }
}`

func TestStepFunctionsInvokesThroughTheFront(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto_server")
	}
	ctx := context.Background()
	var answered atomic.Int64
	echo := testpeer.InvokerFunc(func(_ context.Context, payload []byte, _ time.Duration) (testpeer.Invocation, error) {
		answered.Add(1)
		var in struct {
			Item string `json:"item"`
		}
		if err := json.Unmarshal(payload, &in); err != nil {
			return testpeer.Invocation{Error: &testpeer.FunctionError{ErrorType: "BadPayload", ErrorMessage: err.Error()}}, nil
		}
		out, _ := json.Marshal(map[string]string{"echo": in.Item})
		return testpeer.Invocation{Response: out}, nil
	})
	sf, err := testpeer.StartStepFunctions(ctx, echo)
	if errors.Is(err, testpeer.ErrMissing) {
		peertest.Missing(t, "moto_server")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sf.Close)
	// The first invocation of item b fails once after the function answered.
	var seenB atomic.Bool
	sf.Intercept(func(_ int, c testpeer.LambdaCall) *testpeer.FunctionError {
		if strings.Contains(string(c.Payload), `"b"`) && !seenB.Swap(true) {
			return &testpeer.FunctionError{ErrorType: "Runtime.ExitError", ErrorMessage: "process died"}
		}
		return nil
	})

	cfg := sf.Moto.Config()
	cfg.BaseEndpoint = aws.String(sf.URL)
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("harness-runs")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("harness-runs"), Key: aws.String("items.json"),
		Body: strings.NewReader(`["a", "b", "c"]`)}); err != nil {
		t.Fatal(err)
	}
	role, err := iam.NewFromConfig(cfg).CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("states"), AssumeRolePolicyDocument: aws.String("{}")})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := testpeer.RunStateMachine(ctx, sfn.NewFromConfig(cfg), "harness", mapDefinition, aws.ToString(role.Role.Arn), "{}", 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("execution %s: %s %s", ex.Status, ex.Error, ex.Cause)
	}
	var out []map[string]string
	if err := json.Unmarshal([]byte(ex.Output), &out); err != nil {
		t.Fatalf("output %s: %v", ex.Output, err)
	}
	got := map[string]bool{}
	for _, o := range out {
		got[o["echo"]] = true
	}
	if len(out) != 3 || !got["a"] || !got["b"] || !got["c"] {
		t.Errorf("output %s, want the three items echoed", ex.Output)
	}
	calls := sf.Calls()
	if len(calls) != 4 || answered.Load() != 4 {
		t.Errorf("%d invocations recorded, %d answered, want 4 (three items, b retried once)", len(calls), answered.Load())
	}
	var failed int
	for _, c := range calls {
		if c.Error != nil {
			failed++
		}
		if !strings.Contains(c.Function, "function:drift-check") {
			t.Errorf("FunctionName %q, want the definition's ARN", c.Function)
		}
	}
	if failed != 1 {
		t.Errorf("%d failed invocations, want 1", failed)
	}
}
