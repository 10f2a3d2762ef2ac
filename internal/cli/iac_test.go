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
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/thumbprint-drift/thumbprint-drift/internal/iac"
	"github.com/thumbprint-drift/thumbprint-drift/internal/state"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

// TestOwnedByCodeCLI runs the built CLI against moto_server (IAM and the
// state table) and a local identity provider, over two drifted providers
// owned by code: one whose last writer the state table recorded
// (Terraform), one tagged managed-by=pulumi.
//   - check's plan prints who manages each, the last writer and the change
//     to make in the code; --output json carries managed_by, last_writer and
//     code_fix;
//   - stage refuses to write them (exit 3), printing the code change, unless
//     --force; a dry run shows the change and exits 0.
func TestOwnedByCodeCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI and runs moto_server")
	}
	ctx := context.Background()
	const table = "iac-state"
	sw := newStageWorld(t, table, "IaC CLI Root")
	inter, _ := sw.root.Intermediate("IaC CLI Intermediate")
	leaf, _ := inter.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	s, err := testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf, inter)}, Path: "/tf", Paths: []string{"/pulumi"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	live, old, next := testidp.Thumbprint(inter.DER), strings.Repeat("0b", 20), strings.Repeat("ce", 20)
	create := func(path string, tags ...iamtypes.Tag) (string, func() string) {
		return sw.create(s.Host()+path, []string{old}, tags...)
	}
	tfARN, tfStored := create("/tf")
	puARN, puStored := create("/pulumi", iamtypes.Tag{Key: aws.String(iac.TagManagedBy), Value: aws.String("pulumi")})
	const principal = "arn:aws:sts::123456789012:assumed-role/terraform-deploy/GitHubActions"
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	if err := sw.st.Save(ctx, state.Item{Key: tfARN}, state.Item{Key: tfARN, Writer: &iac.Writer{Tool: iac.Terraform, Principal: principal, At: at,
		UserAgent: "APN/1.0 HashiCorp/1.0 Terraform/1.10.5 terraform-provider-aws/5.84.0", EventName: "UpdateOpenIDConnectProviderThumbprint"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	bin, env := sw.bin, append(sw.env, "PROBE_TIMEOUT=5s", "STATE_TABLE="+table)

	plan, _ := tpRun(t, bin, env, ExitProblems, "check")
	for _, want := range []string{
		"managed   by code: terraform", "writer    terraform (" + principal + ", 2026-12-01T09:30:00Z)",
		`code fix  thumbprint_list = ["` + live + `", "` + old + `"]`,
		"managed   by code: pulumi", `code fix  thumbprintLists: ["` + live + `", "` + old + `"]`,
	} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	js, _ := tpRun(t, bin, env, ExitProblems, "check", "--output", "json", "--provider", tfARN)
	var rep struct {
		Results []struct {
			ManagedBy  string         `json:"managed_by"`
			LastWriter map[string]any `json:"last_writer"`
			CodeFix    string         `json:"code_fix"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(js), &rep); err != nil || len(rep.Results) != 1 {
		t.Fatalf("json report %v: %s", err, js)
	}
	if r := rep.Results[0]; r.ManagedBy != "terraform" || r.LastWriter["tool"] != "terraform" || r.LastWriter["principal"] != principal ||
		r.LastWriter["user_agent"] != nil || !strings.HasPrefix(r.CodeFix, "thumbprint_list = [") {
		t.Errorf("json result %+v, want managed_by, last_writer (tool, principal, at) and code_fix", r)
	}

	// stage: refused without --force, the code change printed; a dry run shows it.
	stageArgs := func(arn string, extra ...string) []string {
		return append([]string{"stage", "--provider", arn, "--thumbprint", next}, extra...)
	}
	wantFix := `code fix  thumbprint_list = ["` + live + `", "` + next + `", "` + old + `"]`
	out, errOut := tpRun(t, bin, env, ExitProblems, stageArgs(tfARN)...)
	if !strings.Contains(out, wantFix) || !strings.Contains(errOut, "owned by code (last written by terraform") || !strings.Contains(errOut, "--force") {
		t.Errorf("stage of a provider owned by code: stdout\n%s\nstderr %q; want the code change and a refusal naming --force", out, errOut)
	}
	if got := tfStored(); got != old {
		t.Fatalf("stage wrote a provider owned by code without --force: %s", got)
	}
	out, _ = tpRun(t, bin, env, ExitOK, stageArgs(puARN, "--dry-run")...)
	if !strings.Contains(out, `code fix  thumbprintLists: ["`+live+`", "`+next+`", "`+old+`"]`) || !strings.Contains(out, "dry run: nothing written") {
		t.Errorf("dry run of a tagged provider:\n%s", out)
	}
	if got := puStored(); got != old {
		t.Fatalf("dry run wrote: %s", got)
	}
	tpRun(t, bin, env, ExitOK, stageArgs(tfARN, "--force")...)
	if got := tfStored(); got != live+" "+next+" "+old {
		t.Fatalf("stage --force stored %s, want live, staged, old", got)
	}
}

// stageWorld is what the CLI's stage tests run against: moto_server (IAM
// and a state table), a root the CLI trusts (SSL_CERT_FILE), the built CLI.
type stageWorld struct {
	t    *testing.T
	iam  *iam.Client
	st   *state.Store
	root *testidp.CA
	bin  string
	env  []string
}

func newStageWorld(t *testing.T, table, rootName string) *stageWorld {
	t.Helper()
	ctx := context.Background()
	m := peertest.Moto(t)
	if err := testpeer.CreateStateTable(ctx, m.Config(), table); err != nil {
		t.Fatal(err)
	}
	root, _ := testidp.NewRoot(rootName)
	certFile := filepath.Join(t.TempDir(), "roots.pem")
	if err := os.WriteFile(certFile, root.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return &stageWorld{t: t, iam: iam.NewFromConfig(m.Config()), st: state.New(dynamodb.NewFromConfig(m.Config()), table), root: root,
		bin: tpBuildCLI(t), env: append(m.Env(), "SSL_CERT_FILE="+certFile)}
}

// create makes the provider of url (host:port/path) storing list, with
// tags; stored reads its list back, space-separated.
func (sw *stageWorld) create(url string, list []string, tags ...iamtypes.Tag) (arn string, stored func() string) {
	ctx := context.Background()
	arn, err := testpeer.CreateProvider(ctx, sw.iam, &iam.CreateOpenIDConnectProviderInput{Url: aws.String("https://" + url), ThumbprintList: list, Tags: tags})
	if err != nil {
		sw.t.Fatal(err)
	}
	return arn, func() string {
		o, err := sw.iam.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
		if err != nil {
			sw.t.Fatal(err)
		}
		return strings.Join(o.ThumbprintList, " ")
	}
}
