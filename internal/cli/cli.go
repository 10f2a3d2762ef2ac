// Package cli implements the thumbprint-drift operator commands.
package cli

import (
	"context"
	"fmt"
	"io"
)

// Exit codes of the CLI, the same for every command and listed in --help
// (like terraform plan -detailed-exitcode, plus a code for usage errors).
const (
	// ExitOK: nothing to do. check: every provider in sync, updated or
	// skipped; thumbprint: the thumbprints were printed.
	ExitOK = 0
	// ExitError: could not run. A bad setting, no credentials, providers or
	// accounts not listed, an alert not delivered; thumbprint: the probe failed.
	ExitError = 1
	// ExitUsage: usage error. Bad flags or arguments, or a mode that
	// publishes with nowhere to publish; nothing was called.
	ExitUsage = 2
	// ExitProblems: problems found. check: a result is drift, expiring,
	// probe-failed, update-failed or account-failed; stage: no room for the
	// next thumbprint.
	ExitProblems = 3
)

// exitCodes is the exit code section of every --help.
const exitCodes = `exit codes:
  0  nothing to do: every provider in sync, updated or skipped
     (thumbprint: printed; stage: staged or already there)
  1  could not run: a bad setting, no credentials, providers or accounts not listed,
     an alert not delivered (thumbprint, stage: the probe or AWS failed)
  2  usage error: bad flags or arguments, or --mode alert|remediate with no SNS topic;
     nothing was called
  3  problems found (check): drift left in place, expiring, probe-failed,
     update-failed or account-failed (stage: no room, the live thumbprints and
     those seen live recently fill the list; nothing written)
`

const usage = `usage: thumbprint-drift <command> [flags]

commands:
  thumbprint URL   compute the live thumbprint of an OIDC issuer (URL with or without https://)
  check            compare every IAM OIDC provider's thumbprints with the live ones
  stage            add the next certificate's thumbprint to a provider ahead of a rotation

run 'thumbprint-drift <command> -h' for a command's flags

` + exitCodes

// Main runs the CLI with args (without the program name) and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ExitUsage
	}
	switch args[0] {
	case "thumbprint":
		return RunThumbprint(ctx, args[1:], stdout, stderr)
	case "check":
		return RunCheck(ctx, args[1:], stdout, stderr)
	case "stage":
		return RunStage(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return ExitOK
	default:
		fmt.Fprintf(stderr, "thumbprint-drift: unknown command %q\n\n%s", args[0], usage)
		return ExitUsage
	}
}
