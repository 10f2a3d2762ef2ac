package rehearsal

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

// checkSchedule: sharded, the function's schedule rule is disabled and the
// state machine's enabled, targeting the state machine as the role SAM
// made for it; otherwise the function's rule is enabled.
func (r *rehearsal) checkSchedule(ctx context.Context, eb *eventbridge.Client, stack *Stack, fnRule *eventbridge.DescribeRuleOutput, sharded bool) error {
	if !sharded {
		if fnRule.State != ebtypes.RuleStateEnabled {
			return fmt.Errorf("schedule rule %s is %s, want ENABLED", aws.ToString(fnRule.Name), fnRule.State)
		}
		return nil
	}
	if fnRule.State != ebtypes.RuleStateDisabled {
		return fmt.Errorf("sharded: the function's schedule rule %s is %s, want DISABLED (the state machine's rule starts the run)", aws.ToString(fnRule.Name), fnRule.State)
	}
	sm := stack.Outputs["StateMachineArn"]
	name := stack.Physical("DriftCheckStateMachineSchedule")
	rule, err := eb.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String(name)})
	if err != nil {
		return fmt.Errorf("sharded: the state machine's schedule rule %q: %w", name, err)
	}
	targets, err := eb.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: rule.Name})
	if err != nil || rule.State != ebtypes.RuleStateEnabled || len(targets.Targets) != 1 || aws.ToString(targets.Targets[0].Arn) != sm {
		return fmt.Errorf("sharded: schedule rule %s is %s targeting %v (%v), want ENABLED targeting the state machine %s", name, rule.State, targets, err, sm)
	}
	r.say("  schedule: the function's rule DISABLED; %s ENABLED, starting %s", name, sm)
	return nil
}

// runShardSteps runs a sharded run's steps in one function process with the
// stack's environment, as the state machine would: plan, check for each
// batch plan wrote, then notify; it returns notify's report. The state
// machine's own calls (invoke the function, read the batches) are checked
// against its role's policies.
func (r *rehearsal) runShardSteps(ctx context.Context, env []string, stack *Stack) ([]byte, error) {
	f, err := testpeer.StartFunction(r.bin, r.dir, env)
	if err != nil {
		return nil, err
	}
	defer f.Stop()
	if _, err := f.Ready(ctx, 30*time.Second); err != nil {
		return nil, err
	}
	step := func(payload any) ([]byte, error) {
		b, _ := json.Marshal(payload)
		inv, err := f.Invoke(ctx, b, invokeTimeout)
		if err == nil && inv.Error != nil {
			err = fmt.Errorf("%s returned an error (%s): %s", b, inv.Error.ErrorType, inv.ErrorMessage())
		}
		if err != nil || r.opts.Verbose {
			r.say("  function log:\n%s", indent(f.Output()))
		}
		return inv.Response, err
	}
	out, err := step(map[string]string{"shard": "plan"})
	if err != nil {
		return nil, err
	}
	var plan struct{ Run, Bucket, Key string }
	if err := json.Unmarshal(out, &plan); err != nil || plan.Bucket != stack.Outputs["ShardBucketName"] {
		return nil, fmt.Errorf("plan answered %s (%v), want its batches in the stack's bucket %s", out, err, stack.Outputs["ShardBucketName"])
	}
	var batches [][]string
	if err := GetJSON(ctx, r.moto.Config(), plan.Bucket, plan.Key, &batches); err != nil {
		return nil, err
	}
	var keys []map[string]string
	for _, b := range batches {
		out, err := step(map[string]any{"shard": "check", "run": plan.Run, "accounts": b})
		if err != nil {
			return nil, err
		}
		var c struct{ Key string }
		if err := json.Unmarshal(out, &c); err != nil {
			return nil, fmt.Errorf("check answered %s: %w", out, err)
		}
		keys = append(keys, map[string]string{"key": c.Key})
	}
	rep, err := step(map[string]any{"shard": "notify", "run": plan.Run, "batches": keys})
	if err != nil {
		return nil, err
	}
	r.say("  sharded steps: plan, %d check, notify (run %s)", len(batches), plan.Run)
	return rep, r.checkStateMachineRole(ctx, stack, "arn:aws:s3:::"+plan.Bucket+"/"+plan.Key)
}

