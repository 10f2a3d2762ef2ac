package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

// printer writes the demo's output: sections headed "== ", indented content.
type printer struct {
	w io.Writer
}

func newPrinter(w io.Writer) *printer { return &printer{w: w} }

func (p *printer) line(format string, args ...any) {
	fmt.Fprintf(p.w, format+"\n", args...)
}

func (p *printer) section(format string, args ...any) {
	p.line("")
	p.line("== "+format, args...)
}

// short cuts a thumbprint to 8 hex digits for tables.
func short(tp string) string {
	if len(tp) > 8 {
		return tp[:8]
	}
	return tp
}

func shortList(list []string) string {
	if len(list) == 0 {
		return "(empty)"
	}
	out := make([]string, len(list))
	for i, tp := range list {
		out[i] = short(tp)
	}
	return strings.Join(out, " ")
}

func (p *printer) title() {
	p.line("thumbprint-drift demo: the real drift-check function, run once against local AWS")
	p.line("(moto_server) and local OIDC identity providers. Nothing leaves this machine.")
}

// setup describes the local world.
func (p *printer) setup(w *world) {
	p.section("Setup")
	p.line("  moto_server   %s (IAM, SNS, SQS)", w.moto.Endpoint)
	p.line("  SNS topic     %s, with an SQS queue subscribed", w.alerts.TopicARN)
	p.line("  trust store   SSL_CERT_FILE holds only \"Demo Public Root CA\" (the \"public\" chain);")
	p.line("                \"Demo Corp Private Root CA\" (the private chain) is not trusted")
	p.line("  providers     four IAM OIDC providers, each storing one thumbprint:")
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
	for _, sc := range w.scenarios {
		fmt.Fprintf(tw, "    (%d) %s\t%s\n", sc.n, sc.url, sc.story)
	}
	tw.Flush()
}

// function describes the build.
func (p *printer) function(platform string, took time.Duration) {
	p.line("  function      ./functions/drift-check, built for %s in %s", platform, round(took))
}

// invocation describes the invocation.
func (p *printer) invocation(took time.Duration) {
	p.line("  invocation    events/scheduled.json through a local Lambda Runtime API, answered in %s", round(took))
	p.line("                DRIFT_MODE=%s PROBE_TIMEOUT=%s AWS_LAMBDA_FUNCTION_NAME=%s", driftMode, probeTimeout, functionName)
}

// report prints the function's report as a table, one row per provider.
func (p *printer) report(w *world, inv *invocation) {
	rep := inv.report
	var counts []string
	for _, o := range drift.Outcomes {
		if n := rep.Counts[o]; n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, o))
		}
	}
	p.section("Report: mode %s, %d checked: %s", rep.Mode, rep.Checked, strings.Join(counts, ", "))
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "      URL\tOUTCOME\tSEVERITY\tTRUSTED\tSTORED -> NEW")
	var details []string
	for _, sc := range w.scenarios {
		r := resultFor(rep, sc.arn)
		if r == nil {
			fmt.Fprintf(tw, "  (%d) %s\t(missing from the report)\t\t\t\n", sc.n, sc.url)
			continue
		}
		trusted := "-"
		if len(r.LiveThumbprints) > 0 {
			trusted = yesNo(r.PubliclyTrusted)
		}
		change := shortList(r.StoredThumbprints) + " (kept)"
		switch r.Outcome {
		case drift.Updated:
			change = shortList(r.StoredThumbprints) + " -> " + shortList(r.NewThumbprints) + " (written)"
		case drift.Drift, drift.UpdateFailed:
			change = shortList(r.StoredThumbprints) + " -> " + shortList(r.NewThumbprints) + " (not written)"
		}
		fmt.Fprintf(tw, "  (%d) %s\t%s\t%s\t%s\t%s\n", sc.n, r.URL, r.Outcome, r.Severity, trusted, change)
		if r.Detail != "" && r.Outcome != drift.Updated {
			details = append(details, wrap(fmt.Sprintf("(%d) ", sc.n), "    ", r.Detail)...)
		}
	}
	tw.Flush()
	p.line("")
	p.line("  TRUSTED: the served chain verifies against the trust store. STS validates publicly trusted")
	p.line("  JWKS endpoints itself; for the others only the thumbprint decides whether tokens are accepted.")
	p.line("  Thumbprints are cut to 8 hex digits here; the lists further down show them whole.")
	if len(details) > 0 {
		p.line("")
		for _, d := range details {
			p.line("  %s", d)
		}
	}
}

