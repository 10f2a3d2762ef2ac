package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/rehearsal"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/fleet"
)

// The sharded run of the organisation scenario: template.yaml's own state
// machine (transformed by aws-sam-translator, its definition substituted as
// CloudFormation does) executed by moto's Step Functions engine, each Lambda
// invocation answered by a process of the host binary (testpeer.FunctionPool,
// as Lambda runs concurrent invocations in separate environments).
const (
	shardBucket    = "thumbprint-drift-bench-shards"
	shardRoleName  = "thumbprint-drift-bench-states"
	shardMachine   = "thumbprint-drift-bench-shards"
	shardFunction  = "thumbprint-drift-drift-check"
	shardRunLimit  = 2 * orgRunLimit
	shardStepCheck = "check"
)

// shardedRun is the organisation checked as one sharded run.
type shardedRun struct {
	ShardSize, MaxConcurrency, Batches int
	// Took is from StartExecution to the execution's end.
	Took   time.Duration
	Status string
	// Steps are the invocations by step (plan, check, notify).
	Steps map[string]stepStats
	// Largest is the largest payload or answer passed between states, bytes.
	Largest  int
	Messages []string
	Counts   map[drift.Outcome]int
	Problem  string
}

// stepStats are one step's invocations.
type stepStats struct {
	N          int
	Total, Max time.Duration
}

// shardedOrg runs the organisation as a sharded run from empty state, as the
// bootstrap's unsharded run did.
func (b *bench) shardedOrg(ctx context.Context, w *fleet.Org) (*shardedRun, error) {
	size, conc := b.o.shardSize, b.o.shardConc
	r := &shardedRun{ShardSize: size, MaxConcurrency: conc, Steps: map[string]stepStats{}}
	b.logf("organisation: sharded run, ShardSize %d, MaxConcurrency %d (%d function processes)", size, conc, conc)
	root, err := testpeer.ModuleRoot(ctx)
	if err != nil {
		return nil, err
	}
	transformed, err := rehearsal.Transform(ctx, root, rehearsal.CentralTemplate, "s3://code/bootstrap.zip",
		map[string]string{"OrgRoleName": orgRoleName, "ShardSize": fmt.Sprint(size)})
	if err != nil {
		return nil, err
	}
	fnARN := "arn:aws:lambda:" + testpeer.Region + ":" + testpeer.AccountID + ":function:" + shardFunction
	def, err := rehearsal.StateMachineDefinition(transformed, "DriftCheckStateMachine", map[string]string{
		"Partition": "aws", "FunctionArn": fnARN, "MaxConcurrency": fmt.Sprint(conc), "ToleratedFailurePercentage": "0",
	})
	if err != nil {
		return nil, err
	}
	cfg := b.moto.Config()
	if _, err := s3.NewFromConfig(cfg).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(shardBucket)}); err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", shardBucket, err)
	}
	role, err := iam.NewFromConfig(cfg).CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(shardRoleName),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"states.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)})
	if err != nil && !errors.As(err, new(*iamtypes.EntityAlreadyExistsException)) {
		return nil, fmt.Errorf("create role %s: %w", shardRoleName, err)
	}
	roleARN := "arn:aws:iam::" + testpeer.AccountID + ":role/" + shardRoleName
	if role != nil {
		roleARN = aws.ToString(role.Role.Arn)
	}

	if err := b.moto.ResetStateTable(ctx, orgStateTable); err != nil {
		return nil, err
	}
	if _, err := w.Alerts.Drain(ctx); err != nil {
		return nil, err
	}
	env, err := b.functionEnv(append(w.Env(), "DRIFT_MODE=alert", "ORG_ROLE_NAME="+orgRoleName, "STATE_TABLE="+orgStateTable,
		"AWS_LAMBDA_FUNCTION_NAME="+shardFunction, "SHARD_BUCKET="+shardBucket, fmt.Sprintf("SHARD_SIZE=%d", size))...)
	if err != nil {
		return nil, err
	}
	pool, err := testpeer.StartFunctionPool(ctx, b.hostBin, b.dir, env, conc, coldStartLimit)
	if err != nil {
		return nil, err
	}
	defer pool.Stop()
	b.sf.SetInvoker(pool)
	b.sf.FunctionTimeout = orgRunLimit
	before := len(b.sf.Calls())

	fcfg := cfg
	fcfg.BaseEndpoint = aws.String(b.sf.URL)
	ex, err := testpeer.RunStateMachine(ctx, sfn.NewFromConfig(fcfg), shardMachine, def, roleARN, "{}", shardRunLimit)
	if err != nil {
		return nil, err
	}
	r.Took, r.Status, r.Largest = ex.Took, string(ex.Status), testpeer.CompactSize([]byte(ex.Output))
	for _, c := range b.sf.Calls()[before:] {
		var p struct{ Shard string }
		_ = json.Unmarshal(c.Payload, &p)
		s := r.Steps[p.Shard]
		s.N, s.Total, s.Max = s.N+1, s.Total+c.Took, max(s.Max, c.Took)
		r.Steps[p.Shard] = s
		r.Largest = max(r.Largest, testpeer.CompactSize(c.Payload), testpeer.CompactSize(c.Response))
		if c.Error != nil && r.Problem == "" {
			r.Problem = fmt.Sprintf("%s invocation failed: %s", p.Shard, firstLine(c.Error.ErrorMessage))
		}
	}
	r.Batches = r.Steps[shardStepCheck].N
	if ex.Status != sfntypes.ExecutionStatusSucceeded {
		r.Problem = fmt.Sprintf("execution %s: %s %s", ex.Status, ex.Error, firstLine(ex.Cause))
	} else {
		var rep drift.Report
		if err := json.Unmarshal([]byte(ex.Output), &rep); err != nil {
			r.Problem = "the execution's output is not a report: " + err.Error()
		}
		r.Counts = rep.Counts
		l := b.o.org
		if want := l.Accounts * (l.Providers / l.Hosts); r.Problem == "" && rep.Counts[drift.Drift] < want {
			r.Problem = fmt.Sprintf("%d drift, want at least %d (the last host's providers in every account)", rep.Counts[drift.Drift], want)
		}
	}
	msgs, err := w.Alerts.Drain(ctx)
	if err != nil && r.Problem == "" {
		r.Problem = "reading the alerts: " + err.Error()
	}
	for _, m := range msgs {
		r.Messages = append(r.Messages, m.Subject)
	}
	b.logf("organisation: sharded: %s in %.1fs, invocations %s, %d messages %s", r.Status, r.Took.Seconds(), r.invocations(), len(r.Messages), r.Problem)
	return r, nil
}

