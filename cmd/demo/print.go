package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

func (d *demo) line(format string, args ...any) { fmt.Fprintf(d.out, format+"\n", args...) }

// para prints text wrapped at 100 columns, the first line starting with
// first, the others indented as far.
func (d *demo) para(first, text string) {
	line, rest := first, strings.Repeat(" ", len(first))
	for i, word := range strings.Fields(text) {
		switch {
		case i == 0:
			line += word
		case len(line)+1+len(word) > 100:
			d.line("%s", line)
			line = rest + word
		default:
			line += " " + word
		}
	}
	d.line("%s", line)
}

// setup describes the world and the function's settings.
func (d *demo) setup(settings []string) {
	w := d.w
	d.line("thumbprint-drift demo: the real drift-check function against local AWS (moto_server) and local")
	d.line("OIDC identity providers, in six scenes. Nothing leaves this machine.")
	d.line("\n== Setup")
	d.line("  moto_server   %s (IAM, SNS, SQS, DynamoDB, EventBridge, Security Hub)", w.moto.Endpoint)
	d.line("  alerts        SNS topic %s -> SQS queue", w.alerts.TopicARN)
	d.line("                EventBridge bus %q, rule on source %q -> SQS queue; Security Hub enabled", eventBus, alert.EventSource)
	d.line("  state         DynamoDB table %s (the template's key schema)", stateTable)
	d.line("  trust store   SSL_CERT_FILE holds only \"Demo Public Root CA\"; \"Demo Corp Private Root CA\" is not trusted")
	d.line("  providers     IAM OIDC providers, each storing one thumbprint:")
	tw := tabwriter.NewWriter(d.out, 0, 0, 2, ' ', 0)
	for _, p := range w.providers {
		fmt.Fprintf(tw, "    (%d) %s\t%s\n", p.n, p.url, p.story)
	}
	tw.Flush()
	d.line("  function      ./functions/drift-check built for this machine, one warm process behind a local Lambda Runtime API:")
	d.para("                ", strings.Join(settings, " "))
	d.para("                ", "PROBE_FAILURES_TO_ALERT=1: the default, 2, alerts an unreachable host only when the next "+
		"run fails too (a blip is not worth a message); the demo alerts at once so that run 1 shows every alert.")
}

// show prints what one invocation did: its report and log, then every
// alert, with the email text of the message about outcome email (if any).
func (d *demo) show(r *result, email drift.Outcome) {
	if r == nil {
		return
	}
	var counts []string
	for _, o := range drift.Outcomes {
		if n := r.report.Counts[o]; n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, o))
		}
	}
	d.line("  report: mode %s, %d checked in %s: %s", r.report.Mode, r.report.Checked, r.took.Round(time.Millisecond), strings.Join(counts, ", "))
	tw := tabwriter.NewWriter(d.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "      URL\tOUTCOME\tSEVERITY\tTRANSITION\tTRUSTED\tSTORED -> NEW")
	var details []*drift.Result
	for _, p := range d.w.providers {
		res := resultFor(r, p.arn)
		if res == nil {
			continue
		}
		transition, trusted, change := cmp.Or(string(res.Transition), "-"), "-", shortList(res.StoredThumbprints)+" (kept)"
		if len(res.LiveThumbprints) > 0 {
			trusted = map[bool]string{true: "yes", false: "no"}[res.PubliclyTrusted]
		}
		switch res.Outcome {
		case drift.Updated:
			change = shortList(res.StoredThumbprints) + " -> " + shortList(res.NewThumbprints) + " (written)"
		case drift.Drift, drift.Reverted, drift.UpdateFailed:
			change = shortList(res.StoredThumbprints) + " -> " + shortList(res.NewThumbprints) + " (not written)"
		}
		fmt.Fprintf(tw, "  (%d) %s\t%s\t%s\t%s\t%s\t%s\n", p.n, res.URL, res.Outcome, res.Severity, transition, trusted, change)
		if res.Detail != "" && res.Outcome != drift.Updated && res.Transition != "" {
			details = append(details, res)
		}
	}
	tw.Flush()
	for _, res := range details {
		d.para(fmt.Sprintf("      (%d) ", d.w.number(res.ProviderARN)), res.Detail)
	}
	d.logs(r.logs)
	if len(r.msgs) == 0 {
		d.line("  alerts: none: no SNS message, no EventBridge event, no Security Hub import")
		return
	}
	d.line("  SNS: %d message(s), read back from the topic's SQS subscription", len(r.msgs))
	for _, m := range r.msgs {
		d.message(m)
	}
	for _, m := range r.msgs {
		if m.Attr("outcome") == string(email) {
			d.email(m)
		}
	}
	d.line("  EventBridge: %d event(s) on the %s bus, read back from the rule's SQS target", len(r.events), eventBus)
	for _, e := range r.events {
		var doc alert.Document
		d.do(json.Unmarshal(e.Detail, &doc))
		d.line("    source=%s detail-type=%q transition=%s outcome=%s count=%d", e.Source, e.DetailType, doc.Transition, doc.Outcome, doc.Count)
	}
	d.line("  Security Hub: the findings of the messages' providers, read back with GetFindings")
	tw = tabwriter.NewWriter(d.out, 0, 0, 2, ' ', 0)
	for _, m := range r.msgs {
		for _, arn := range m.ProviderARNs() {
			if f, ok := r.findings[findingID(arn)]; ok {
				fmt.Fprintf(tw, "    (%d) %s\t%s\t%s\t%s\n", d.w.number(arn), f.RecordState, f.Compliance.Status, f.Severity.Label, aws.ToString(f.Id))
			}
		}
	}
	tw.Flush()
}

