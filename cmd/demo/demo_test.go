package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/handler"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

// TestSamples checks that the sample events the scenes send, rewritten to a
// demo provider, mean what the scenes say: the update and the create check
// just that provider, and the own update is the function's own (its role
// session is functionName), so it is not checked.
func TestSamples(t *testing.T) {
	root, err := testpeer.ModuleRoot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const url = "127.0.0.1:4443/team-a"
	arn := "arn:aws:iam::" + testpeer.AccountID + ":oidc-provider/" + url
	for _, tc := range []struct{ name, host string }{
		{"cloudtrail-update-thumbprint.json", "token.actions.githubusercontent.com"},
		{"cloudtrail-create.json", "gitlab.example.com"},
		{"cloudtrail-own-update.json", "token.actions.githubusercontent.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload, err := sample(root, tc.name, tc.host, url)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := handler.ParseEvent(payload, functionName)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind != handler.KindCloudTrail || ev.Call == nil || ev.Call.ProviderARN != arn {
				t.Fatalf("kind %s, call %+v: want a CloudTrail call naming %s", ev.Kind, ev.Call, arn)
			}
			wantIgnore := handler.Ignore("")
			if tc.name == "cloudtrail-own-update.json" {
				wantIgnore = handler.IgnoreOwnUpdate
			}
			if ev.Ignore != wantIgnore {
				t.Errorf("ignore %q (%s), want %q", ev.Ignore, ev.Detail, wantIgnore)
			}
		})
	}
}

