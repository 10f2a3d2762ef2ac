package shard_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
	"github.com/thumbprint-drift/thumbprint-drift/internal/rehearsal"
	"github.com/thumbprint-drift/thumbprint-drift/internal/shard"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/fleet"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

// The sharded world of the end-to-end test: the management account (checked
// with the function's own credentials) and 59 members, each holding the same
// 2 provider Urls on 2 hosts, the second host's stale in every account (the
// shared drift: 60 providers), in batches of 20.
const (
	e2eMembers   = 59
	e2eShardSize = 20
	e2eFunction  = "thumbprint-drift-drift-check"
	e2eRole      = "thumbprint-drift-member"
)

// e2eWorld is moto executing state machines, the organisation, and the
// real function binary answering Lambda's Invoke.
type e2eWorld struct {
	sf         *testpeer.StepFunctions
	org        *fleet.Org
	sfn        *sfn.Client
	iam        *iam.Client
	definition string
	roleARN    string
	drifted    []string // the shared drift's provider ARNs, every account
	runs       int
}

func startE2E(t *testing.T) *e2eWorld {
	t.Helper()
	if testing.Short() {
		t.Skip("starts moto_server, an organisation and the function")
	}
	ctx := context.Background()
	dir := t.TempDir()
	root, err := testpeer.ModuleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	transformed, err := rehearsal.Transform(ctx, root, rehearsal.CentralTemplate, "s3://code/bootstrap.zip",
		map[string]string{"OrgRoleName": e2eRole, "ShardSize": fmt.Sprint(e2eShardSize)})
	if errors.Is(err, testpeer.ErrMissing) {
		peertest.Missing(t, "aws-sam-translator (python3)")
	}
	if err != nil {
		t.Fatal(err)
	}
	w := &e2eWorld{}
	fnARN := "arn:aws:lambda:" + testpeer.Region + ":" + testpeer.AccountID + ":function:" + e2eFunction
	// The template's own definition, substituted as CloudFormation does with
	// its defaults (ShardMaxConcurrency 10, ShardToleratedFailurePercentage 0).
	if w.definition, err = rehearsal.StateMachineDefinition(transformed, "DriftCheckStateMachine", map[string]string{
		"Partition": "aws", "FunctionArn": fnARN, "MaxConcurrency": "10", "ToleratedFailurePercentage": "0",
	}); err != nil {
		t.Fatal(err)
	}

	w.sf, err = testpeer.StartStepFunctions(ctx, nil)
	if errors.Is(err, testpeer.ErrMissing) {
		peertest.Missing(t, "moto_server")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.sf.Close)
	ca, err := testidp.NewRoot("Shard E2E Root")
	if err != nil {
		t.Fatal(err)
	}
	w.org, err = fleet.StartOrg(ctx, w.sf.Moto, ca, fleet.OrgSpec{
		Members: e2eMembers, Fleet: fleet.Spec{Providers: 2, Hosts: 2, Drifted: fleet.LastHost(2)}, Parallel: 8,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.org.Close)
	own, err := w.org.Seed(ctx, w.sf.Moto, []string{testpeer.AccountID}, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, arns := range append(own, w.org.ARNs...) {
		w.drifted = append(w.drifted, arns[1])
	}

	cfg := w.sf.Moto.Config()
	const bucket, table = "thumbprint-drift-shardbucket-e2e", "thumbprint-drift-state-e2e"
	if _, err := s3.NewFromConfig(cfg).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	if err := testpeer.CreateStateTable(ctx, cfg, table); err != nil {
		t.Fatal(err)
	}
	trust, err := testpeer.TrustStore(dir, ca.PEM())
	if err != nil {
		t.Fatal(err)
	}
	vars := slices.Concat(trust, w.org.Env(), []string{
		"AWS_LAMBDA_FUNCTION_NAME=" + e2eFunction, "ORG_ROLE_NAME=" + e2eRole, "DRIFT_MODE=alert",
		"STATE_TABLE=" + table, "SHARD_BUCKET=" + bucket, fmt.Sprintf("SHARD_SIZE=%d", e2eShardSize),
	})
	env, err := testpeer.FunctionEnv(w.sf.Moto, dir, vars...)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bootstrap")
	if err := testpeer.BuildFunction(ctx, root, bin, "-trimpath"); err != nil {
		t.Fatal(err)
	}
	// As Lambda runs concurrent invocations: one process per batch in flight.
	pool, err := testpeer.StartFunctionPool(ctx, bin, dir, env, 3, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out := pool.Output()
			t.Logf("function output:\n%s", lastLines(out, 40))
			// Each step's summary, whichever process ran it (the output
			// is the processes' one after another).
			for _, l := range strings.Split(string(out), "\n") {
				if strings.Contains(l, `"sharded run planned"`) || strings.Contains(l, `"batch checked"`) || strings.Contains(l, `"sharded run finished"`) ||
					strings.Contains(l, `"level":"ERROR"`) {
					t.Logf("step: %.600s", l)
				}
			}
		}
		pool.Stop()
	})
	w.sf.SetInvoker(pool)

	fcfg := cfg
	fcfg.BaseEndpoint = aws.String(w.sf.URL)
	w.sfn, w.iam = sfn.NewFromConfig(fcfg), iam.NewFromConfig(cfg)
	role, err := w.iam.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("thumbprint-drift-states"),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"states.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	w.roleARN = aws.ToString(role.Role.Arn)
	return w
}

