// Command thumbprint-drift is the operator CLI: it computes live OIDC provider
// thumbprints and runs the same drift check as the Lambda function.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/thumbprint-drift/thumbprint-drift/internal/app"
	"github.com/thumbprint-drift/thumbprint-drift/internal/cli"
)

func main() {
	cli.NewSeenRecorder = func(ctx context.Context, table string) (cli.SeenRecorder, error) {
		return app.OpenStageState(ctx, table)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
