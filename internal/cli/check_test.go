package cli

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

// TestCheckUsage: refused before anything is called, exit ExitUsage, and the
// message names the bad value and says what is wanted.
func TestCheckUsage(t *testing.T) {
	for _, k := range []string{"SNS_TOPIC_ARN", "EVENT_BUS_NAME", "SECURITY_HUB", "ACCOUNT_ROLE_ARNS", "ORG_ROLE_NAME"} {
		t.Setenv(k, "")
	}
	const arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"bad mode", []string{"--mode", "yolo"}, "--mode"},
		{"bad output", []string{"--output", "yaml"}, `--output "yaml": want table or json`},
		{"argument", []string{"extra"}, `unexpected argument "extra"`},
		{"unknown flag", []string{"--nope"}, "flag provided but not defined: -nope"},
		{"role and organisation", []string{"--role-arn", "arn:aws:iam::111111111111:role/x", "--org-role-name", "x"}, "choose one way"},
		{"user ARN as role", []string{"--role-arn", "arn:aws:iam::111111111111:user/x"}, `"arn:aws:iam::111111111111:user/x" is not an IAM role ARN`},
		{"provider: a URL", []string{"--provider", "token.actions.githubusercontent.com"}, `--provider "token.actions.githubusercontent.com": not an IAM OIDC provider ARN; want arn:<partition>:iam::<12-digit account>:oidc-provider/<url>`},
		{"provider: a role ARN", []string{"--provider", arn, "--provider", "arn:aws:iam::123456789012:role/x"}, `--provider "arn:aws:iam::123456789012:role/x": not an IAM OIDC provider ARN`},
		{"provider: short account", []string{"--provider", "arn:aws:iam::12345:oidc-provider/idp.example"}, `--provider "arn:aws:iam::12345:oidc-provider/idp.example"`},
		{"provider: scheme in the url", []string{"--provider", "arn:aws:iam::123456789012:oidc-provider/https://idp.example"}, `--provider "arn:aws:iam::123456789012:oidc-provider/https://idp.example"`},
		{"provider: no url", []string{"--provider", "arn:aws:iam::123456789012:oidc-provider/"}, `--provider "arn:aws:iam::123456789012:oidc-provider/"`},
		{"provider: not IAM", []string{"--provider", "arn:aws:sts::123456789012:oidc-provider/idp.example"}, "not an IAM OIDC provider ARN"},
		{"bad topic", []string{"--mode", "alert", "--topic-arn", "my-topic"}, `--topic-arn "my-topic": not an SNS topic ARN`},
		{"state table too short", []string{"--state-table", "a"}, `--state-table "a": want a DynamoDB table name`},
		{"state table with a slash", []string{"--mode", "alert", "--topic-arn", "arn:aws:sns:us-east-1:123456789012:t", "--state-table", "a/b"}, `--state-table "a/b"`},
		{"organisation role with a path", []string{"--org-role-name", "a/b"}, `--org-role-name "a/b": want an IAM role name`},
		{"alert without a topic", []string{"--mode", "alert"}, "check: --mode alert publishes alerts, but no SNS topic is set: give one with --topic-arn ARN or SNS_TOPIC_ARN=ARN"},
		{"remediate without a topic", []string{"--mode", "remediate", "--provider", arn}, "check: --mode remediate publishes alerts, but no SNS topic is set: give one with --topic-arn ARN or SNS_TOPIC_ARN=ARN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut strings.Builder
			code := RunCheck(context.Background(), tt.args, &out, &errOut)
			if code != ExitUsage || !strings.Contains(errOut.String(), tt.stderr) {
				t.Errorf("check %q: exit %d, stderr %q; want %d and %q", tt.args, code, errOut.String(), ExitUsage, tt.stderr)
			}
			if out.Len() != 0 {
				t.Errorf("stdout %q, want nothing", out.String())
			}
		})
	}
}