// messages prints each SNS message the queue received, in provider order.
func (p *printer) messages(w *world, msgs []testpeer.Delivered) {
	order := func(m testpeer.Delivered) int {
		if sc := w.scenarioFor(m.Attr("provider_arn")); sc != nil {
			return sc.n
		}
		return len(w.scenarios) + 1
	}
	sort.SliceStable(msgs, func(i, j int) bool { return order(msgs[i]) < order(msgs[j]) })
	p.section("SNS messages: %d published to the topic, read back from the subscribed queue", len(msgs))
	for i, m := range msgs {
		if i > 0 {
			p.line("")
		}
		label := "   "
		if sc := w.scenarioFor(m.Attr("provider_arn")); sc != nil {
			label = fmt.Sprintf("(%d)", sc.n)
		}
		// A grouped message lists its providers' results; here each has one.
		first := map[string]any{}
		if res := m.Results(); len(res) > 0 {
			first = res[0]
		}
		p.line("  %s Subject     %s", label, m.Subject)
		p.line("      Attributes  outcome=%s severity=%s transition=%s", m.Attr("outcome"), m.Attr("severity"), m.Attr("transition"))
		p.line("                  provider_arn=%s", m.Attr("provider_arn"))
		p.line("      Message     JSON: %d result(s), mode=%s checked_at=%s; account_id=%s",
			len(m.Results()), str(m.Body["mode"]), str(m.Body["checked_at"]), str(first["account_id"]))
		if b, _ := first["breaks_assume_role"].(bool); b {
			p.line("                  breaks_assume_role=true: STS rejects this issuer's tokens until the list is fixed")
		}
		if fix := str(first["fix"]); fix != "" {
			for i, l := range fixLines(fix) {
				if i == 0 {
					p.line("      fix         %s", l)
				} else {
					p.line("                    %s", l)
				}
			}
		}
	}
}

// fixLines splits a fix command before each option, with shell line
// continuations, so it reads well and still pastes as one command.
func fixLines(cmd string) []string {
	parts := strings.Split(cmd, " --")
	for i := 1; i < len(parts); i++ {
		parts[i] = "--" + parts[i]
	}
	for i := 0; i < len(parts)-1; i++ {
		parts[i] += " \\"
	}
	return parts
}

// str is v when it is a string, else "".
func str(v any) string {
	s, _ := v.(string)
	return s
}

// wrap breaks text into lines of at most width columns, the first starting
// with first and the others with rest.
func wrap(first, rest, text string) []string {
	const width = 96
	var lines []string
	line, empty := first, true
	for _, word := range strings.Fields(text) {
		if !empty && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line, empty = rest, true
		}
		if !empty {
			line += " "
		}
		line += word
		empty = false
	}
	return append(lines, line)
}

// lists prints each provider's thumbprint list before and after the run, as
// read from IAM, with the live thumbprints the function found.
func (p *printer) lists(w *world, rep *drift.Report) {
	p.section("Thumbprint lists in IAM, before and after the run")
	for i, sc := range w.scenarios {
		if i > 0 {
			p.line("")
		}
		r := resultFor(rep, sc.arn)
		verdict := "unchanged"
		if !equal(sc.before, sc.after) {
			verdict = "replaced by the function"
		}
		outcome := ""
		if r != nil {
			outcome = string(r.Outcome)
		}
		p.line("  (%d) %s  %s, %s", sc.n, sc.url, outcome, verdict)
		if r != nil {
			p.line("      live    %s", listOrNone(r.LiveThumbprints, "(none: not probed)"))
		}
		p.line("      before  %s", listOrNone(sc.before, "(empty)"))
		p.line("      after   %s", listOrNone(sc.after, "(empty)"))
	}
}

