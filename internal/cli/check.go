package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/app"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/oidcprovider"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// topicARN is an SNS topic ARN.
var topicARN = regexp.MustCompile(`^arn:aws(-[a-z]+)*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$`)

// RunCheck implements `thumbprint-drift check`: the Lambda's engine from a
// terminal. The default mode is report (nothing written, nothing published).
// Exit codes: ExitOK nothing to do, ExitProblems a result is a problem,
// ExitError the run could not complete, ExitUsage bad usage.
func RunCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mode := fs.String("mode", "report", "report (no writes, no alerts), alert (alerts only) or remediate (writes where safe, alerts)")
	output := fs.String("output", "table", "table or json (the function's report)")
	verbose := fs.Bool("v", false, "log each decision as JSON to stderr")
	topic := fs.String("topic-arn", "", "SNS topic alerts go to in modes alert and remediate; overrides SNS_TOPIC_ARN")
	stateTable := fs.String("state-table", "", "DynamoDB table of alert state (new, changed, reminder, resolved) in modes alert and remediate; overrides STATE_TABLE")
	var providers, roleARNs stringList
	fs.Var(&providers, "provider", "OIDC provider ARN to check (repeatable), arn:<partition>:iam::<account>:oidc-provider/<url>; default every provider")
	fs.Var(&roleARNs, "role-arn", "role ARN to assume in a member account (repeatable); overrides ACCOUNT_ROLE_ARNS")
	orgRole := fs.String("org-role-name", "", "role name to assume in every active account of the organisation; overrides ORG_ROLE_NAME")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: thumbprint-drift check [--mode report|alert|remediate] [--topic-arn ARN] [--state-table NAME] [--provider ARN]...\n"+
			"                             [--output table|json] [--role-arn ARN]... | [--org-role-name NAME]\n\n"+
			"Like terraform plan: prints, per provider, the stored and live thumbprints and the decision.\n"+
			"Settings come from the environment as for the function: SNS_TOPIC_ARN, STATE_TABLE,\nREALERT_INTERVAL, PROBE_FAILURES_TO_ALERT, EXPIRY_WARNING, CONCURRENCY, PROBE_CONCURRENCY,\n"+
			"PROBE_TIMEOUT, PROBE_HANDSHAKES, ALERT_FORMAT, EVENT_BUS_NAME, SECURITY_HUB,\nACCOUNT_ROLE_ARNS, ORG_ROLE_NAME, "+
			"ORG_INCLUDE_MANAGEMENT_ACCOUNT, ASSUME_ROLE_EXTERNAL_ID,\nACCOUNT_CONCURRENCY, and the AWS SDK's standard chain (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL).\n\n")
		fs.PrintDefaults()
		fmt.Fprint(stderr, "\n"+exitCodes)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "check: unexpected argument %q\n", fs.Arg(0))
		return ExitUsage
	}
	m, err := config.ParseMode(*mode)
	if err != nil {
		fmt.Fprintf(stderr, "check: --mode: %v\n", err)
		return ExitUsage
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintf(stderr, "check: --output %q: want table or json\n", *output)
		return ExitUsage
	}
	for _, arn := range providers {
		if _, err := oidcprovider.ParseARN(arn); err != nil {
			fmt.Fprintf(stderr, "check: --provider %v\n", err)
			return ExitUsage
		}
	}
	if *topic != "" && !topicARN.MatchString(*topic) {
		fmt.Fprintf(stderr, "check: --topic-arn %q: not an SNS topic ARN; want one like arn:aws:sns:us-east-1:123456789012:name\n", *topic)
		return ExitUsage
	}
	if len(roleARNs) > 0 && *orgRole != "" {
		fmt.Fprintln(stderr, "check: --role-arn and --org-role-name: choose one way to name the accounts")
		return ExitUsage
	}
	if *stateTable != "" {
		if err := config.CheckTableName(*stateTable); err != nil {
			fmt.Fprintf(stderr, "check: --state-table %v\n", err)
			return ExitUsage
		}
	}
	if *orgRole != "" {
		if err := config.CheckRoleName(*orgRole); err != nil {
			fmt.Fprintf(stderr, "check: --org-role-name %v\n", err)
			return ExitUsage
		}
	}
	cfg, err := config.Load(func(k string) string {
		if k == "STATE_TABLE" && *stateTable != "" {
			return *stateTable // validated above, as the variable is
		}
		return os.Getenv(k)
	})
	if err != nil {
		fmt.Fprintf(stderr, "check: %v\n", err)
		return ExitError
	}
	if len(roleARNs) > 0 {
		if cfg.AccountRoleARNs, err = config.ParseRoleARNs(strings.Join(roleARNs, ",")); err != nil {
			fmt.Fprintf(stderr, "check: --role-arn: %v\n", err)
			return ExitUsage
		}
		cfg.OrgRoleName = ""
	}
	if *orgRole != "" {
		cfg.OrgRoleName, cfg.AccountRoleARNs = *orgRole, nil
	}
	if *topic != "" {
		cfg.TopicARN = *topic
	}
	if m != config.ModeReport && cfg.TopicARN == "" && cfg.EventBusName == "" && !cfg.SecurityHub {
		fmt.Fprintf(stderr, "check: --mode %s publishes alerts, but no SNS topic is set: give one with --topic-arn ARN or "+
			"SNS_TOPIC_ARN=ARN (the stack's AlertTopicArn output), or use --mode report to see the plan without publishing\n", m)
		return ExitUsage
	}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewJSONHandler(stderr, nil))
	}
	svc, err := app.New(ctx, cfg, logger)
	if err != nil {
		fmt.Fprintf(stderr, "check: %v\n", err)
		return ExitError
	}
	rep, runErr := svc.Run(ctx, drift.Request{Mode: m, Providers: providers})
	if errors.Is(runErr, drift.ErrListFailed) {
		what := "providers"
		if cfg.MultiAccount() {
			what = "the accounts"
		}
		fmt.Fprintf(stderr, "check: could not list %s, nothing checked: %v\n", what, listCause(runErr))
		return ExitError
	}
	if rep != nil {
		if *output == "json" {
			if err := WriteReport(stdout, rep); err != nil {
				fmt.Fprintf(stderr, "check: %v\n", err)
				return ExitError
			}
		} else {
			WritePlan(stdout, rep)
		}
	}
	if runErr != nil {
		fmt.Fprintf(stderr, "check: %v\n", runErr)
	}
	if rep == nil {
		return ExitError
	}
	return ExitCode(rep, runErr)
}

