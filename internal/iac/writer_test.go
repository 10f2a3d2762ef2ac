package iac_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/iac"
)

// ownFunction is the function name in events/cloudtrail-own-update.json.
const ownFunction = "thumbprint-drift-DriftCheckFunction-Ab3dEf6hIj9k"

// memberSession is accounts.SessionName, the member roles' session.
const memberSession = "thumbprint-drift"

// sample returns the detail (the CloudTrail record) of events/name, edited.
func sample(t *testing.T, name string, edit func(detail map[string]any)) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Detail map[string]any `json:"detail"`
	}
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if edit != nil {
		edit(ev.Detail)
	}
	d, err := json.Marshal(ev.Detail)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func identity(d map[string]any) map[string]any { return d["userIdentity"].(map[string]any) }

// TestParseWriterSamples recognises each tool's sample event under events/.
func TestParseWriterSamples(t *testing.T) {
	for _, tt := range []struct {
		file      string
		tool      iac.Tool
		principal string
		at        string
		list      []string
	}{
		{"cloudtrail-update-thumbprint.json", iac.Terraform, "arn:aws:sts::123456789012:assumed-role/terraform-deploy/GitHubActions",
			"2025-01-15T15:41:09Z", []string{"1b511abead59c6ce207077c0bf0e0043b1382612"}},
		{"cloudtrail-update-pulumi.json", iac.Pulumi, "arn:aws:sts::123456789012:assumed-role/pulumi-deploy/pulumi-deploy",
			"2025-01-17T09:12:44Z", []string{"1b511abead59c6ce207077c0bf0e0043b1382612"}},
		{"cloudtrail-update-cloudformation.json", iac.CloudFormation, "arn:aws:sts::123456789012:assumed-role/cfn-deploy-role/AWSCloudFormation",
			"2025-01-17T10:20:31Z", []string{"1b511abead59c6ce207077c0bf0e0043b1382612"}},
		{"cloudtrail-create-eksctl.json", iac.Eksctl, "arn:aws:sts::123456789012:assumed-role/platform-admin/carol@example.com",
			"2025-01-17T11:05:09Z", []string{"9e99a48a9960b14926bb7f3b02e22da2b0ab7280"}},
		{"cloudtrail-update-console.json", iac.Console, "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_AdministratorAccess_0123456789abcdef/dave@example.com",
			"2025-01-17T12:33:50Z", []string{"1b511abead59c6ce207077c0bf0e0043b1382612"}},
		{"cloudtrail-create.json", iac.CLI, "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_AdministratorAccess_0123456789abcdef/alice@example.com",
			"2025-01-15T14:03:27Z", []string{"9e99a48a9960b14926bb7f3b02e22da2b0ab7280"}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			w, err := iac.ParseWriter(sample(t, tt.file, nil), ownFunction, memberSession)
			if err != nil || w == nil {
				t.Fatalf("ParseWriter = %v, %v; want a writer", w, err)
			}
			at, _ := time.Parse(time.RFC3339, tt.at)
			if w.Tool != tt.tool || w.Principal != tt.principal || !w.At.Equal(at) || !reflect.DeepEqual(w.Thumbprints, tt.list) {
				t.Errorf("writer = %+v, want %s %s at %s setting %v", w, tt.tool, tt.principal, tt.at, tt.list)
			}
			if w.UserAgent == "" || w.EventName == "" {
				t.Errorf("writer %+v lost the user agent or the call", w)
			}
		})
	}
}

// TestParseWriterNotAWriter: the function's own calls, failed calls, calls
// that write nothing, and tags by people are never a provider's last writer.
func TestParseWriterNotAWriter(t *testing.T) {
	member := func(d map[string]any) {
		identity(d)["arn"] = "arn:aws:sts::123456789012:assumed-role/thumbprint-drift-member/thumbprint-drift"
		identity(d)["principalId"] = "AROA2EXAMPLEMEMBER001:thumbprint-drift"
	}
	for _, tt := range []struct {
		name   string
		detail []byte
	}{
		{"own update: execution role session named after the function", sample(t, "cloudtrail-own-update.json", nil)},
		{"own update: member role session", sample(t, "cloudtrail-own-update.json", member)},
		{"own update: session from principalId without arn", sample(t, "cloudtrail-own-update.json", func(d map[string]any) { delete(identity(d), "arn") })},
		{"own update with a Terraform-like user agent", sample(t, "cloudtrail-own-update.json", func(d map[string]any) {
			member(d)
			d["userAgent"] = "terraform-provider-aws/5.84.0"
		})},
		{"own create (member role)", sample(t, "cloudtrail-create.json", member)},
		{"failed update", sample(t, "cloudtrail-update-thumbprint.json", func(d map[string]any) { d["errorCode"] = "InvalidInput" })},
		{"tag from the console", sample(t, "cloudtrail-untag.json", func(d map[string]any) { d["eventName"] = "TagOpenIDConnectProvider" })},
		{"untag from the console", sample(t, "cloudtrail-untag.json", nil)},
		{"tag by an unknown script", sample(t, "cloudtrail-tag.json", nil)},
		{"another call", sample(t, "cloudtrail-update-thumbprint.json", func(d map[string]any) { d["eventName"] = "DeleteOpenIDConnectProvider" })},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w, err := iac.ParseWriter(tt.detail, ownFunction, memberSession)
			if err != nil || w != nil {
				t.Fatalf("ParseWriter = %+v, %v; want no writer", w, err)
			}
		})
	}
}

