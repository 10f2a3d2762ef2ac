// Command demo (`make demo`) shows thumbprint-drift's whole job on this
// machine: the real function binary behind a local Lambda Runtime API, against
// moto_server (IAM, SNS, SQS, DynamoDB, EventBridge, Security Hub) and local
// TLS identity providers, in six scenes: the schedule alerting (new), the
// schedule again (silent), an operator's fix (resolved), a CloudTrail-triggered
// check (the function's own update ignored), an expiring certificate, and
// infrastructure as code (a list Terraform set back: reverted, never fought). Each
// scene prints the report and what reached SNS, EventBridge and Security Hub,
// and checks that it went as it says. -v prints the function's log lines;
// -keep leaves the world running until Ctrl-C, for the CLI.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	shtypes "github.com/aws/aws-sdk-go-v2/service/securityhub/types"

	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/handler"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

func main() {
	verbose := flag.Bool("v", false, "also print the function's JSON log lines")
	keep := flag.Bool("keep", false, "leave moto_server and the identity providers running until Ctrl-C, to try the CLI against them")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, *verbose, *keep); err != nil {
		fmt.Fprintf(os.Stderr, "demo failed: %v\n", err)
		if ctx.Err() != nil {
			os.Exit(130) // interrupted; everything it started was stopped
		}
		os.Exit(1)
	}
}

// demo is what the scenes share. err is sticky: once set, invocations do
// nothing, so the scenes read as a script and stop at the first error.
type demo struct {
	out      io.Writer
	verbose  bool
	w        *world
	fn       *function
	root     string
	err      error
	problems []string // what did not go as the scenes say
}

// result is one invocation seen from outside the function: its report and
// log, and what reached the topic, the event rule and Security Hub.
type result struct {
	report   *drift.Report
	logs     []byte
	took     time.Duration
	msgs     []testpeer.Delivered
	events   []testpeer.Event
	findings map[string]shtypes.AwsSecurityFinding // every finding after the run, by id
}

// run is the whole demo: verbose prints the function's log lines, keep leaves
// the world running until ctx ends. It stops everything it started.
func run(ctx context.Context, stdout io.Writer, verbose, keep bool) error {
	start := time.Now()
	var c cleanups
	defer c.run()
	dir, err := os.MkdirTemp("", demoName+"-")
	if err != nil {
		return fmt.Errorf("create temporary directory: %w", err)
	}
	c.add(func() { _ = os.RemoveAll(dir) })
	root, err := testpeer.ModuleRoot(ctx)
	if err != nil {
		return fmt.Errorf("run the demo inside the repository with go on PATH (make demo): %w", err)
	}
	// The build (the deployed bootstrap's code, for this machine) runs while moto_server starts.
	bin, built := filepath.Join(dir, "bootstrap"), make(chan error, 1)
	go func() { built <- testpeer.BuildFunction(ctx, root, bin) }()
	w, err := startWorld(ctx, &c, dir)
	if err = errors.Join(err, <-built); err != nil {
		return err
	}
	settings := []string{"SNS_TOPIC_ARN=" + w.alerts.TopicARN, "STATE_TABLE=" + stateTable, "EVENT_BUS_NAME=" + eventBus,
		"SECURITY_HUB=true", "DRIFT_MODE=remediate", "PROBE_TIMEOUT=3s", "PROBE_FAILURES_TO_ALERT=1"}
	fn, err := startFunction(ctx, bin, dir, w.moto, append(settings, w.trust...))
	if err != nil {
		return err
	}
	c.add(fn.stop)
	d := &demo{out: stdout, verbose: verbose, w: w, fn: fn, root: root}
	d.setup(append(settings, "AWS_LAMBDA_FUNCTION_NAME="+functionName))
	d.scenes(ctx)
	if d.err != nil {
		return d.err
	}
	if len(d.problems) > 0 {
		return fmt.Errorf("the demo did not go as its scenes say:\n  %s", strings.Join(d.problems, "\n  "))
	}
	if keep {
		d.line("\n== Still running (-keep): Ctrl-C stops everything. From another shell in the repository:")
		d.line("    export %s", strings.Join(append(w.moto.Env(), w.trust...), " "))
		d.line("    make cli && bin/thumbprint-drift thumbprint %s", w.providers[0].url)
		d.line("    bin/thumbprint-drift check --state-table %s", stateTable)
		<-ctx.Done()
	}
	c.run()
	d.line("\nDone in %s; moto_server, the identity providers and the function stopped, temporary files removed.",
		time.Since(start).Round(100*time.Millisecond))
	if keep {
		return nil
	}
	return ctx.Err()
}