// TestCheckHelpListsItsSettings: check --help names every variable it reads.
func TestCheckHelpListsItsSettings(t *testing.T) {
	var out, errOut strings.Builder
	if code := RunCheck(context.Background(), []string{"--help"}, &out, &errOut); code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	for _, v := range []string{"SNS_TOPIC_ARN", "STATE_TABLE", "REALERT_INTERVAL", "PROBE_FAILURES_TO_ALERT", "EXPIRY_WARNING",
		"CONCURRENCY", "PROBE_CONCURRENCY", "PROBE_TIMEOUT", "PROBE_HANDSHAKES", "ALERT_FORMAT", "EVENT_BUS_NAME", "SECURITY_HUB",
		"ACCOUNT_ROLE_ARNS", "ORG_ROLE_NAME", "ORG_INCLUDE_MANAGEMENT_ACCOUNT", "ASSUME_ROLE_EXTERNAL_ID", "ACCOUNT_CONCURRENCY"} {
		if !strings.Contains(errOut.String(), v) {
			t.Errorf("check --help does not name %s:\n%s", v, errOut.String())
		}
	}
}

// TestHelpExitCodes: every --help lists the four exit codes.
func TestHelpExitCodes(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"check", "-h"}, {"thumbprint", "--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errOut strings.Builder
			if code := Main(context.Background(), args, &out, &errOut); code != ExitOK {
				t.Fatalf("exit %d, want %d", code, ExitOK)
			}
			help := out.String() + errOut.String()
			for _, want := range []string{"exit codes:", "  0  nothing to do", "  1  could not run", "  2  usage error", "  3  problems found"} {
				if !strings.Contains(help, want) {
					t.Errorf("help lacks %q:\n%s", want, help)
				}
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	published := errors.New("publish drift alert for arn:aws:iam::123456789012:oidc-provider/a: AuthorizationError")
	updateFailed := fmt.Errorf("%w: arn:aws:iam::123456789012:oidc-provider/a: AccessDenied", drift.ErrUpdateFailed)
	accountFailed := fmt.Errorf("%w: 111111111111: assume role: AccessDenied", drift.ErrAccountFailed)
	listFailed := fmt.Errorf("%w: %w", drift.ErrListFailed, errors.New("list OIDC providers: AccessDenied"))
	tests := []struct {
		name   string
		counts map[drift.Outcome]int
		err    error
		want   int
	}{
		{"in sync, updated, skipped", map[drift.Outcome]int{drift.InSync: 3, drift.Skipped: 1, drift.Updated: 2}, nil, ExitOK},
		{"no providers", map[drift.Outcome]int{}, nil, ExitOK},
		{"drift", map[drift.Outcome]int{drift.InSync: 3, drift.Drift: 1}, nil, ExitProblems},
		{"expiring", map[drift.Outcome]int{drift.Expiring: 1}, nil, ExitProblems},
		{"probe-failed", map[drift.Outcome]int{drift.InSync: 1, drift.ProbeFailed: 1}, nil, ExitProblems},
		{"update-failed", map[drift.Outcome]int{drift.UpdateFailed: 1}, updateFailed, ExitProblems},
		{"account-failed", map[drift.Outcome]int{drift.AccountFailed: 1, drift.InSync: 2}, errors.Join(accountFailed), ExitProblems},
		{"listing failed", map[drift.Outcome]int{}, listFailed, ExitError},
		{"organisation listing failed", map[drift.Outcome]int{drift.AccountFailed: 1}, errors.Join(listFailed), ExitError},
		{"alert not delivered", map[drift.Outcome]int{drift.Drift: 1}, errors.Join(published), ExitError},
		{"alert not delivered beside a failed update", map[drift.Outcome]int{drift.UpdateFailed: 1}, errors.Join(updateFailed, published), ExitError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExitCode(&drift.Report{Counts: tt.counts}, tt.err); got != tt.want {
				t.Errorf("ExitCode(%v, %v) = %d, want %d", tt.counts, tt.err, got, tt.want)
			}
		})
	}
}