// WriteReport writes rep as the function's report (check --output json),
// indented: every result's detail cut to alert.MaxDetailBytes, as in the
// function's response and messages; no result is left out, since no
// response bound applies to standard output.
func WriteReport(w io.Writer, rep *drift.Report) error {
	alert.CutDetails(rep)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// listCause is the listing failure inside a run's error, without the
// drift.ErrListFailed label; err itself when it is not found.
func listCause(err error) error {
	var walk func(error) error
	walk = func(e error) error {
		multi, ok := e.(interface{ Unwrap() []error })
		if !ok {
			return nil
		}
		errs := multi.Unwrap()
		if len(errs) == 2 && errs[0] == drift.ErrListFailed {
			return errs[1]
		}
		for _, c := range errs {
			if found := walk(c); found != nil {
				return found
			}
		}
		return nil
	}
	if cause := walk(err); cause != nil {
		return cause
	}
	return err
}

// ExitCode is the check command's exit code for a run's report and error:
// ExitError when the run could not complete (listing failed, an alert was not
// delivered: any error that is not a result's own), else ExitProblems when a
// result is a problem (drift, expiring, probe-failed, update-failed,
// account-failed), else ExitOK.
func ExitCode(rep *drift.Report, runErr error) int {
	if couldNotRun(runErr) {
		return ExitError
	}
	for o, n := range rep.Counts {
		if n > 0 && o.Problem() {
			return ExitProblems
		}
	}
	return ExitOK
}

// couldNotRun reports whether err holds an error other than a result's own
// (update-failed, account-failed), which the report already shows.
func couldNotRun(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, drift.ErrListFailed):
		return true
	}
	if multi, ok := err.(interface{ Unwrap() []error }); ok {
		return slices.ContainsFunc(multi.Unwrap(), couldNotRun)
	}
	return !errors.Is(err, drift.ErrUpdateFailed) && !errors.Is(err, drift.ErrAccountFailed)
}