// scenes is the demo's script.
func (d *demo) scenes(ctx context.Context) {
	p1, p3, p6, p7 := d.w.providers[0], d.w.providers[2], d.w.providers[5], d.w.providers[6]

	d.line("\n== Scene 1: the hourly schedule, run 1 (events/scheduled.json)")
	r1 := d.invoke(ctx, "scheduled.json")
	d.show(r1, drift.Drift)
	d.expect("run 1", r1, map[int]string{1: "in-sync", 2: "updated applied", 3: "drift new", 4: "drift new", 5: "probe-failed new"}, 3)

	d.line("\n== Scene 2: the schedule again, run 2")
	r2 := d.invoke(ctx, "scheduled.json")
	d.show(r2, "")
	d.para("  ", "Silent: the state table remembers what was alerted, so the same problems with the same live thumbprints "+
		"send nothing. A reminder follows REALERT_INTERVAL (24h) after the last alert; a new rotation would be `changed`.")
	d.expect("run 2", r2, map[int]string{1: "in-sync", 2: "in-sync", 3: "drift", 4: "drift", 5: "probe-failed"}, 0)

	d.line("\n== Scene 3: an operator runs the fix command for (3), then the schedule's run 3")
	var fix []string
	if r := resultFor(r1, p3.arn); r != nil {
		fix = r.NewThumbprints
	}
	d.line("  The alert's fix command for (3), here through the SDK's IAM client:")
	d.line("  $ aws iam update-open-id-connect-provider-thumbprint --open-id-connect-provider-arn %s \\", p3.arn)
	d.line("      --thumbprint-list %s", strings.Join(fix, " "))
	d.do(d.w.setThumbprints(ctx, p3, fix))
	r3 := d.invoke(ctx, "scheduled.json")
	d.show(r3, "")
	d.para("  ", "(3) is resolved: one message, its finding archived. (4), on the same host, still drifts and stays silent.")
	d.expect("run 3", r3, map[int]string{1: "in-sync", 2: "in-sync", 3: "in-sync resolved", 4: "drift", 5: "probe-failed"}, 1)

	d.line("\n== Scene 4: a CloudTrail-triggered check (events/cloudtrail-update-console.json)")
	stale := "1b511abead59c6ce207077c0bf0e0043b1382612" // the sample's thumbprintList
	d.para("  ", "An operator writes the thumbprint "+stale+" to (1) from the IAM console; CloudTrail records "+
		"UpdateOpenIDConnectProviderThumbprint and the rule invokes the function with that event (the sample, naming (1)). "+
		"A console writer does not make (1) owned by code, so the function fixes it. Only (1) is checked:")
	d.do(d.w.setThumbprints(ctx, p1, []string{stale}))
	r4 := d.invoke(ctx, "cloudtrail-update-console.json", "token.actions.githubusercontent.com", p1.url)
	d.show(r4, "")
	d.expect("CloudTrail check", r4, map[int]string{1: "updated applied"}, 1)
	d.para("  ", "The function's own update makes CloudTrail send another event (events/cloudtrail-own-update.json, naming "+
		"(1), its role session named after the function). It is recognised and not checked again:")
	own := d.invoke(ctx, "cloudtrail-own-update.json", "token.actions.githubusercontent.com", p1.url)
	if own != nil {
		reason := logField(own.logs, "event not checked", "reason")
		d.line("  report: %d checked; log: \"event not checked\" reason=%s", own.report.Checked, reason)
		d.para("          ", logField(own.logs, "event not checked", "detail"))
		d.check(reason == string(handler.IgnoreOwnUpdate), "own update: log reason %q, want %s", reason, handler.IgnoreOwnUpdate)
	}
	d.expect("own update", own, map[int]string{}, 0)

	d.line("\n== Scene 5: early warning, expiring (events/cloudtrail-create.json)")
	d.para("  ", "An operator creates (6) "+p6.url+", on the private chain (AWS enforces its thumbprint) and storing its "+
		"live thumbprint; its issuing CA's certificate, the last one served (whose SHA-1 is the thumbprint), expires in 10 days, "+
		"inside EXPIRY_WARNING (720h): the next chain will carry a new thumbprint. The creation's CloudTrail "+
		"event (the sample, naming (6)) checks it:")
	d.do(d.w.create(ctx, p6))
	r5 := d.invoke(ctx, "cloudtrail-create.json", "gitlab.example.com", p6.url)
	d.show(r5, "")
	d.expect("expiring", r5, map[int]string{6: "expiring new"}, 1)

	d.iac(ctx, p7)
}

