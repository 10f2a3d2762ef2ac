package main

import (
	"bufio"
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

// function describes the build and the invocation.
func (p *printer) function(platform string, took time.Duration) {
	p.line("  function      ./functions/drift-check built for %s in %s", platform, round(took))
	p.line("  invocation    events/scheduled.json through a local Lambda Runtime API, with")
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
	p.section("Report (the function's response, %s): mode %s, %d checked: %s", round(inv.took), rep.Mode, rep.Checked, strings.Join(counts, ", "))
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
		if r.Detail != "" {
			details = append(details, fmt.Sprintf("  (%d) %s", sc.n, r.Detail))
		}
	}
	tw.Flush()
	p.line("  Thumbprints are cut to 8 hex digits here; the lists further down show them whole.")
	if len(details) > 0 {
		p.line("  Details:")
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
		p.line("  %s Subject     %s", label, m.Subject)
		p.line("      Attributes  outcome=%s severity=%s", m.Attr("outcome"), m.Attr("severity"))
		p.line("                  provider_arn=%s", m.Attr("provider_arn"))
		if b, ok := m.Body["breaks_assume_role"].(bool); ok && b {
			p.line("      Message     breaks_assume_role=true: STS rejects this issuer's tokens until the list is fixed")
		}
		if d, _ := m.Body["detail"].(string); d != "" {
			p.line("      detail      %s", d)
		}
		if fix, _ := m.Body["fix"].(string); fix != "" {
			p.line("      fix         %s", fix)
		}
	}
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
func (p *printer) crossCheck(ctx context.Context, w *world, rep *drift.Report) {
	p.section("Cross-check with openssl (AWS's procedure: SHA-1 of the last certificate `openssl s_client -showcerts` prints)")
	if !testidp.HaveOpenSSL() {
		p.line("  skipped: openssl not found on PATH")
		return
	}
	for _, sc := range w.scenarios {
		if sc.addr == "" {
			continue
		}
		tp, err := testidp.OpenSSLThumbprint(ctx, sc.addr, testidp.ServerName(sc.addr))
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
}

// logSummary says how much the function logged and how to see it.
func (p *printer) logSummary(logs []byte) {
	n := len(bytes.Split(bytes.TrimSpace(logs), []byte("\n")))
	if len(bytes.TrimSpace(logs)) == 0 {
		n = 0
	}
	p.section("Function logs: %d JSON lines, one per decision plus a CloudWatch metrics line (-v shows them)", n)
}

// logs prints the function's log lines.
func (p *printer) logs(logs []byte) {
	p.section("Function logs (stdout and stderr, as CloudWatch Logs would hold them)")
	sc := bufio.NewScanner(bytes.NewReader(logs))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var compact bytes.Buffer
		if json.Compact(&compact, line) == nil {
			line = compact.Bytes()
		}
		p.line("  %s", line)
	}
}

// done closes the output with the elapsed time.
func (p *printer) done(total time.Duration) {
	p.line("")
	p.line("Done in %s. moto_server, the identity providers and the function were stopped, the temporary files removed.", round(total))
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