// crossCheck recomputes each reachable provider's thumbprint with AWS's
// documented openssl procedure, as an independent check of the function's.
// It stops early, returning ctx's error, when ctx ends.
func (p *printer) crossCheck(ctx context.Context, w *world, rep *drift.Report) error {
	p.section("Cross-check with openssl, AWS's documented procedure (`s_client -showcerts`, last certificate, SHA-1)")
	if !testidp.HaveOpenSSL() {
		p.line("  skipped: openssl not found on PATH")
		return nil
	}
	for _, sc := range w.scenarios {
		if sc.addr == "" {
			continue
		}
		tp, err := testidp.OpenSSLThumbprint(ctx, sc.addr, testidp.ServerName(sc.addr))
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			p.line("  (%d) openssl failed: %v", sc.n, err)
			continue
		}
		verdict := "differs from the function's live thumbprint"
		if r := resultFor(rep, sc.arn); r != nil && len(r.LiveThumbprints) > 0 && strings.EqualFold(r.LiveThumbprints[0], tp) {
			verdict = "matches the function's live thumbprint"
		}
		p.line("  (%d) %s  %s", sc.n, tp, verdict)
	}
	return nil
}

// metricNames are the EMF metrics in the order the digest shows them.
var metricNames = []string{"ProvidersChecked", "Drift", "BreakingDrift", "Updated", "ProbeFailed", "UpdateFailed"}

// logDigest prints one short line per function log line: level, message and
// the fields that identify it; the EMF line as its metric values.
func (p *printer) logDigest(logs []byte) {
	lines := logLines(logs)
	p.section("Function logs: %d JSON lines to stdout, as CloudWatch Logs gets them (-v prints them whole)", len(lines))
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal(l, &rec); err != nil {
			fmt.Fprintf(tw, "  %s\n", l)
			continue
		}
		if _, ok := rec["_aws"]; ok {
			var vals []string
			for _, name := range metricNames {
				vals = append(vals, fmt.Sprintf("%s=%v", name, rec[name]))
			}
			fmt.Fprintf(tw, "  EMF\tmetrics\t%s\n", strings.Join(vals, " "))
			continue
		}
		var fields []string
		keys := []string{"mode", "checked", "error"}
		if _, ok := rec["outcome"]; ok {
			keys = []string{"outcome", "url"}
		}
		for _, k := range keys {
			if v, ok := rec[k]; ok {
				fields = append(fields, fmt.Sprintf("%s=%v", k, v))
			}
		}
		fmt.Fprintf(tw, "  %v\t%v\t%s\n", rec["level"], rec["message"], strings.Join(fields, " "))
	}
	tw.Flush()
}

// logs prints the function's log lines whole.
func (p *printer) logs(logs []byte) {
	p.section("Function logs (stdout and stderr, as CloudWatch Logs gets them)")
	for _, l := range logLines(logs) {
		p.line("  %s", l)
	}
}

// logLines splits a process's output into its non-empty lines.
func logLines(logs []byte) [][]byte {
	var out [][]byte
	for _, l := range bytes.Split(logs, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 {
			out = append(out, l)
		}
	}
	return out
}

// done closes the output with the elapsed time.
func (p *printer) done(total time.Duration) {
	p.line("")
	p.line("Done in %s; moto_server, the identity providers and the function stopped, temporary files removed.", round(total))
}

// keep says what is still running and how to point the CLI at it.
func (p *printer) keep(w *world, took time.Duration) {
	p.section("Still running (-keep): press Ctrl-C to stop everything")
	p.line("  Done in %s. In another shell, from the repository, point the CLI at the same local world:", round(took))
	p.line("")
	for _, kv := range w.moto.Env() {
		p.line("    export %s", kv)
	}
	p.line("    export SSL_CERT_FILE=%s   # trusts only the demo's public root", w.certFile)
	p.line("    export SNS_TOPIC_ARN=%s", w.alerts.TopicARN)
	p.line("    make cli")
	for _, sc := range w.scenarios {
		if sc.addr != "" {
			p.line("    bin/thumbprint-drift thumbprint %s", sc.url)
			break
		}
	}
	p.line("    bin/thumbprint-drift check")
}

func round(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func listOrNone(list []string, none string) string {
	if len(list) == 0 {
		return none
	}
	return strings.Join(list, " ")
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
