package iac_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/iac"
)

func TestOwnership(t *testing.T) {
	tf := &iac.Writer{Tool: iac.Terraform, Principal: "arn:aws:sts::1:assumed-role/terraform-deploy/ci"}
	console := &iac.Writer{Tool: iac.Console, Principal: "arn:aws:sts::1:assumed-role/admin/dave"}
	for _, tt := range []struct {
		name     string
		tags     map[string]string
		last     *iac.Writer
		reverted bool
		want     iac.Tool // "" : not owned
		why      string   // in Why
		warning  bool
	}{
		{"nothing known", nil, nil, false, "", "", false},
		{"tag terraform", map[string]string{iac.TagManagedBy: "terraform"}, nil, false, iac.Terraform, "tagged", false},
		{"tag other", map[string]string{iac.TagManagedBy: "other"}, nil, false, iac.Other, "tagged", false},
		{"tag case and spaces", map[string]string{iac.TagManagedBy: " CloudFormation "}, nil, false, iac.CloudFormation, "tagged", false},
		{"tag pulumi", map[string]string{iac.TagManagedBy: "pulumi"}, nil, false, iac.Pulumi, "tagged", false},
		{"tag eksctl", map[string]string{iac.TagManagedBy: "eksctl"}, nil, false, iac.Eksctl, "tagged", false},
		{"tag wins over the writer", map[string]string{iac.TagManagedBy: "pulumi"}, tf, false, iac.Pulumi, "tagged", false},
		{"tag console is not understood", map[string]string{iac.TagManagedBy: "console"}, nil, false, "", "", true},
		{"tag unknown is not understood", map[string]string{iac.TagManagedBy: "unknown"}, nil, false, "", "", true},
		{"bad tag falls back to the writer", map[string]string{iac.TagManagedBy: "cdk"}, tf, false, iac.Terraform, "last written by terraform", true},
		{"empty tag is not understood", map[string]string{iac.TagManagedBy: ""}, nil, false, "", "", true},
		{"last writer terraform", nil, tf, false, iac.Terraform, "last written by terraform (arn:aws:sts::1:assumed-role/terraform-deploy/ci)", false},
		{"last writer eksctl", nil, &iac.Writer{Tool: iac.Eksctl}, false, iac.Eksctl, "last written by eksctl", false},
		{"a console writer does not make it owned", nil, console, false, "", "", false},
		{"a cli writer does not make it owned", nil, &iac.Writer{Tool: iac.CLI}, false, "", "", false},
		{"an unknown writer does not make it owned", nil, &iac.Writer{Tool: iac.Unknown}, false, "", "", false},
		{"reverted by terraform", nil, tf, true, iac.Terraform, "last written by terraform", false},
		{"reverted by the console", nil, console, true, iac.Console, "set back by console", false},
		{"reverted, no event seen", nil, nil, true, iac.Unknown, "set back by unknown (no CloudTrail event seen)", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := iac.Ownership(tt.tags, tt.last, tt.reverted)
			if o.ManagedBy != tt.want || o.Owned() != (tt.want != "") {
				t.Fatalf("Ownership = %+v, want managed by %q", o, tt.want)
			}
			if !strings.Contains(o.Why, tt.why) || (tt.want == "") != (o.Why == "") {
				t.Errorf("Why = %q, want it to hold %q", o.Why, tt.why)
			}
			if (o.Warning != "") != tt.warning || (tt.warning && !strings.Contains(o.Warning, iac.TagManagedBy)) {
				t.Errorf("Warning = %q, want one: %v", o.Warning, tt.warning)
			}
		})
	}
}

func TestRevert(t *testing.T) {
	wrote := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	tf := &iac.Writer{Tool: iac.Terraform, Principal: "arn:aws:sts::1:assumed-role/terraform-deploy/ci", At: wrote.Add(time.Hour)}
	old := &iac.Writer{Tool: iac.Console, Principal: "arn:aws:sts::1:assumed-role/admin/dave", At: wrote.Add(-time.Hour)}
	for _, tt := range []struct {
		name    string
		last    *iac.Writer
		wroteAt time.Time
		want    *iac.Writer
	}{
		{"a writer since the function wrote", tf, wrote, tf},
		{"a writer before the function wrote is not who set it back", old, wrote, nil},
		{"no writer", nil, wrote, nil},
		{"a writer in the same second (eventTime counts seconds)", tf, tf.At.Add(900 * time.Millisecond), tf},
		{"the function's write time unknown", old, time.Time{}, old},
		{"the writer's time unknown", &iac.Writer{Tool: iac.Pulumi}, wrote, &iac.Writer{Tool: iac.Pulumi}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := iac.SetBackBy(tt.last, tt.wroteAt); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SetBackBy = %+v, want %+v", got, tt.want)
			}
		})
	}
	r := iac.Revert{Wrote: []string{"aa", "bb"}, WroteAt: wrote, SetTo: []string{"bb"}, By: tf}
	got := r.Detail()
	for _, s := range []string{"[aa bb] at 2026-01-02T10:00:00Z", "terraform (arn:aws:sts::1:assumed-role/terraform-deploy/ci, 2026-01-02T11:00:00Z)", "back to [bb]", "not written again"} {
		if !strings.Contains(got, s) {
			t.Errorf("Detail = %q, want it to hold %q", got, s)
		}
	}
	r.By = nil
	if got := r.Detail(); !strings.Contains(got, "an unknown writer (no CloudTrail event since) set it back") {
		t.Errorf("Detail without a writer = %q", got)
	}
	o := iac.Ownership(map[string]string{iac.TagManagedBy: "terraform"}, nil, false)
	if got := o.NotWritten(); !strings.Contains(got, "tagged thumbprint-drift:managed-by=terraform") || !strings.Contains(got, "thumbprint-drift:mode=remediate") {
		t.Errorf("NotWritten = %q", got)
	}
}
