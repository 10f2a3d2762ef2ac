package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

// TestDemo runs the whole demo in-process, against a real moto_server and the
// real function binary, and checks what a user reads: the four outcomes, the
// critical drift alert with its fix command, and provider (2)'s list replaced
// with its live thumbprint first.
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
	start := time.Now()
	if err := run(ctx, &out, options{}); err != nil {
		t.Fatalf("demo failed: %v\noutput:\n%s", err, out.String())
	}
	t.Logf("demo took %s", time.Since(start))
	text := out.String()

	t.Run("report table", func(t *testing.T) {
		report := section(t, text, "Report")
		want := []struct{ n, outcome, severity, trusted, change string }{
			{"1", "in-sync", "none", "yes", "(kept)"},
			{"2", "updated", "info", "yes", "(written)"},
			{"3", "drift", "critical", "no", "(not written)"},
			{"4", "probe-failed", "warning", "-", "(kept)"},
		}
		for _, w := range want {
			re := regexp.MustCompile(`(?m)^  \(` + w.n + `\) 127\.0\.0\.1:\d+/\S+\s+` + regexp.QuoteMeta(w.outcome) +
				`\s+` + w.severity + `\s+` + regexp.QuoteMeta(w.trusted) + `\s+.*` + regexp.QuoteMeta(w.change) + `$`)
			if !re.MatchString(report) {
				t.Errorf("no row (%s) %s %s trusted=%s %s in:\n%s", w.n, w.outcome, w.severity, w.trusted, w.change, report)
			}
		}
		if !strings.Contains(report, "4 checked: 1 in-sync, 1 updated, 1 drift, 1 probe-failed") {
			t.Errorf("report heading lacks the counts:\n%s", report)
		}
	})

	t.Run("critical drift message with fix", func(t *testing.T) {
		msgs := section(t, text, "SNS messages")
		if !strings.Contains(msgs, "SNS messages: 3 published") {
			t.Errorf("want 3 messages (updated, drift, probe-failed):\n%s", msgs)
		}
		var drift string
		for _, m := range strings.Split(msgs, "\n\n") {
			if strings.Contains(m, "Subject     thumbprint-drift: new drift 127.0.0.1:") {
				drift = m
			}
		}
		if drift == "" {
			t.Fatalf("no drift message:\n%s", msgs)
		}
		arn := regexp.MustCompile(`provider_arn=(arn:aws:iam::\d+:oidc-provider/\S+/private-rotated)`).FindStringSubmatch(drift)
		for _, want := range []string{"outcome=drift severity=critical", "breaks_assume_role=true"} {
			if !strings.Contains(drift, want) {
				t.Errorf("drift message lacks %q:\n%s", want, drift)
			}
		}
		if arn == nil {
			t.Fatalf("drift message names no private-rotated provider:\n%s", drift)
		}
		fix := strings.ReplaceAll(drift[strings.Index(drift, "fix "):], "\\\n", "")
		fix = strings.Join(strings.Fields(strings.TrimPrefix(fix, "fix")), " ")
		re := regexp.MustCompile(`^aws iam update-open-id-connect-provider-thumbprint --open-id-connect-provider-arn ` +
			regexp.QuoteMeta(arn[1]) + ` --thumbprint-list [0-9a-f]{40} [0-9a-f]{40}$`)
		if !re.MatchString(fix) {
			t.Errorf("fix command %q does not match %s", fix, re)
		}
	})

	t.Run("lists before and after", func(t *testing.T) {
		lists := section(t, text, "Thumbprint lists")
		blocks := map[string]map[string][]string{}
		for _, b := range strings.Split(lists, "\n\n") {
			m := regexp.MustCompile(`\((\d)\) 127\.0\.0\.1:\d+/\S+  (\S+), `).FindStringSubmatch(b)
			if m == nil {
				continue
			}
			fields := map[string][]string{"outcome": {m[2]}}
			for _, l := range strings.Split(b, "\n") {
				f := strings.Fields(l)
				if len(f) > 0 && (f[0] == "live" || f[0] == "before" || f[0] == "after") {
					fields[f[0]] = f[1:]
				}
			}
			blocks[m[1]] = fields
		}
		two := blocks["2"]
		if two == nil || len(two["live"]) != 1 || len(two["before"]) != 1 || len(two["after"]) != 2 {
			t.Fatalf("provider (2) block unreadable: %v\n%s", two, lists)
		}
		if two["after"][0] != two["live"][0] || two["after"][1] != two["before"][0] || two["live"][0] == two["before"][0] {
			t.Errorf("provider (2): want after = [live, before] with live != before; got live %v before %v after %v",
				two["live"], two["before"], two["after"])
		}
		for _, n := range []string{"1", "3", "4"} {
			b := blocks[n]
			if b == nil || strings.Join(b["before"], " ") != strings.Join(b["after"], " ") {
				t.Errorf("provider (%s): want its list unchanged, got %v", n, b)
			}
		}
	})

	t.Run("finished", func(t *testing.T) {
		if !regexp.MustCompile(`(?m)^Done in [0-9.]+m?s; `).MatchString(text) {
			t.Errorf("no closing line with the elapsed time:\n%s", text)
		}
	})
}

// section returns the output section whose heading starts with "== "+name, up
// to the next heading.
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
