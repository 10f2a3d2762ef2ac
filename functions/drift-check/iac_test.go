package main_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

// iacWorld is moto (IAM, SNS, SQS, DynamoDB), an alert topic read back
// through SQS, a state table, and one publicly trusted identity provider
// serving one issuer path per provider: every provider storing only old has
// drifted, and remediate would replace its list with [live, old].
type iacWorld struct {
	t         *testing.T
	ctx       context.Context
	m         *testpeer.Moto
	q         *testpeer.AlertQueue
	iam       *iam.Client
	idp       *testidp.Server
	live, old string
	certFile  string
}

const iacStateTable = "drift-state"

func newIACWorld(t *testing.T, paths ...string) *iacWorld {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the function binary")
	}
	w := &iacWorld{t: t, ctx: context.Background(), m: peertest.Moto(t), old: strings.Repeat("0a", 20)}
	var err error
	if w.q, err = testpeer.NewAlertQueue(w.ctx, w.m.Config(), "drift-iac"); err != nil {
		t.Fatal(err)
	}
	if err := testpeer.CreateStateTable(w.ctx, w.m.Config(), iacStateTable); err != nil {
		t.Fatal(err)
	}
	w.iam = iam.NewFromConfig(w.m.Config())
	root, _ := testidp.NewRoot("IaC Public Root")
	inter, _ := root.Intermediate("IaC Public Intermediate")
	w.certFile = filepath.Join(t.TempDir(), "roots.pem")
	if err := os.WriteFile(w.certFile, root.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	leaf, err := inter.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if w.idp, err = testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf, inter)}, Path: paths[0], Paths: paths[1:]}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.idp.Close() })
	w.live = testidp.Thumbprint(inter.DER)
	return w
}