func TestParseWriterEdges(t *testing.T) {
	t.Run("another function's update is a writer", func(t *testing.T) {
		w, err := iac.ParseWriter(sample(t, "cloudtrail-own-update.json", nil), "drift-check", memberSession)
		if err != nil || w == nil || w.Tool != iac.Unknown {
			t.Fatalf("ParseWriter = %+v, %v; want an unknown writer", w, err)
		}
	})
	t.Run("an IAM user named like the member session is a writer", func(t *testing.T) {
		w, err := iac.ParseWriter(sample(t, "cloudtrail-own-update.json", func(d map[string]any) {
			identity(d)["type"] = "IAMUser"
			identity(d)["arn"] = "arn:aws:iam::123456789012:user/thumbprint-drift"
			identity(d)["principalId"] = "AIDA2EXAMPLE:thumbprint-drift"
		}), "", memberSession)
		if err != nil || w == nil || w.Principal != "arn:aws:iam::123456789012:user/thumbprint-drift" {
			t.Fatalf("ParseWriter = %+v, %v", w, err)
		}
	})
	t.Run("a tag by Terraform is recorded", func(t *testing.T) {
		w, err := iac.ParseWriter(sample(t, "cloudtrail-update-thumbprint.json", func(d map[string]any) {
			d["eventName"] = "TagOpenIDConnectProvider"
			d["requestParameters"] = map[string]any{"openIDConnectProviderArn": "arn:aws:iam::123456789012:oidc-provider/x", "tags": []any{}}
		}), ownFunction)
		if err != nil || w == nil || w.Tool != iac.Terraform || w.Thumbprints != nil {
			t.Fatalf("ParseWriter = %+v, %v; want Terraform without a list", w, err)
		}
	})
	t.Run("the console's AWS Internal user agent with console credentials", func(t *testing.T) {
		w, err := iac.ParseWriter(sample(t, "cloudtrail-untag.json", func(d map[string]any) { d["eventName"] = "UpdateOpenIDConnectProviderThumbprint" }), ownFunction)
		if err != nil || w == nil || w.Tool != iac.Console {
			t.Fatalf("ParseWriter = %+v, %v; want console", w, err)
		}
	})
	t.Run("CloudFormation with the deployer's own credentials", func(t *testing.T) {
		w, err := iac.ParseWriter(sample(t, "cloudtrail-update-cloudformation.json", func(d map[string]any) {
			d["userIdentity"] = map[string]any{"type": "IAMUser", "principalId": "AIDA2EXAMPLEDEPLOYER", "arn": "arn:aws:iam::123456789012:user/deployer",
				"accountId": "123456789012", "invokedBy": "cloudformation.amazonaws.com"}
			d["userAgent"] = "cloudformation.amazonaws.com"
		}), ownFunction)
		if err != nil || w == nil || w.Tool != iac.CloudFormation || w.Principal != "arn:aws:iam::123456789012:user/deployer" || w.InvokedBy != "cloudformation.amazonaws.com" {
			t.Fatalf("ParseWriter = %+v, %v", w, err)
		}
	})
	t.Run("an AWS service without an ARN is named by invokedBy", func(t *testing.T) {
		w, err := iac.ParseWriter(sample(t, "cloudtrail-update-cloudformation.json", func(d map[string]any) {
			d["userIdentity"] = map[string]any{"type": "AWSService", "invokedBy": "cloudformation.amazonaws.com"}
		}), ownFunction)
		if err != nil || w == nil || w.Principal != "cloudformation.amazonaws.com" {
			t.Fatalf("ParseWriter = %+v, %v", w, err)
		}
	})
	t.Run("odd types: lenient console flag, no time", func(t *testing.T) {
		w, err := iac.ParseWriter(sample(t, "cloudtrail-update-thumbprint.json", func(d map[string]any) {
			d["userAgent"] = "Boto3/1.36.2"
			d["sessionCredentialFromConsole"] = true
			d["eventTime"] = "yesterday"
		}), ownFunction)
		if err != nil || w == nil || w.Tool != iac.Console || !w.At.IsZero() {
			t.Fatalf("ParseWriter = %+v, %v", w, err)
		}
	})
	t.Run("not an object", func(t *testing.T) {
		if w, err := iac.ParseWriter([]byte(`[]`)); err == nil {
			t.Fatalf("ParseWriter = %+v, want an error", w)
		}
	})
}

