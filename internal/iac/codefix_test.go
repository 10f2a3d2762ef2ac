package iac_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thumbprint-drift/thumbprint-drift/internal/iac"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestCodeFixGolden renders each tool's code fix of a two-entry list and
// compares it with testdata/codefix-<tool>.golden.
func TestCodeFixGolden(t *testing.T) {
	const arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
	list := []string{"1b511abead59c6ce207077c0bf0e0043b1382612", "6938fd4d98bab03faadb97b34396831e3780aea1"}
	for _, tool := range []iac.Tool{iac.Terraform, iac.CloudFormation, iac.Pulumi, iac.Eksctl, iac.Other, iac.Unknown} {
		t.Run(string(tool), func(t *testing.T) {
			got := iac.CodeFix(tool, arn, list) + "\n"
			path := filepath.Join("testdata", "codefix-"+string(tool)+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden (run with -update to create): %v", err)
			}
			if got != string(want) {
				t.Errorf("CodeFix(%s) =\n%s\nwant\n%s", tool, got, want)
			}
			// The list, in its order: Terraform compares thumbprint_list in order.
			if i, j := strings.Index(got, list[0]), strings.Index(got, list[1]); i < 0 || j < i {
				t.Errorf("CodeFix(%s) lost the list's order:\n%s", tool, got)
			}
		})
	}
}

func TestCodeFixEdges(t *testing.T) {
	if got := iac.CodeFix(iac.Terraform, "arn", nil); got != "" {
		t.Errorf("CodeFix of no list = %q, want empty", got)
	}
	if got := iac.CodeFix(iac.Eksctl, "arn:aws:iam::1:oidc-provider/h/a b", []string{"x"}); !strings.Contains(got, "'arn:aws:iam::1:oidc-provider/h/a b'") {
		t.Errorf("CodeFix quotes an odd ARN badly: %s", got)
	}
	for tool, want := range map[iac.Tool]string{iac.Terraform: "aws_iam_openid_connect_provider", iac.CloudFormation: "AWS::IAM::OIDCProvider",
		iac.Pulumi: "aws.iam.OpenIdConnectProvider", iac.Eksctl: "", iac.Other: ""} {
		if got := iac.Resource(tool); got != want {
			t.Errorf("Resource(%s) = %q, want %q", tool, got, want)
		}
	}
}
