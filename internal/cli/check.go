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
	"strings"

	"github.com/thumbprint-drift/thumbprint-drift/internal/app"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// RunCheck implements `thumbprint-drift check`: the Lambda's engine from a
// terminal. The default mode is report (nothing written, nothing published).
// Exit codes: 0 nothing drifts, 3 drift remains, 1 on errors (including a
// provider that could not be probed), 2 on bad usage.
func RunCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mode := fs.String("mode", "report", "report (no writes, no SNS), alert (SNS only) or remediate (writes where safe)")
	output := fs.String("output", "table", "table or json")
	verbose := fs.Bool("v", false, "log each decision as JSON to stderr")
	var providers, roleARNs stringList
	fs.Var(&providers, "provider", "provider ARN to check (repeatable); default every provider")
	fs.Var(&roleARNs, "role-arn", "role ARN to assume in a member account (repeatable); overrides ACCOUNT_ROLE_ARNS")
	orgRole := fs.String("org-role-name", "", "role name to assume in every active account of the organisation; overrides ORG_ROLE_NAME")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: thumbprint-drift check [--mode report|alert|remediate] [--provider ARN]... [--output table|json]\n"+
			"                             [--role-arn ARN]... | [--org-role-name NAME]\n\n"+
			"Settings come from the environment as for the function: SNS_TOPIC_ARN, CONCURRENCY,\nPROBE_TIMEOUT, PROBE_HANDSHAKES, ACCOUNT_ROLE_ARNS, ORG_ROLE_NAME,\nASSUME_ROLE_EXTERNAL_ID, ACCOUNT_CONCURRENCY, and the AWS SDK's standard chain.\n\n")
		fs.PrintDefaults()
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
	if len(roleARNs) > 0 && *orgRole != "" {
		fmt.Fprintln(stderr, "check: --role-arn and --org-role-name: choose one way to name the accounts")
		return ExitUsage
	}
	cfg, err := config.Load(os.Getenv)
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
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewJSONHandler(stderr, nil))
	}
	engine, err := app.NewEngine(ctx, cfg, logger)
	if err != nil {
		fmt.Fprintf(stderr, "check: %v\n", err)
		return ExitError
	}
	rep, runErr := engine.Run(ctx, drift.Request{Mode: m, Providers: providers})
	if rep != nil {
		if *output == "json" {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(rep); err != nil {
				fmt.Fprintf(stderr, "check: %v\n", err)
				return ExitError
			}
		} else {
			WritePlan(stdout, rep)
		}
	}
	if runErr != nil {
		fmt.Fprintf(stderr, "check: %v\n", runErr)
		return ExitError
	}
	return ExitCode(rep)
}

// ExitCode is the check command's exit code for a report: 1 when a provider
// could not be probed or updated or an account failed, 3 when drift remains,
// else 0.
func ExitCode(rep *drift.Report) int {
	if rep.Counts[drift.ProbeFailed] > 0 || rep.Counts[drift.UpdateFailed] > 0 || rep.Counts[drift.AccountFailed] > 0 {
		return ExitError
	}
	if rep.Counts[drift.Drift] > 0 {
		return ExitDrift
	}
	return ExitOK
}

// WritePlan prints the report like a plan: per provider its stored list, live
// list, decision and the list written or that would be written; in
// organisation mode grouped by account.
func WritePlan(w io.Writer, rep *drift.Report) {
	if len(rep.Accounts) == 0 {
		writeResults(w, rep.Results)
	}
	for _, a := range rep.Accounts {
		via := "own credentials"
		if a.RoleARN != "" {
			via = a.RoleARN
		}
		fmt.Fprintf(w, "== account %s (%s)\n", a.AccountID, via)
		if a.Error != "" {
			fmt.Fprintf(w, "  account-failed (critical): %s\n\n", a.Error)
			continue
		}
		var mine []drift.Result
		for _, r := range rep.Results {
			if r.AccountID == a.AccountID {
				mine = append(mine, r)
			}
		}
		if len(mine) == 0 {
			fmt.Fprintf(w, "  no providers\n\n")
		}
		writeResults(w, mine)
	}
	if len(rep.Accounts) > 0 {
		fmt.Fprintf(w, "%d accounts; ", len(rep.Accounts))
	}
	writeSummary(w, rep)
}

func writeResults(w io.Writer, results []drift.Result) {
	for _, r := range results {
		if r.Outcome == drift.AccountFailed {
			continue // shown in its account's heading
		}
		fmt.Fprintf(w, "%s\n", r.ProviderARN)
		if r.URL != "" {
			fmt.Fprintf(w, "  url       %s\n", r.URL)
		}
		decision := string(r.Outcome)
		if r.Severity != drift.SeverityNone {
			decision += " (" + string(r.Severity) + ")"
		}
		if r.BreaksAssumeRole && (r.Outcome == drift.Drift || r.Outcome == drift.UpdateFailed) {
			decision += ": AssumeRoleWithWebIdentity will fail for tokens from this issuer"
		}
		fmt.Fprintf(w, "  decision  %s\n", decision)
		if r.Mode != "" {
			fmt.Fprintf(w, "  mode      %s\n", r.Mode)
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
		case drift.Drift, drift.UpdateFailed:
			fmt.Fprintf(w, "  would set %s\n", listOrDash(r.NewThumbprints))
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