// message prints one SNS message: subject, attributes, providers, fixes.
func (d *demo) message(m testpeer.Delivered) {
	d.line("    %s", m.Subject)
	var attrs, names []string
	for k, v := range m.MessageAttributes {
		attrs = append(attrs, k+"="+v.Value)
	}
	sort.Strings(attrs)
	d.para("      attributes  ", strings.Join(attrs, " "))
	for _, res := range m.Results() {
		names = append(names, fmt.Sprintf("(%d) %s", d.w.number(str(res["provider_arn"])), str(res["url"])))
	}
	d.line("      providers   %s", strings.Join(names, ", "))
	for _, res := range m.Results() {
		if by := str(res["managed_by"]); by != "" {
			d.line("      managed by  %s", by)
		}
		if w, ok := res["last_writer"].(map[string]any); ok {
			d.line("      last writer %s %s at %s", str(w["tool"]), str(w["principal"]), str(w["at"]))
		}
		if code := str(res["code_fix"]); code != "" {
			d.line("      code fix    %s", strings.ReplaceAll(code, "\n", "\n                  "))
		}
		if fix := str(res["fix"]); fix != "" {
			d.line("      fix         %s", fix)
		}
	}
}

// email prints the email variant of m: what an email subscriber reads.
func (d *demo) email(m testpeer.Delivered) {
	var doc alert.Document
	d.do(json.Unmarshal([]byte(m.Message), &doc))
	d.line("  Email text of %q:", m.Subject)
	d.para("  ", "the same publish carries it as the message's \"email\" variant (MessageStructure json). moto "+
		"sends no email, so the demo renders it from the delivered JSON with the function's own alert.EmailText.")
	for _, l := range strings.Split(strings.TrimRight(alert.EmailText(doc), "\n"), "\n") {
		d.line("    | %s", l)
	}
}

// logs prints how many lines the function logged, and with -v the lines.
func (d *demo) logs(logs []byte) {
	lines := bytes.Split(bytes.TrimSpace(logs), []byte("\n"))
	d.line("  function log: %d JSON lines%s", len(lines), map[bool]string{true: ":", false: " (-v prints them)"}[d.verbose])
	for i := 0; d.verbose && i < len(lines); i++ {
		d.line("    %s", lines[i])
	}
}

// logField returns field of the first log line whose message is msg.
func logField(logs []byte, msg, field string) string {
	for _, l := range bytes.Split(logs, []byte("\n")) {
		var rec map[string]any
		if json.Unmarshal(l, &rec) == nil && rec["message"] == msg {
			return str(rec[field])
		}
	}
	return ""
}

// number is the number of the provider arn names; 0 for none.
func (w *world) number(arn string) int {
	for _, p := range w.providers {
		if p.arn != "" && p.arn == arn {
			return p.n
		}
	}
	return 0
}

// findingID is the id of a provider's Security Hub finding.
func findingID(arn string) string { return alert.FindingID(drift.Result{ProviderARN: arn}) }

// resultFor returns r's result for a provider ARN, or nil.
func resultFor(r *result, arn string) *drift.Result {
	for i := 0; r != nil && i < len(r.report.Results); i++ {
		if res := &r.report.Results[i]; arn != "" && res.ProviderARN == arn {
			return res
		}
	}
	return nil
}

// shortList cuts each thumbprint to 8 hex digits.
func shortList(list []string) string {
	out := make([]string, len(list))
	for i, tp := range list {
		out[i] = tp[:min(8, len(tp))]
	}
	return strings.Join(out, " ")
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
