package cli

import (
	"context"
	"fmt"
	"io"
)

// RunCheck implements `thumbprint-drift check`.
func RunCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "check: not implemented yet")
	return ExitError
}