// checkStateMachineRole: the state machine's role allows what the
// definition does (invoke the stack's function, read the batches), and not
// another function or another bucket.
func (r *rehearsal) checkStateMachineRole(ctx context.Context, stack *Stack, batches string) error {
	role := stack.Physical("DriftCheckStateMachineRole")
	docs, err := RolePolicies(ctx, r.opts.Root, iam.NewFromConfig(r.moto.Config()), role)
	if err != nil {
		return err
	}
	var stmts []Statement
	for name, st := range docs {
		if name != TrustPolicy {
			stmts = append(stmts, st...)
		}
	}
	fn := stack.Outputs["DriftCheckFunctionArn"]
	for _, c := range []struct {
		action, resource string
		allow            bool
	}{
		{"lambda:InvokeFunction", fn, true},
		{"s3:GetObject", batches, true},
		{"lambda:InvokeFunction", fn + "-other", false},
		{"s3:GetObject", "arn:aws:s3:::another-bucket/runs/x", false},
		{"s3:PutObject", batches, false},
	} {
		if ok, why := Allows(stmts, c.action, c.resource); ok != c.allow {
			return fmt.Errorf("state machine role %s: %s on %s allowed %v (%s), want %v", role, c.action, c.resource, ok, why, c.allow)
		}
	}
	r.say("  state machine role: invokes %s, reads %s; nothing else of the kind", fn, batches)
	return nil
}

// GetJSON reads the JSON object s3://bucket/key into v.
func GetJSON(ctx context.Context, cfg aws.Config, bucket, key string, v any) error {
	b, err := signed(ctx, cfg, "s3", http.MethodGet, "/"+bucket+"/"+key, nil)
	if err != nil {
		return fmt.Errorf("get s3://%s/%s: %w", bucket, key, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}

// StateMachineDefinition is the definition of the state machine id of a
// transformed template as CloudFormation resolves it: the DefinitionString's
// lines joined, each ${name} of DefinitionSubstitutions replaced with
// values[name] (moto's CloudFormation creates a state machine that does not
// execute, so tests create it again through the Step Functions API with this).
// A substitution without a value is an error.
func StateMachineDefinition(transformed []byte, id string, values map[string]string) (string, error) {
	var doc struct {
		Resources map[string]struct {
			Type       string
			Properties struct {
				DefinitionString struct {
					Join []json.RawMessage `json:"Fn::Join"`
				}
				DefinitionSubstitutions map[string]any
			}
		}
	}
	if err := json.Unmarshal(transformed, &doc); err != nil {
		return "", fmt.Errorf("transformed template: %w", err)
	}
	res, ok := doc.Resources[id]
	if !ok || res.Type != "AWS::StepFunctions::StateMachine" || len(res.Properties.DefinitionString.Join) != 2 {
		return "", fmt.Errorf("transformed template: no state machine %s with a joined DefinitionString", id)
	}
	var sep string
	var lines []string
	if err := json.Unmarshal(res.Properties.DefinitionString.Join[0], &sep); err != nil {
		return "", fmt.Errorf("state machine %s: join separator: %w", id, err)
	}
	if err := json.Unmarshal(res.Properties.DefinitionString.Join[1], &lines); err != nil {
		return "", fmt.Errorf("state machine %s: definition lines are not plain strings: %w", id, err)
	}
	def := strings.Join(lines, sep)
	for name := range res.Properties.DefinitionSubstitutions {
		v, ok := values[name]
		if !ok {
			return "", fmt.Errorf("state machine %s: no value for substitution %s", id, name)
		}
		def = strings.ReplaceAll(def, "${"+name+"}", v)
	}
	if i := strings.Index(def, "${"); i >= 0 {
		return "", fmt.Errorf("state machine %s: unresolved %s", id, def[i:min(len(def), i+40)])
	}
	return def, nil
}