// create makes the provider of path storing [old], with tags.
func (w *iacWorld) create(path string, tags map[string]string) string {
	w.t.Helper()
	in := &iam.CreateOpenIDConnectProviderInput{Url: aws.String("https://" + w.idp.Host() + path), ThumbprintList: []string{w.old},
		ClientIDList: []string{"sts.amazonaws.com"}}
	for k, v := range tags {
		in.Tags = append(in.Tags, iamtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	arn, err := testpeer.CreateProvider(w.ctx, w.iam, in)
	if err != nil {
		w.t.Fatal(err)
	}
	return arn
}

// set writes list to the provider, as another writer would.
func (w *iacWorld) set(arn string, list ...string) {
	w.t.Helper()
	if _, err := w.iam.UpdateOpenIDConnectProviderThumbprint(w.ctx, &iam.UpdateOpenIDConnectProviderThumbprintInput{
		OpenIDConnectProviderArn: aws.String(arn), ThumbprintList: list}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *iacWorld) stored(arn string) string {
	w.t.Helper()
	out, err := w.iam.GetOpenIDConnectProvider(w.ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
	if err != nil {
		w.t.Fatal(err)
	}
	return strings.Join(out.ThumbprintList, ",")
}

// env is the function's environment, with the state table unless stateless.
func (w *iacWorld) env(stateless bool) []string {
	env := append(os.Environ(), w.m.Env()...)
	env = append(env, "SSL_CERT_FILE="+w.certFile, "SNS_TOPIC_ARN="+w.q.TopicARN, "PROBE_TIMEOUT=5s",
		"AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_FUNCTION_NAME="+ownFunction, "PROBE_FAILURES_TO_ALERT=1")
	if !stateless {
		env = append(env, "STATE_TABLE="+iacStateTable)
	}
	return env
}

// drain returns the messages published since the last drain.
func (w *iacWorld) drain() []testpeer.Delivered {
	w.t.Helper()
	msgs, err := w.q.Drain(w.ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	return msgs
}

// stateItem is the provider's item in the state table (nil: none).
func (w *iacWorld) stateItem(arn string) map[string]dbtypes.AttributeValue {
	w.t.Helper()
	out, err := dynamodb.NewFromConfig(w.m.Config()).GetItem(w.ctx, &dynamodb.GetItemInput{TableName: aws.String(iacStateTable),
		Key: map[string]dbtypes.AttributeValue{"pk": &dbtypes.AttributeValueMemberS{Value: arn}}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		w.t.Fatal(err)
	}
	return out.Item
}

// apply runs the schedule, which must replace arn's list with [live, old],
// and drains its message.
func (w *iacWorld) apply(fn *function, arn string) {
	w.t.Helper()
	if got := invokeIAC(w.t, fn, event(w.t, "scheduled.json"))[arn]; got.Outcome != "updated" || w.stored(arn) != w.live+","+w.old {
		w.t.Fatalf("the schedule: %+v, stored %s; want updated to [live, old]", got, w.stored(arn))
	}
	w.drain()
}

// staysReverted runs the schedule twice after a revert: each finds arn
// reverted, sends nothing and writes nothing.
func (w *iacWorld) staysReverted(fn *function, arn string) {
	w.t.Helper()
	for run := range 2 {
		got := invokeIAC(w.t, fn, event(w.t, "scheduled.json"))[arn]
		if got.Outcome != "reverted" || got.Transition != "" || w.stored(arn) != w.old {
			w.t.Errorf("schedule %d after the revert: %+v, stored %s; want reverted, silent, not written", run+1, got, w.stored(arn))
		}
		if msgs := w.drain(); len(msgs) != 0 {
			w.t.Errorf("schedule %d after the revert: %d messages", run+1, len(msgs))
		}
	}
}

// resolvedBy invokes fn with payload after the code was fixed: arn is in
// sync and resolved, in one message.
func (w *iacWorld) resolvedBy(fn *function, payload []byte, arn string) {
	w.t.Helper()
	if got := invokeIAC(w.t, fn, payload)[arn]; got.Outcome != "in-sync" || got.Transition != "resolved" {
		w.t.Errorf("code fixed: %+v, want in-sync resolved", got)
	}
	if msgs := w.drain(); len(msgs) != 1 || msgs[0].Attr("transition") != "resolved" {
		w.t.Errorf("code fixed: %d messages, want one resolved", len(msgs))
	}
}

// writerEvent is the sample CloudTrail event name, naming arn, setting list
// (a create or thumbprint update), made now.
func writerEvent(t *testing.T, name, arn string, list ...string) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(withProvider(t, name, arn), &ev); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Format(time.RFC3339)
	ev["time"] = now
	detail := ev["detail"].(map[string]any)
	detail["eventTime"] = now
	if rp, ok := detail["requestParameters"].(map[string]any); ok && list != nil {
		rp["thumbprintList"] = list
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// iacResult is a result as the report and the message JSON carry it.
type iacResult struct {
	ProviderARN string `json:"provider_arn"`
	Outcome     string `json:"outcome"`
	Severity    string `json:"severity"`
	Transition  string `json:"transition"`
	Detail      string `json:"detail"`
	ManagedBy   string `json:"managed_by"`
	CodeFix     string `json:"code_fix"`
	Fix         string `json:"fix"`
	LastWriter  *struct {
		Tool      string `json:"tool"`
		Principal string `json:"principal"`
		At        string `json:"at"`
	} `json:"last_writer"`
	NewThumbprints []string `json:"new_thumbprints"`
}

// invokeIAC invokes fn with payload and returns its results by provider.
func invokeIAC(t *testing.T, fn *function, payload []byte) map[string]iacResult {
	t.Helper()
	res := fn.invoke(t, payload)
	if res.Error != nil {
		t.Fatalf("invocation failed: %+v\n%s", res.Error, fn.out.String())
	}
	return iacResults(t, res.Response)
}

func iacResults(t *testing.T, response []byte) map[string]iacResult {
	t.Helper()
	var rep struct {
		Results []iacResult `json:"results"`
	}
	if err := json.Unmarshal(response, &rep); err != nil {
		t.Fatalf("report %s: %v", response, err)
	}
	out := map[string]iacResult{}
	for _, r := range rep.Results {
		out[r.ProviderARN] = r
	}
	return out
}

// messageResult is the one result of the one message of msgs about arn.
func messageResult(t *testing.T, msgs []testpeer.Delivered, arn string) (testpeer.Delivered, iacResult) {
	t.Helper()
	for _, m := range msgs {
		for _, r := range m.Results() {
			if r["provider_arn"] != arn {
				continue
			}
			b, _ := json.Marshal(r)
			var res iacResult
			if err := json.Unmarshal(b, &res); err != nil {
				t.Fatal(err)
			}
			return m, res
		}
	}
	t.Fatalf("no message about %s among %d", arn, len(msgs))
	return testpeer.Delivered{}, iacResult{}
}

// TestBootstrapIaCWriters: each tool's CloudTrail event reaches the real
// function naming a drifted provider. A provider last written by Terraform,
// Pulumi, CloudFormation or eksctl is owned by code: not written, its drift
// alerted with managed_by, last_writer and the change to make in the code; a
// provider last written from the console or the CLI is not owned, and is
// remediated. The next scheduled run reads the writer from the state table.
func TestBootstrapIaCWriters(t *testing.T) {
	tools := []struct {
		event, tool string
		owned       bool
		codeFix     string // in code_fix; "%s" the live thumbprint, then old
	}{
		{"cloudtrail-update-thumbprint.json", "terraform", true, `thumbprint_list = ["%s", "%s"]`},
		{"cloudtrail-update-pulumi.json", "pulumi", true, `thumbprintLists: ["%s", "%s"]`},
		{"cloudtrail-update-cloudformation.json", "cloudformation", true, "ThumbprintList:\n  - \"%s\"\n  - \"%s\""},
		{"cloudtrail-create-eksctl.json", "eksctl", true, "aws iam update-open-id-connect-provider-thumbprint --open-id-connect-provider-arn ARN --thumbprint-list %s %s"},
		{"cloudtrail-update-console.json", "console", false, ""},
		{"cloudtrail-create.json", "cli", false, ""},
	}
	paths := make([]string, len(tools))
	for i, tt := range tools {
		paths[i] = "/" + tt.tool
	}
	w := newIACWorld(t, paths...)
	arns := make([]string, len(tools))
	for i := range tools {
		arns[i] = w.create(paths[i], nil)
	}
	fn := startFunction(t, buildBootstrap(t), w.env(false))

	for i, tt := range tools {
		t.Run(tt.tool, func(t *testing.T) {
			arn := arns[i]
			got := invokeIAC(t, fn, writerEvent(t, tt.event, arn, w.old))[arn]
			if got.LastWriter == nil || got.LastWriter.Tool != tt.tool || got.LastWriter.Principal == "" || got.LastWriter.At == "" {
				t.Errorf("last_writer = %+v, want %s with principal and time", got.LastWriter, tt.tool)
			}
			msgs := w.drain()
			if len(msgs) != 1 {
				t.Fatalf("%d messages, want 1", len(msgs))
			}
			_, inMsg := messageResult(t, msgs, arn)
			if !tt.owned {
				if got.Outcome != "updated" || got.ManagedBy != "" || got.CodeFix != "" {
					t.Errorf("result %+v, want updated and not owned by code", got)
				}
				if s := w.stored(arn); s != w.live+","+w.old {
					t.Errorf("stored %s, want the function's list", s)
				}
				return
			}
			want := strings.ReplaceAll(tt.codeFix, "ARN", arn)
			want = strings.Replace(strings.Replace(want, "%s", w.live, 1), "%s", w.old, 1)
			if got.Outcome != "drift" || got.ManagedBy != tt.tool || got.CodeFix != want || !strings.Contains(got.Detail, "owned by code") {
				t.Errorf("result %+v, want drift managed by %s, code_fix %q, a detail saying why", got, tt.tool, want)
			}
			if inMsg.ManagedBy != tt.tool || inMsg.CodeFix != want || inMsg.LastWriter == nil || inMsg.LastWriter.Tool != tt.tool {
				t.Errorf("message result %+v lacks managed_by, code_fix or last_writer", inMsg)
			}
			if s := w.stored(arn); s != w.old {
				t.Errorf("stored %s: a provider owned by code was written", s)
			}
		})
	}

	t.Run("the schedule remembers the writers", func(t *testing.T) {
		got := invokeIAC(t, fn, event(t, "scheduled.json"))
		for i, tt := range tools {
			r := got[arns[i]]
			switch {
			case tt.owned && (r.Outcome != "drift" || r.ManagedBy != tt.tool || r.LastWriter == nil || r.LastWriter.Tool != tt.tool || r.Transition != ""):
				t.Errorf("%s: %+v, want drift managed by %s from the state, silent", tt.tool, r, tt.tool)
			case !tt.owned && (r.Outcome != "in-sync" || r.ManagedBy != ""):
				t.Errorf("%s: %+v, want in-sync, not owned", tt.tool, r)
			}
		}
		if msgs := w.drain(); len(msgs) != 0 {
			t.Errorf("%d messages from a run that found the same problems", len(msgs))
		}
	})
}

// TestBootstrapIaCRevertByCloudTrail: the function applies; Terraform sets
// the list back and CloudTrail brings its event. The function reports
// reverted once, naming Terraform, its principal and the list to put in the
// code, and never writes the provider again; when the code holds the live
// thumbprint, the provider is resolved.
func TestBootstrapIaCRevertByCloudTrail(t *testing.T) {
	w := newIACWorld(t, "/tf")
	arn := w.create("/tf", nil)
	fn := startFunction(t, buildBootstrap(t), w.env(false))
	w.apply(fn, arn)

	w.set(arn, w.old) // terraform apply
	got := invokeIAC(t, fn, writerEvent(t, "cloudtrail-update-thumbprint.json", arn, w.old))[arn]
	wantFix := `thumbprint_list = ["` + w.live + `", "` + w.old + `"]`
	if got.Outcome != "reverted" || got.Severity != "warning" || got.Transition != "new" || got.ManagedBy != "terraform" || got.CodeFix != wantFix {
		t.Errorf("revert: %+v, want reverted (warning) new, managed by terraform, code_fix %s", got, wantFix)
	}
	const principal = "arn:aws:sts::123456789012:assumed-role/terraform-deploy/GitHubActions"
	if got.LastWriter == nil || got.LastWriter.Tool != "terraform" || got.LastWriter.Principal != principal {
		t.Errorf("last_writer %+v, want terraform %s", got.LastWriter, principal)
	}
	for _, s := range []string{"terraform", principal, "[" + w.live + " " + w.old + "]"} {
		if !strings.Contains(got.Detail, s) {
			t.Errorf("detail %q does not name %s", got.Detail, s)
		}
	}
	if s := w.stored(arn); s != w.old {
		t.Errorf("stored %s after the revert: the function fought the code", s)
	}
	msgs := w.drain()
	if len(msgs) != 1 || msgs[0].Attr("outcome") != "reverted" || msgs[0].Attr("transition") != "new" {
		t.Fatalf("%d messages %+v, want one new reverted", len(msgs), msgs)
	}
	if _, r := messageResult(t, msgs, arn); r.CodeFix != wantFix || r.ManagedBy != "terraform" {
		t.Errorf("message result %+v, want code_fix and managed_by", r)
	}

	w.staysReverted(fn, arn)

	// The code is fixed: terraform apply writes the list the alert gave.
	w.set(arn, w.live, w.old)
	w.resolvedBy(fn, writerEvent(t, "cloudtrail-update-thumbprint.json", arn, w.live, w.old), arn)
	if got := invokeIAC(t, fn, event(t, "scheduled.json"))[arn]; got.Outcome != "in-sync" || got.Transition != "" {
		t.Errorf("schedule after the fix: %+v, want in-sync, silent", got)
	}
	if msgs := w.drain(); len(msgs) != 0 {
		t.Errorf("schedule after the fix: %d messages", len(msgs))
	}
}

// TestBootstrapIaCRevertBySchedule: the function applies, its own update's
// CloudTrail events come back (never a writer), and the list is set back
// with no event seen: the schedule finds it reverted, by an unknown writer,
// once; later schedules are silent and never write; the fix resolves it.
func TestBootstrapIaCRevertBySchedule(t *testing.T) {
	w := newIACWorld(t, "/p")
	arn := w.create("/p", nil)
	fn := startFunction(t, buildBootstrap(t), w.env(false))
	w.apply(fn, arn)
	// The function's own update, through its execution role and through a member role.
	own := writerEvent(t, "cloudtrail-own-update.json", arn, w.live, w.old)
	var member map[string]any
	_ = json.Unmarshal(own, &member)
	id := member["detail"].(map[string]any)["userIdentity"].(map[string]any)
	id["arn"] = "arn:aws:sts::123456789012:assumed-role/thumbprint-drift-member/thumbprint-drift"
	id["principalId"] = "AROA2EXAMPLEMEMBER001:thumbprint-drift"
	memberEvent, _ := json.Marshal(member)
	for _, ev := range [][]byte{own, memberEvent} {
		if got := invokeIAC(t, fn, ev); len(got) != 0 {
			t.Errorf("own update checked: %+v", got)
		}
	}
	if it := w.stateItem(arn); it["writer"] != nil {
		t.Errorf("the function's own update was recorded as a writer: %v", it["writer"])
	}

	w.set(arn, w.old) // set back; no CloudTrail event reaches the function
	got := invokeIAC(t, fn, event(t, "scheduled.json"))[arn]
	if got.Outcome != "reverted" || got.Transition != "new" || got.ManagedBy != "unknown" || !strings.Contains(got.Detail, "unknown") {
		t.Errorf("revert seen by the schedule: %+v, want reverted new by an unknown writer", got)
	}
	if got.CodeFix == "" || !strings.Contains(got.CodeFix, "aws iam update-open-id-connect-provider-thumbprint") {
		t.Errorf("code_fix %q, want the CLI command for unknown code", got.CodeFix)
	}
	if msgs := w.drain(); len(msgs) != 1 || msgs[0].Attr("outcome") != "reverted" {
		t.Errorf("%d messages, want one reverted", len(msgs))
	}
	w.staysReverted(fn, arn)
	w.set(arn, w.live)
	w.resolvedBy(fn, event(t, "scheduled.json"), arn)
}

// TestBootstrapIaCDeclaredOwner: a provider tagged managed-by is not written
// in remediate, with or without a state table; tagged mode=remediate as well,
// it is written; an untagged one is written.
func TestBootstrapIaCDeclaredOwner(t *testing.T) {
	for _, stateless := range []bool{true, false} {
		name := "state table"
		if stateless {
			name = "no state table"
		}
		t.Run(name, func(t *testing.T) {
			w := newIACWorld(t, "/declared", "/remediate", "/untagged")
			declared := w.create("/declared", map[string]string{"thumbprint-drift:managed-by": "CloudFormation"})
			remediate := w.create("/remediate", map[string]string{"thumbprint-drift:managed-by": "terraform", "thumbprint-drift:mode": "remediate"})
			untagged := w.create("/untagged", nil)
			fn := startFunction(t, buildBootstrap(t), w.env(stateless))
			got := invokeIAC(t, fn, event(t, "scheduled.json"))

			d := got[declared]
			wantFix := "ThumbprintList:\n  - \"" + w.live + "\"\n  - \"" + w.old + "\""
			if d.Outcome != "drift" || d.ManagedBy != "cloudformation" || d.CodeFix != wantFix || !strings.Contains(d.Detail, "thumbprint-drift:managed-by") {
				t.Errorf("declared owner: %+v, want drift managed by cloudformation with its code_fix", d)
			}
			if s := w.stored(declared); s != w.old {
				t.Errorf("declared owner written: %s", s)
			}
			if r := got[remediate]; r.Outcome != "updated" || r.ManagedBy != "terraform" || w.stored(remediate) != w.live+","+w.old {
				t.Errorf("explicit mode=remediate: %+v, stored %s; want updated", r, w.stored(remediate))
			}
			if r := got[untagged]; r.Outcome != "updated" || r.ManagedBy != "" {
				t.Errorf("untagged: %+v, want updated, not owned", r)
			}
			msgs := w.drain()
			if m, r := messageResult(t, msgs, declared); m.Attr("outcome") != "drift" || r.CodeFix != wantFix {
				t.Errorf("declared owner's message: %s %+v", m.Attr("outcome"), r)
			}
		})
	}
}

// TestBootstrapIaCConcurrentRevert: two invocations at once find the same
// revert: one message between them, and neither writes.
func TestBootstrapIaCConcurrentRevert(t *testing.T) {
	w := newIACWorld(t, "/race")
	arn := w.create("/race", nil)
	bin := buildBootstrap(t)
	fns := []*function{startFunction(t, bin, w.env(false)), startFunction(t, bin, w.env(false))}
	w.apply(fns[0], arn)
	w.set(arn, w.old)

	payload := event(t, "scheduled.json")
	outcomes := make([]string, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			res, err := fn.rt.Invoke(ctx, payload, 30*time.Second)
			switch {
			case err != nil:
				outcomes[i] = "invoke: " + err.Error()
			case res.Error != nil:
				outcomes[i] = "error: " + res.ErrorMessage()
			default:
				var rep struct {
					Results []iacResult `json:"results"`
				}
				_ = json.Unmarshal(res.Response, &rep)
				for _, r := range rep.Results {
					outcomes[i] = r.Outcome
				}
			}
		}()
	}
	wg.Wait()
	if !slices.Equal(outcomes, []string{"reverted", "reverted"}) {
		t.Errorf("outcomes %v, want reverted twice\n%s\n%s", outcomes, fns[0].out.String(), fns[1].out.String())
	}
	if msgs := w.drain(); len(msgs) != 1 || msgs[0].Attr("outcome") != "reverted" {
		t.Errorf("%d messages, want one reverted", len(msgs))
	}
	if s := w.stored(arn); s != w.old {
		t.Errorf("stored %s: written after the revert", s)
	}
}
