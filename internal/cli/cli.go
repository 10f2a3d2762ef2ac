// Package cli implements the thumbprint-drift operator commands.
package cli

import (
	"context"
	"fmt"
	"io"
)

// Exit codes of the CLI.
const (
	ExitOK    = 0 // nothing drifts
	ExitError = 1 // an error stopped the command or a result failed
	ExitUsage = 2 // bad flags or arguments
	ExitDrift = 3 // drift remains
)

const usage = `usage: thumbprint-drift <command> [flags]

commands:
  thumbprint URL   compute the live thumbprint of an OIDC issuer (URL with or without https://)
  check            compare every IAM OIDC provider's thumbprints with the live ones
  stage            add the next certificate's thumbprint to a provider ahead of a rotation

run 'thumbprint-drift <command> -h' for a command's flags
`

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