// WritePlan prints the report like a plan: per provider its stored list, live
// list, decision and the list written or that would be written; in
// organisation mode grouped by account, skipped and failed accounts with their
// reason, then requested providers no account of the run holds.
func WritePlan(w io.Writer, rep *drift.Report) {
	if len(rep.Accounts) == 0 {
		writeResults(w, rep.Results)
	}
	sections := map[string]bool{}
	for _, a := range rep.Accounts {
		sections[a.AccountID] = true
		via := "own credentials"
		switch {
		case a.Skipped != "":
			via = "skipped"
		case a.RoleARN != "":
			via = a.RoleARN
		}
		fmt.Fprintf(w, "== account %s (%s)\n", a.AccountID, via)
		if a.Error != "" {
			fmt.Fprintf(w, "  account-failed (critical): %s\n\n", a.Error)
			continue
		}
		if a.Skipped != "" {
			fmt.Fprintf(w, "  skipped: %s\n\n", a.Skipped)
		}
		var mine []drift.Result
		for _, r := range rep.Results {
			if r.AccountID == a.AccountID && r.ProviderARN != "" {
				mine = append(mine, r)
			}
		}
		if len(mine) == 0 && a.Skipped == "" {
			fmt.Fprintf(w, "  no providers\n\n")
		}
		writeResults(w, mine)
	}
	if len(rep.Accounts) > 0 {
		var elsewhere []drift.Result
		for _, r := range rep.Results {
			if !sections[r.AccountID] && r.ProviderARN != "" {
				elsewhere = append(elsewhere, r)
			}
		}
		if len(elsewhere) > 0 {
			fmt.Fprintf(w, "== requested providers in no account of this run\n")
			writeResults(w, elsewhere)
		}
		fmt.Fprintf(w, "%d accounts; ", len(rep.Accounts))
	}
	writeSummary(w, rep)
}

func writeResults(w io.Writer, results []drift.Result) {
	for _, r := range results {
		if r.ProviderARN == "" {
			continue // an account's own result (failed or skipped): shown in its heading
		}
		fmt.Fprintf(w, "%s\n", r.ProviderARN)
		if r.URL != "" {
			fmt.Fprintf(w, "  url       %s\n", r.URL)
		}
		decision := string(r.Outcome)
		if r.Severity != drift.SeverityNone {
			decision += " (" + string(r.Severity) + ")"
		}
		if r.BreaksAssumeRole && (r.Outcome == drift.Drift || r.Outcome == drift.Reverted || r.Outcome == drift.UpdateFailed) {
			decision += ": AssumeRoleWithWebIdentity will fail for tokens from this issuer"
		}
		fmt.Fprintf(w, "  decision  %s\n", decision)
		if r.Mode != "" {
			fmt.Fprintf(w, "  mode      %s\n", r.Mode)
		}
		if r.ManagedBy != "" {
			fmt.Fprintf(w, "  managed   by code: %s\n", r.ManagedBy)
		}
		if r.LastWriter != nil {
			fmt.Fprintf(w, "  writer    %s\n", r.LastWriter)
		}
		if len(r.LiveThumbprints) > 0 {
			trust := "no (STS checks the thumbprint)"
			if r.PubliclyTrusted {
				trust = "yes (STS validates the chain itself)"
			}
			fmt.Fprintf(w, "  trusted   %s\n", trust)
		}
		fmt.Fprintf(w, "  stored    %s\n", listOrDash(r.StoredThumbprints))
		fmt.Fprintf(w, "  live      %s\n", listOrDash(r.LiveThumbprints))
		switch r.Outcome {
		case drift.Updated:
			fmt.Fprintf(w, "  wrote     %s\n", listOrDash(r.NewThumbprints))
		case drift.Drift, drift.Reverted, drift.UpdateFailed:
			fmt.Fprintf(w, "  would set %s\n", listOrDash(r.NewThumbprints))
		}
		if r.CodeFix != "" {
			printCode(w, "  code fix  ", r.CodeFix)
		}
		if r.Detail != "" {
			fmt.Fprintf(w, "  detail    %s\n", r.Detail)
		}
		fmt.Fprintln(w)
	}
}

func writeSummary(w io.Writer, rep *drift.Report) {
	var parts []string
	for _, o := range append(drift.Outcomes, drift.AccountFailed) {
		if n := rep.Counts[o]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, o))
		}
	}
	if len(parts) == 0 {
		parts = []string{"no providers"}
	}
	fmt.Fprintf(w, "%d checked in mode %s: %s\n", rep.Checked, rep.Mode, strings.Join(parts, ", "))
}

func listOrDash(l []string) string {
	if len(l) == 0 {
		return "-"
	}
	return strings.Join(l, " ")
}
