package cli

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"os"
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
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

func TestCheckUsage(t *testing.T) {
	for _, args := range [][]string{{"--mode", "yolo"}, {"--output", "yaml"}, {"extra"}, {"--nope"},
		{"--role-arn", "arn:aws:iam::111111111111:role/x", "--org-role-name", "x"},
		{"--role-arn", "arn:aws:iam::111111111111:user/x"}} {
		var out, errOut strings.Builder
		if code := RunCheck(context.Background(), args, &out, &errOut); code != ExitUsage {
			t.Errorf("check %v = %d, want %d (stderr %q)", args, code, ExitUsage, errOut.String())
		}
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		counts map[drift.Outcome]int
		want   int
	}{
		{map[drift.Outcome]int{drift.InSync: 3, drift.Skipped: 1, drift.Updated: 2}, ExitOK},
		{map[drift.Outcome]int{drift.InSync: 3, drift.Drift: 1}, ExitDrift},
		{map[drift.Outcome]int{drift.Drift: 1, drift.ProbeFailed: 1}, ExitError},
		{map[drift.Outcome]int{drift.UpdateFailed: 1}, ExitError},
		{map[drift.Outcome]int{}, ExitOK},
	}
	for _, tt := range tests {
		if got := ExitCode(&drift.Report{Counts: tt.counts}); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.counts, got, tt.want)
		}
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
	out, err := iamc.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: aws.String("https://" + s.URL()), ThumbprintList: []string{old}})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.OpenIDConnectProviderArn)
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
	plan, _ := tpRun(t, bin, env, ExitDrift, "check")
	for _, want := range []string{arn, "decision  drift (warning)", "stored    " + old, "live      " + live, "would set " + live + " " + old, "1 checked in mode report: 1 drift"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	if stored() != old {
		t.Fatal("check in report mode wrote")
	}

	// JSON output is the report.
	js, _ := tpRun(t, bin, env, ExitDrift, "check", "--output", "json", "--provider", arn)
	var rep drift.Report
	if err := json.Unmarshal([]byte(js), &rep); err != nil || rep.Checked != 1 || rep.Results[0].Outcome != drift.Drift {
		t.Fatalf("json report %v: %s", err, js)
	}

	// Remediate writes (no topic: alerts logged only), then all is in sync.
	applied, _ := tpRun(t, bin, env, ExitOK, "check", "--mode", "remediate")
	if !strings.Contains(applied, "wrote     "+live+" "+old) {
		t.Errorf("remediate output:\n%s", applied)
	}
	if got := stored(); got != live+" "+old {
		t.Fatalf("stored after remediate = %s", got)
	}
	again, _ := tpRun(t, bin, env, ExitOK, "check")
	if !strings.Contains(again, "1 checked in mode report: 1 in-sync") {
		t.Errorf("second check:\n%s", again)
	}

	// A bad setting is an error naming it, before anything is called.
	_, errOut := tpRun(t, bin, append(env, "CONCURRENCY=100"), ExitError, "check")
	if !strings.Contains(errOut, "CONCURRENCY") {
		t.Errorf("stderr %q does not name CONCURRENCY", errOut)
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
	out, err := memberIAM.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: aws.String("https://" + s.URL()), ThumbprintList: []string{strings.Repeat("0e", 20)}})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.OpenIDConnectProviderArn)
	if !strings.Contains(arn, member) {
		t.Fatalf("provider %s not in the member account", arn)
	}
	plan, _ := tpRun(t, tpBuildCLI(t), append(m.Env(), "PROBE_TIMEOUT=5s"), ExitDrift, "check", "--role-arn", roleARN)
	for _, want := range []string{"== account " + member + " (" + roleARN + ")", arn, "decision  drift (critical)", "1 accounts; 1 checked in mode report: 1 drift"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
}