// e2eRun is one execution: how it ended, the invocations it made and the
// messages it sent.
type e2eRun struct {
	testpeer.Execution
	calls    []testpeer.LambdaCall
	messages []testpeer.Delivered
	steps    map[string]int // invocations by step
	largest  int            // the largest payload or answer between states, bytes
}

func (w *e2eWorld) run(t *testing.T) e2eRun {
	t.Helper()
	ctx := context.Background()
	before := len(w.sf.Calls())
	w.runs++
	ex, err := testpeer.RunStateMachine(ctx, w.sfn, fmt.Sprintf("thumbprint-drift-shards-%d", w.runs), w.definition, w.roleARN, "{}", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	r := e2eRun{Execution: ex, calls: w.sf.Calls()[before:], steps: map[string]int{}, largest: testpeer.CompactSize([]byte(ex.Output))}
	for _, c := range r.calls {
		for _, step := range []string{"plan", "check", "notify"} {
			if strings.Contains(string(c.Payload), `"shard":"`+step+`"`) || strings.Contains(string(c.Payload), `"shard": "`+step+`"`) {
				r.steps[step]++
			}
		}
		r.largest = max(r.largest, testpeer.CompactSize(c.Payload), testpeer.CompactSize(c.Response))
	}
	if r.messages, err = w.org.Alerts.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	// Every state's data stays far under the 256 KiB Step Functions passes.
	if r.largest > shard.DefaultMaxReportBytes {
		t.Errorf("a state passed %d bytes, more than %d", r.largest, shard.DefaultMaxReportBytes)
	}
	return r
}

// sentOnce checks that the run sent exactly one message, with transition,
// listing every provider of want once and no other, whatever their batch.
func sentOnce(t *testing.T, r e2eRun, transition string, want []string) {
	t.Helper()
	if len(r.messages) != 1 {
		var subjects []string
		for _, m := range r.messages {
			subjects = append(subjects, m.Subject)
		}
		t.Errorf("%d messages %q, want one for the shared %s", len(r.messages), subjects, transition)
	}
	seen := map[string]int{}
	for _, m := range r.messages {
		if got := m.Attr("transition"); got != transition {
			t.Errorf("message %q has transition %q, want %q", m.Subject, got, transition)
		}
		for _, arn := range m.ProviderARNs() {
			seen[arn]++
		}
	}
	for _, arn := range want {
		if seen[arn] != 1 {
			t.Errorf("%s sent %d times, want once", arn, seen[arn])
		}
		delete(seen, arn)
	}
	for arn, n := range seen {
		t.Errorf("%s sent %d times, want never", arn, n)
	}
}

func TestShardedRunEndToEnd(t *testing.T) {
	start := time.Now()
	w := startE2E(t)
	t.Logf("world: %d accounts, %d drifted providers, ready in %s", e2eMembers+1, len(w.drifted), time.Since(start).Round(time.Millisecond))
	wantSteps := map[string]int{"plan": 1, "check": (e2eMembers + 1 + e2eShardSize - 1) / e2eShardSize, "notify": 1}

	// 1. The shared drift of 60 accounts in 3 batches.
	r1 := w.run(t)
	if r1.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("run 1: %s %s %s", r1.Status, r1.Error, r1.Cause)
	}
	if fmt.Sprint(r1.steps) != fmt.Sprint(wantSteps) || len(r1.calls) != 5 {
		t.Errorf("run 1 invoked %v (%d calls), want %v", r1.steps, len(r1.calls), wantSteps)
	}
	sentOnce(t, r1, "new", w.drifted)
	t.Logf("run 1: %s in %s, invocations %v, %d messages, largest state payload %d bytes", r1.Status, r1.Took.Round(time.Millisecond), r1.steps, len(r1.messages), r1.largest)

	// 2. Nothing changed: silent.
	r2 := w.run(t)
	if r2.Status != sfntypes.ExecutionStatusSucceeded || fmt.Sprint(r2.steps) != fmt.Sprint(wantSteps) {
		t.Fatalf("run 2: %s %s, invocations %v", r2.Status, r2.Cause, r2.steps)
	}
	if len(r2.messages) != 0 {
		t.Errorf("run 2 sent %d messages, want none: %q", len(r2.messages), r2.messages[0].Subject)
	}
	t.Logf("run 2: %s in %s, invocations %v, silent", r2.Status, r2.Took.Round(time.Millisecond), r2.steps)

	// 3. The drift is fixed everywhere; the first batch's invocation fails
	// after the function did its work (its process dies before answering).
	// The Map retries it; every resolved goes out once.
	ctx := context.Background()
	live := w.org.Fleet.Hosts[1].Thumbprint
	for _, arn := range w.drifted {
		c := iam.NewFromConfig(w.sf.Moto.Config(), func(o *iam.Options) {
			o.APIOptions = append(o.APIOptions, testpeer.AsAccount(accounts.AccountOf(arn)))
		})
		if _, err := c.UpdateOpenIDConnectProviderThumbprint(ctx, &iam.UpdateOpenIDConnectProviderThumbprintInput{
			OpenIDConnectProviderArn: aws.String(arn), ThumbprintList: []string{live}}); err != nil {
			t.Fatal(err)
		}
	}
	var failed atomic.Bool
	w.sf.Intercept(func(_ int, c testpeer.LambdaCall) *testpeer.FunctionError {
		if strings.Contains(string(c.Payload), `"check"`) && !failed.Swap(true) {
			return &testpeer.FunctionError{ErrorType: "Runtime.ExitError", ErrorMessage: "RequestId: x Error: Runtime exited with error: signal: killed"}
		}
		return nil
	})
	r3 := w.run(t)
	w.sf.Intercept(nil)
	if r3.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("run 3: %s %s %s", r3.Status, r3.Error, r3.Cause)
	}
	wantSteps["check"]++
	if fmt.Sprint(r3.steps) != fmt.Sprint(wantSteps) {
		t.Errorf("run 3 invoked %v, want %v (one batch retried)", r3.steps, wantSteps)
	}
	sentOnce(t, r3, "resolved", w.drifted)
	t.Logf("run 3: %s in %s, invocations %v (one batch failed once), %d messages, largest state payload %d bytes",
		r3.Status, r3.Took.Round(time.Millisecond), r3.steps, len(r3.messages), r3.largest)
	t.Logf("end to end: %s", time.Since(start).Round(time.Millisecond))
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
