package samtemplate

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Tests of what makes the application publishable and usable with SAM: the
// Serverless Application Repository metadata, LICENSE, and the Makefile targets a
// SAM user expects (validate, invoke, logs, delete).

// sourceRepo is the repository the module path names.
const sourceRepo = "https://github.com/thumbprint-drift/thumbprint-drift"

// TestServerlessRepoMetadata checks AWS::ServerlessRepo::Application against the
// limits `sam publish` and the repository enforce.
func TestServerlessRepoMetadata(t *testing.T) {
	tp := loadTemplate(t)
	root := repoRoot(t)
	app, ok := lookup(tp.doc, "Metadata", "AWS::ServerlessRepo::Application").(map[string]any)
	if !ok {
		t.Fatal("Metadata.AWS::ServerlessRepo::Application missing: `sam publish` needs it")
	}
	str := func(k string) string { s, _ := app[k].(string); return s }
	file := func(k string) func() string {
		return func() string {
			if _, err := os.Stat(filepath.Join(root, str(k))); err != nil {
				return err.Error()
			}
			return ""
		}
	}
	tests := []struct {
		field string
		// bad returns why the value is refused, "" when it is fine.
		bad func() string
	}{
		{"Name", matches(str("Name"), `^[a-zA-Z0-9-]{1,140}$`)},
		{"Description", func() string {
			if n := utf8.RuneCountInString(str("Description")); n < 1 || n > 256 {
				return "must be 1 to 256 characters"
			}
			return ""
		}},
		// Lower case letters, digits and single hyphens inside, at most 127.
		{"Author", func() string {
			a := str("Author")
			if strings.Contains(a, "--") || len(a) > 127 {
				return "no double hyphen, at most 127 characters"
			}
			return matches(a, `^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)()
		}},
		{"SemanticVersion", matches(str("SemanticVersion"), `^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)},
		{"SpdxLicenseId", equals(str("SpdxLicenseId"), "Apache-2.0")},
		{"LicenseUrl", equals(str("LicenseUrl"), "LICENSE")},
		{"LicenseUrl file", file("LicenseUrl")},
		{"ReadmeUrl", equals(str("ReadmeUrl"), "README.md")},
		{"ReadmeUrl file", file("ReadmeUrl")},
		{"HomePageUrl", equals(str("HomePageUrl"), sourceRepo)},
		{"SourceCodeUrl", equals(str("SourceCodeUrl"), sourceRepo)},
		{"Labels", func() string {
			labels := strs(app["Labels"])
			if len(labels) < 1 || len(labels) > 10 {
				return "must be 1 to 10 labels"
			}
			for _, l := range labels {
				if why := matches(l, `^[a-zA-Z0-9+_:/@-]{1,127}$`)(); why != "" {
					return l + ": " + why
				}
			}
			return ""
		}},
	}
	for _, tc := range tests {
		t.Run(tc.field, func(t *testing.T) {
			if why := tc.bad(); why != "" {
				t.Errorf("ServerlessRepo %s = %#v: %s", tc.field, app[strings.TrimSuffix(tc.field, " file")], why)
			}
		})
	}
}

func matches(s, pattern string) func() string {
	return func() string {
		if !regexp.MustCompile(pattern).MatchString(s) {
			return "must match " + pattern
		}
		return ""
	}
}

func equals(s, want string) func() string {
	return func() string {
		if s != want {
			return "want " + want
		}
		return ""
	}
}

// TestLicense checks LICENSE is the full Apache License 2.0, not a pointer to it.
func TestLicense(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "LICENSE"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	for _, want := range []string{
		"Apache License",
		"Version 2.0, January 2004",
		"TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
		"1. Definitions.",
		"2. Grant of Copyright License.",
		"3. Grant of Patent License.",
		"4. Redistribution.",
		"5. Submission of Contributions.",
		"6. Trademarks.",
		"7. Disclaimer of Warranty.",
		"8. Limitation of Liability.",
		"9. Accepting Warranty or Additional Liability.",
		"END OF TERMS AND CONDITIONS",
		"APPENDIX: How to apply the Apache License to your work.",
		`Licensed under the Apache License, Version 2.0 (the "License");`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("LICENSE lacks %q", want)
		}
	}
	if n := len(strings.Fields(text)); n < 1500 {
		t.Errorf("LICENSE has %d words; the Apache License 2.0 has about 1,600", n)
	}
}