// TestWritePlanSkipped: a skipped account shows its reason, and requested
// providers no account of the run holds are shown, not dropped.
func TestWritePlanSkipped(t *testing.T) {
	const reason = "management account of the organisation, not checked from delegated administrator 222222222222"
	outside := "arn:aws:iam::999999999999:oidc-provider/idp.example"
	rep := &drift.Report{
		Mode:    "report",
		Checked: 2,
		Counts:  map[drift.Outcome]int{drift.Skipped: 2},
		Results: []drift.Result{
			{AccountID: "111111111111", Outcome: drift.Skipped, Severity: drift.SeverityNone, Detail: reason},
			{AccountID: "999999999999", ProviderARN: outside, Outcome: drift.Skipped, Severity: drift.SeverityNone, Detail: "account 999999999999 is not in this run"},
		},
		Accounts: []drift.AccountSummary{
			{AccountID: "111111111111", Skipped: reason, Checked: 0},
			{AccountID: "222222222222", Checked: 0},
		},
	}
	var b strings.Builder
	WritePlan(&b, rep)
	want := "== account 111111111111 (skipped)\n  skipped: " + reason + "\n\n" +
		"== account 222222222222 (own credentials)\n  no providers\n\n" +
		"== requested providers in no account of this run\n" + outside + "\n  decision  skipped\n  stored    -\n  live      -\n  detail    account 999999999999 is not in this run\n\n" +
		"2 accounts; 2 checked in mode report: 2 skipped\n"
	if b.String() != want {
		t.Errorf("plan:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestCheckCommand runs the built CLI against moto_server and local identity
// providers: report by default (nothing written, exit 3 on drift), remediate
// writes where safe, then exit 0 when the only remaining drift is... none.
func TestCheckCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI and runs moto_server")
	}
	ctx := context.Background()
	m := peertest.Moto(t)
	iamc := iam.NewFromConfig(m.Config())
	root, _ := testidp.NewRoot("CLI Public Root")
	inter, _ := root.Intermediate("CLI Public Intermediate")
	leaf, _ := inter.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	s, err := testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf, inter)}, Path: "/gh"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	live := testidp.Thumbprint(inter.DER)
	certFile := filepath.Join(t.TempDir(), "roots.pem")
	if err := os.WriteFile(certFile, root.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	old := strings.Repeat("0b", 20)
	outARN, err := testpeer.CreateProvider(ctx, iamc, &iam.CreateOpenIDConnectProviderInput{Url: aws.String("https://" + s.URL()), ThumbprintList: []string{old}})
	if err != nil {
		t.Fatal(err)
	}
	arn := outARN
	stored := func() string {
		o, err := iamc.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(o.ThumbprintList, " ")
	}

	bin := tpBuildCLI(t)
	env := append(m.Env(), "SSL_CERT_FILE="+certFile, "PROBE_TIMEOUT=5s")

	// Plan: the default report mode shows what it would write, writes nothing.
	plan, _ := tpRun(t, bin, env, ExitProblems, "check")
	for _, want := range []string{arn, "decision  drift (warning)", "stored    " + old, "live      " + live, "would set " + live + " " + old, "1 checked in mode report: 1 drift"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	if stored() != old {
		t.Fatal("check in report mode wrote")
	}

	// JSON output is the report.
	js, _ := tpRun(t, bin, env, ExitProblems, "check", "--output", "json", "--provider", arn)
	var rep drift.Report
	if err := json.Unmarshal([]byte(js), &rep); err != nil || rep.Checked != 1 || rep.Results[0].Outcome != drift.Drift {
		t.Fatalf("json report %v: %s", err, js)
	}

	// One jq filter reads a report's result and the thumbprint command's JSON.
	jq := peertest.Tool(t, "jq")
	filter := `(.results[0] // .) | [.url, .live_thumbprints[0], .publicly_trusted] | @tsv`
	tp, _ := tpRun(t, bin, env, ExitOK, "thumbprint", "--output", "json", s.URL())
	wantRow := s.URL() + "\t" + live + "\ttrue\n"
	for name, doc := range map[string]string{"check": js, "thumbprint": tp} {
		cmd := exec.CommandContext(t.Context(), jq, "-r", filter)
		cmd.Stdin = strings.NewReader(doc)
		row, err := cmd.Output()
		if err != nil || string(row) != wantRow {
			t.Errorf("jq %s on the %s JSON: %q %v, want %q", filter, name, row, err, wantRow)
		}
	}

	// Alert and remediate publish: without a topic they refuse to run.
	_, errOut := tpRun(t, bin, env, ExitUsage, "check", "--mode", "alert")
	if !strings.Contains(errOut, "no SNS topic is set: give one with --topic-arn ARN or SNS_TOPIC_ARN=ARN") {
		t.Errorf("alert without a topic: stderr %q", errOut)
	}
	q, err := testpeer.NewAlertQueue(ctx, m.Config(), "cli")
	if err != nil {
		t.Fatal(err)
	}
	tpRun(t, bin, append(env, "SNS_TOPIC_ARN="+q.TopicARN), ExitProblems, "check", "--mode", "alert")
	if msgs, err := q.Drain(ctx); err != nil || len(msgs) != 1 || msgs[0].Attr("outcome") != "drift" {
		t.Errorf("alert mode published %+v (%v), want one drift message", msgs, err)
	}

	// Remediate writes and publishes, then all is in sync.
	applied, _ := tpRun(t, bin, env, ExitOK, "check", "--mode", "remediate", "--topic-arn", q.TopicARN)
	if !strings.Contains(applied, "wrote     "+live+" "+old) {
		t.Errorf("remediate output:\n%s", applied)
	}
	if msgs, err := q.Drain(ctx); err != nil || len(msgs) != 1 || msgs[0].Attr("outcome") != "updated" {
		t.Errorf("remediate published %+v (%v), want one updated message", msgs, err)
	}
	if got := stored(); got != live+" "+old {
		t.Fatalf("stored after remediate = %s", got)
	}
	again, _ := tpRun(t, bin, env, ExitOK, "check")
	if !strings.Contains(again, "1 checked in mode report: 1 in-sync") {
		t.Errorf("second check:\n%s", again)
	}

	// A bad setting is an error naming it, before anything is called.
	_, errOut = tpRun(t, bin, append(env, "CONCURRENCY=100"), ExitError, "check")
	if !strings.Contains(errOut, "CONCURRENCY") {
		t.Errorf("stderr %q does not name CONCURRENCY", errOut)
	}
}

// TestCheckCommandListingFails: when the providers (or the organisation's
// accounts) cannot be listed, check says so and exits ExitError; it never
// prints an empty plan ("0 checked ... no providers").
func TestCheckCommandListingFails(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI and runs moto_server")
	}
	m := peertest.Moto(t)
	denied := map[string]bool{"ListOpenIDConnectProviders": true, "GetCallerIdentity": true}
	proxy, err := testpeer.StartFaultProxy(m.Endpoint, testpeer.ByAction(func(action string, _ int) testpeer.Fault {
		if denied[action] {
			return testpeer.AccessDenied
		}
		return testpeer.Pass
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	bin := tpBuildCLI(t)
	env := append(m.Env(), "AWS_ENDPOINT_URL="+proxy.URL)
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"providers", []string{"check"}, "check: could not list providers, nothing checked: list OIDC providers: "},
		{"providers, json", []string{"check", "--output", "json"}, "check: could not list providers, nothing checked: list OIDC providers: "},
		{"accounts", []string{"check", "--org-role-name", "thumbprint-drift-member"}, "check: could not list the accounts, nothing checked: get caller identity: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr := tpRun(t, bin, env, ExitError, tt.args...)
			if !strings.Contains(stderr, tt.stderr) || !strings.Contains(stderr, "AccessDenied") {
				t.Errorf("stderr %q, want %q and the cause", stderr, tt.stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

// TestCheckCommandRoleARN checks a member account through an assumed role.
func TestCheckCommandRoleARN(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI and runs moto_server")
	}
	ctx := context.Background()
	m := peertest.Moto(t)
	const member = "111111111111"
	roleARN := "arn:aws:iam::" + member + ":role/thumbprint-drift-member"
	cfg := m.Config()
	cfg.Credentials = accounts.Credentials(sts.NewFromConfig(m.Config()), roleARN, "")
	memberIAM := iam.NewFromConfig(cfg)
	root, _ := testidp.NewRoot("CLI Org Root")
	leaf, _ := root.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	s, err := testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf, root)}, Path: "/member"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	outARN, err := testpeer.CreateProvider(ctx, memberIAM, &iam.CreateOpenIDConnectProviderInput{Url: aws.String("https://" + s.URL()), ThumbprintList: []string{strings.Repeat("0e", 20)}})
	if err != nil {
		t.Fatal(err)
	}
	arn := outARN
	if !strings.Contains(arn, member) {
		t.Fatalf("provider %s not in the member account", arn)
	}
	plan, _ := tpRun(t, tpBuildCLI(t), append(m.Env(), "PROBE_TIMEOUT=5s"), ExitProblems, "check", "--role-arn", roleARN)
	for _, want := range []string{"== account " + member + " (" + roleARN + ")", arn, "decision  drift (critical)", "1 accounts; 1 checked in mode report: 1 drift"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
}