// TestDemo runs the whole demo in-process, against a real moto_server and
// the real function binary, and checks what a reader sees in each scene.
// (The demo also checks itself: run fails when a scene goes otherwise.)
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: the demo builds the function and starts moto_server")
	}
	peertest.Tool(t, "moto_server")
	peertest.Tool(t, "go")
	// A cold build compiles the AWS SDK; the demo's own work takes seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out, false, false); err != nil {
		t.Fatalf("demo failed: %v\noutput:\n%s", err, out.String())
	}
	text := out.String()
	// row matches a report row: provider n, outcome, severity, transition, trusted, change.
	row := func(n, outcome, severity, transition, trusted, change string) *regexp.Regexp {
		return regexp.MustCompile(`(?m)^  \(` + n + `\) 127\.0\.0\.1:\d+/\S+\s+` + outcome + `\s+` + severity + `\s+` +
			transition + `\s+` + regexp.QuoteMeta(trusted) + `\s+.*` + regexp.QuoteMeta(change) + `$`)
	}
	has := func(t *testing.T, s string, want ...any) {
		t.Helper()
		for _, w := range want {
			switch w := w.(type) {
			case string:
				if !strings.Contains(s, w) {
					t.Errorf("no %q in:\n%s", w, s)
				}
			case *regexp.Regexp:
				if !w.MatchString(s) {
					t.Errorf("no match for %s in:\n%s", w, s)
				}
			}
		}
	}

	t.Run("scene 1: new", func(t *testing.T) {
		s := section(t, text, "Scene 1")
		has(t, s, "5 checked", row("1", "in-sync", "none", "-", "yes", "(kept)"), row("2", "updated", "info", "applied", "yes", "(written)"),
			row("3", "drift", "critical", "new", "no", "(not written)"), row("4", "drift", "critical", "new", "no", "(not written)"),
			row("5", "probe-failed", "warning", "new", "-", "(kept)"),
			"SNS: 3 message(s)", regexp.MustCompile(`(?m)^    thumbprint-drift: new drift 127\.0\.0\.1:\d+ \(2 providers\)$`),
			regexp.MustCompile(`(?m)^      fix         aws iam update-open-id-connect-provider-thumbprint --open-id-connect-provider-arn `+
				`arn:aws:iam::\d{12}:oidc-provider/127\.0\.0\.1:\d+/team-a --thumbprint-list [0-9a-f]{40} [0-9a-f]{40}$`),
			"    | New: drift for 127.0.0.1:", "    | PROVIDERS (2)", "    | SILENCE",
			`detail-type="OIDC Provider Thumbprint New" transition=new outcome=drift count=2`,
			`detail-type="OIDC Provider Thumbprint Applied" transition=applied outcome=updated count=1`,
			regexp.MustCompile(`(?m)^    \(3\) ACTIVE\s+FAILED\s+CRITICAL\s+thumbprint-drift/arn:aws:iam::\d{12}:oidc-provider/\S+/team-a$`))
		// (2) was applied with no problem alerted before: no finding.
		if regexp.MustCompile(`(?m)^    \(2\) (ACTIVE|ARCHIVED)\s`).MatchString(s) {
			t.Errorf("a finding for (2), applied with no open problem:\n%s", s)
		}
	})
	t.Run("scene 2: silent", func(t *testing.T) {
		s := section(t, text, "Scene 2")
		has(t, s, row("3", "drift", "critical", "-", "no", "(not written)"), "alerts: none")
	})
	t.Run("scene 3: resolved", func(t *testing.T) {
		s := section(t, text, "Scene 3")
		has(t, s, row("3", "in-sync", "none", "resolved", "no", "(kept)"), row("4", "drift", "critical", "-", "no", "(not written)"),
			"SNS: 1 message(s)", `transition=resolved outcome=in-sync count=1`,
			regexp.MustCompile(`(?m)^    \(3\) ARCHIVED\s+PASSED\s+INFORMATIONAL\s+thumbprint-drift/\S+/team-a$`))
	})
	t.Run("scene 4: CloudTrail", func(t *testing.T) {
		s := section(t, text, "Scene 4")
		has(t, s, "1 checked", row("1", "updated", "info", "applied", "yes", "(written)"), "report: 0 checked; log: \"event not checked\" reason=own-update")
		if regexp.MustCompile(`(?m)^  \([2-6]\) `).MatchString(s) {
			t.Errorf("the CloudTrail check reports another provider than (1):\n%s", s)
		}
	})
	t.Run("scene 5: expiring", func(t *testing.T) {
		s := section(t, text, "Scene 5")
		has(t, s, row("6", "expiring", "warning", "new", "no", "(kept)"), "(2 of 2 in its chain:",
			"thumbprint-drift: new expiring 127.0.0.1:", regexp.MustCompile(`(?m)^    \(6\) ACTIVE\s+FAILED\s+MEDIUM\s`))
	})
	t.Run("scene 6: infrastructure as code", func(t *testing.T) {
		s := section(t, text, "Scene 6")
		has(t, s, row("7", "updated", "info", "applied", "yes", "(written)"), row("7", "reverted", "warning", "new", "yes", "(not written)"),
			row("7", "reverted", "warning", "-", "yes", "(not written)"), row("7", "in-sync", "none", "resolved", "yes", "(kept)"),
			"thumbprint-drift: new reverted 127.0.0.1:", "      managed by  terraform",
			regexp.MustCompile(`(?m)^      last writer terraform arn:aws:sts::123456789012:assumed-role/terraform-deploy/GitHubActions at `),
			regexp.MustCompile(`(?m)^      code fix    thumbprint_list = \["[0-9a-f]{40}", "[0-9a-f]{40}"\]$`),
			"    | New: reverted for 127.0.0.1:", "change the code (terraform, aws_iam_openid_connect_provider)")
	})
	has(t, text, regexp.MustCompile(`(?m)^Done in [0-9.]+m?s; `))
}

// section returns the output section whose heading starts with "== "+name,
// up to the next heading.
func section(t *testing.T, text, name string) string {
	t.Helper()
	i := strings.Index(text, "\n== "+name)
	if i < 0 {
		t.Fatalf("no section %q in:\n%s", name, text)
	}
	s := text[i+1:]
	if j := strings.Index(s, "\n== "); j >= 0 {
		s = s[:j]
	}
	return s
}
