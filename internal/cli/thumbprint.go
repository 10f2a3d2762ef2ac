package cli

import (
	"context"
	"fmt"
	"io"
)

// RunThumbprint implements `thumbprint-drift thumbprint URL`.
func RunThumbprint(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "thumbprint: not implemented yet")
	return ExitError
}