// invocations is "plan 1, check 4, notify 1".
func (r *shardedRun) invocations() string {
	var parts []string
	for _, s := range []string{"plan", shardStepCheck, "notify"} {
		parts = append(parts, fmt.Sprintf("%s %d", s, r.Steps[s].N))
	}
	return strings.Join(parts, ", ")
}

// printSharded prints the sharded run beside the bootstrap's unsharded run
// of the same organisation, both from empty state.
func printSharded(p func(format string, args ...any), org *orgResults) {
	r := org.Sharded
	if r == nil {
		return
	}
	unsharded := org.run("bootstrap")
	p("sharded run of the same organisation from empty state (template.yaml's state machine on moto's Step Functions engine, the host binary\n"+
		"answering each invocation through the Runtime API, %d processes): ShardSize %d, MaxConcurrency %d", r.MaxConcurrency, r.ShardSize, r.MaxConcurrency)
	if unsharded != nil {
		p("  unsharded (bootstrap, one invocation): %s, %d messages", secs(unsharded.Took), len(unsharded.Messages))
	}
	step := func(name string) string {
		s := r.Steps[name]
		if s.N == 0 {
			return name + " -"
		}
		return fmt.Sprintf("%s %d (longest %s, mean %s)", name, s.N, secs(s.Max), secs(s.Total/time.Duration(s.N)))
	}
	p("  sharded: %s %s, %d messages; invocations: %s, %s, %s; largest state payload %.1f KiB", r.Status, secs(r.Took), len(r.Messages),
		step("plan"), step(shardStepCheck), step("notify"), float64(r.Largest)/1024)
	if len(r.Messages) > 0 {
		p("  sharded: first message %q", r.Messages[0])
	}
	if r.Problem != "" {
		p("  PROBLEM: sharded: %s", firstLine(r.Problem))
	}
	if unsharded != nil && r.Took > 0 {
		p("bench-sharded: unsharded_s=%.1f sharded_s=%.1f batches=%d shard_size=%d max_concurrency=%d largest_state_kib=%.1f",
			unsharded.Took.Seconds(), r.Took.Seconds(), r.Batches, r.ShardSize, r.MaxConcurrency, float64(r.Largest)/1024)
	}
}