// do records err, the first one only.
func (d *demo) do(err error) {
	if d.err == nil {
		d.err = err
	}
}

// sample is events/name with replace's pairs replaced (its provider's host
// by a demo provider's URL, which renames the provider's ARN too).
func sample(root, name string, replace ...string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(root, "events", name))
	return []byte(strings.NewReplacer(replace...).Replace(string(b))), err
}

// invoke sends sample(name, replace...) to the function and collects what
// it sent. It does nothing after an error.
func (d *demo) invoke(ctx context.Context, name string, replace ...string) *result {
	if d.err != nil {
		return nil
	}
	payload, err := sample(d.root, name, replace...)
	if err != nil {
		d.do(fmt.Errorf("read sample event: %w", err))
		return nil
	}
	start := time.Now()
	r := &result{}
	if r.report, r.logs, err = d.fn.invoke(ctx, payload); err != nil {
		d.do(err)
		return nil
	}
	r.took = time.Since(start)
	var errs [3]error
	r.msgs, errs[0] = d.w.alerts.Drain(ctx)
	r.events, errs[1] = d.w.events.Drain(ctx)
	r.findings, errs[2] = d.w.findings(ctx)
	d.do(errors.Join(errs[:]...))
	return r
}

// check records a problem unless ok.
func (d *demo) check(ok bool, format string, args ...any) {
	if !ok {
		d.problems = append(d.problems, fmt.Sprintf(format, args...))
	}
}

// expect checks a run against its scene: the providers it reports, each as
// "outcome[ transition]", how many messages (and events) it sent, and that
// each message's providers have their finding, archived when resolved; an
// applied that closes no alerted problem has none (findings are created on
// problems).
func (d *demo) expect(run string, r *result, want map[int]string, messages int) {
	if r == nil {
		return
	}
	d.check(r.report.Checked == len(want), "%s: %d providers checked, want %d", run, r.report.Checked, len(want))
	for n, w := range want {
		got := "missing from the report"
		if res := resultFor(r, d.w.providers[n-1].arn); res != nil {
			got = strings.TrimSpace(string(res.Outcome) + " " + string(res.Transition))
		}
		d.check(got == w, "%s: provider (%d) %s, want %s", run, n, got, w)
	}
	d.check(len(r.msgs) == messages && len(r.events) == messages, "%s: %d SNS messages and %d events, want %d",
		run, len(r.msgs), len(r.events), messages)
	for _, m := range r.msgs {
		for _, arn := range m.ProviderARNs() {
			f, closed := r.findings[findingID(arn)], m.Attr("transition") == "resolved" || m.Attr("transition") == "applied"
			if m.Attr("transition") == "applied" && f.Id == nil {
				continue
			}
			d.check((f.RecordState == shtypes.RecordStateArchived) == closed && f.Compliance != nil &&
				(f.Compliance.Status == shtypes.ComplianceStatusPassed) == closed, "%s: finding of %s: %q", run, arn, f.RecordState)
		}
	}
}