func TestClassify(t *testing.T) {
	const cfn = "cloudformation.amazonaws.com"
	for _, tt := range []struct {
		name string
		call iac.Call
		want iac.Tool
	}{
		{"terraform", iac.Call{UserAgent: "APN/1.0 HashiCorp/1.0 Terraform/1.10.5 (+https://www.terraform.io) terraform-provider-aws/5.84.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.36.0"}, iac.Terraform},
		{"terraform provider without the core version", iac.Call{UserAgent: "terraform-provider-aws/5.84.0 aws-sdk-go-v2/1.36.0"}, iac.Terraform},
		{"opentofu through the terraform provider", iac.Call{UserAgent: "APN/1.0 HashiCorp/1.0 OpenTofu/1.9.0 terraform-provider-aws/5.84.0"}, iac.Terraform},
		{"pulumi", iac.Call{UserAgent: "APN/1.0 Pulumi/1.0 Pulumi-Aws/6.66.2 (+https://www.pulumi.com) aws-sdk-go/1.55.5"}, iac.Pulumi},
		{"cloudformation: user agent", iac.Call{UserAgent: cfn}, iac.CloudFormation},
		{"cloudformation: invokedBy", iac.Call{UserAgent: "AWS Internal", InvokedBy: cfn}, iac.CloudFormation},
		{"cloudformation: source address", iac.Call{SourceIPAddress: cfn}, iac.CloudFormation},
		{"cloudformation wins over a terraform deployer's user agent", iac.Call{UserAgent: "terraform-provider-aws/5.84.0", InvokedBy: cfn}, iac.CloudFormation},
		{"eksctl", iac.Call{UserAgent: "eksctl/0.203.0 aws-sdk-go-v2/1.36.1"}, iac.Eksctl},
		{"console user agent", iac.Call{UserAgent: "console.amazonaws.com"}, iac.Console},
		{"console credentials", iac.Call{UserAgent: "AWS Internal", FromConsole: true}, iac.Console},
		{"cli in CloudShell is the console", iac.Call{UserAgent: "aws-cli/2.22.35 md/awscrt#0.23.4", FromConsole: true}, iac.Console},
		{"cli", iac.Call{UserAgent: "aws-cli/2.22.35 md/awscrt#0.23.4 ua/2.0 os/macos#24.3.0"}, iac.CLI},
		{"terraform from CloudShell is terraform", iac.Call{UserAgent: "Terraform/1.10.5 terraform-provider-aws/5.84.0", FromConsole: true}, iac.Terraform},
		{"boto3", iac.Call{UserAgent: "Boto3/1.36.2 md/Botocore#1.36.2"}, iac.Unknown},
		{"the go SDK alone", iac.Call{UserAgent: "aws-sdk-go-v2/1.36.3 ua/2.1 os/linux"}, iac.Unknown},
		{"nothing", iac.Call{}, iac.Unknown},
		{"a word that only looks like a tool", iac.Call{UserAgent: "terraformer-go/1.0 eksctl-helper"}, iac.Unknown},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := iac.Classify(tt.call); got != tt.want {
				t.Errorf("Classify(%+v) = %s, want %s", tt.call, got, tt.want)
			}
		})
	}
}

func TestWriterString(t *testing.T) {
	var none *iac.Writer
	if got := none.String(); !strings.HasPrefix(got, "unknown") {
		t.Errorf("nil writer = %q", got)
	}
	w := &iac.Writer{Tool: iac.Terraform, Principal: "arn:aws:sts::1:assumed-role/tf/ci", At: time.Date(2025, 1, 15, 15, 41, 9, 0, time.UTC)}
	if got, want := w.String(), "terraform (arn:aws:sts::1:assumed-role/tf/ci, 2025-01-15T15:41:09Z)"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}