// TestMakeTargets dry-runs (make -n) the targets a SAM user expects, with the
// SAM CLI, the AWS CLI or neither on PATH, and checks the commands they would
// run name the deployed function, its log group and the sample event.
func TestMakeTargets(t *testing.T) {
	makeBin := requireTool(t, "make")
	root := repoRoot(t)
	tp := loadTemplate(t)

	// The names the Makefile derives must be those of a stack CloudFormation
	// created under the Makefile's default STACK_NAME.
	st := tp.deploy(t, "", nil)
	stack, fn, group := st.Name, st.Outputs["DriftCheckFunctionName"], st.Outputs["LogGroupName"]
	if stack != "thumbprint-drift" || fn == "" || group == "" {
		t.Fatalf("stack %q: function %q, log group %q", stack, fn, group)
	}

	tests := []struct {
		name   string
		target string
		tools  []string // fake programs on PATH
		vars   []string
		want   []string // lines, each a substring of one printed command
		absent []string
	}{
		{name: "validate without sam", target: "validate", tools: []string{"cfn-lint"},
			want: []string{"cfn-lint template.yaml member-role.yaml"}, absent: []string{"sam validate"}},
		{name: "validate with sam", target: "validate", tools: []string{"cfn-lint", "sam"},
			want: []string{"cfn-lint template.yaml member-role.yaml", "sam validate --lint"}},
		{name: "invoke with aws", target: "invoke", tools: []string{"aws"},
			want: []string{"aws lambda invoke --function-name " + fn + " --payload fileb://events/manual-report.json --cli-read-timeout 0 "}},
		{name: "invoke with aws and sam prefers aws (its read timeout can be lifted)", target: "invoke", tools: []string{"aws", "sam"},
			want: []string{"aws lambda invoke --function-name " + fn}, absent: []string{"sam remote invoke"}},
		{name: "invoke with sam", target: "invoke", tools: []string{"sam"},
			want: []string{"sam remote invoke DriftCheckFunction --stack-name " + stack + " --event-file events/manual-report.json"}},
		{name: "invoke another stack and event", target: "invoke", tools: []string{"aws"}, vars: []string{"STACK_NAME=drift2", "EVENT=events/manual-report-narrowed.json"},
			want: []string{"aws lambda invoke --function-name drift2-drift-check --payload fileb://events/manual-report-narrowed.json"}},
		{name: "invoke with neither", target: "invoke", want: []string{"needs the AWS CLI or the SAM CLI"}},
		{name: "logs with sam", target: "logs", tools: []string{"sam", "aws"},
			want: []string{"sam logs --stack-name " + stack + " --name DriftCheckFunction --tail"}},
		{name: "logs with aws", target: "logs", tools: []string{"aws"},
			want: []string{"aws logs tail " + group + " --follow"}},
		{name: "delete with sam", target: "delete", tools: []string{"sam"},
			want: []string{"sam delete --stack-name " + stack}, absent: []string{"delete-stack"}},
		{name: "delete with aws names the retained table", target: "delete", tools: []string{"aws"},
			want: []string{"OutputKey=='StateTableName'", "[y/N]", "aws cloudformation delete-stack --stack-name " + stack}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bin := t.TempDir()
			for _, tool := range tc.tools {
				if err := os.WriteFile(filepath.Join(bin, tool), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, makeBin, append([]string{"-n", tc.target}, tc.vars...)...)
			cmd.Dir = root
			cmd.Env = []string{"PATH=" + bin, "HOME=" + bin}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("make -n %s: %v\n%s", tc.target, err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("make -n %s with %v prints no %q:\n%s", tc.target, tc.tools, w, out)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(string(out), a) {
					t.Errorf("make -n %s with %v prints %q:\n%s", tc.target, tc.tools, a, out)
				}
			}
		})
	}
}
