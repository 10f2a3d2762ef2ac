// Command demo shows thumbprint-drift's whole job on this machine, before
// anything is deployed: `make demo` (or `go run ./cmd/demo`).
//
// It starts moto_server (IAM, SNS, SQS) on a free loopback port and local TLS
// identity providers on a "public" chain (trusted through SSL_CERT_FILE) and a
// private one, creates an SNS topic with an SQS queue subscribed, seeds four IAM
// OIDC providers (in sync; drifted on the public chain; drifted on the private
// chain; unreachable), builds the real function binary and runs it once through
// a local Lambda Runtime API with events/scheduled.json. Then it prints the
// report, every SNS message and each provider's thumbprint list before and
// after. It stops everything it started, also on Ctrl-C or failure.
//
// Flags: -v also prints the function's JSON log lines; -keep leaves moto_server
// and the identity providers running until Ctrl-C, to try the CLI against them.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	var opts options
	flag.BoolVar(&opts.Verbose, "v", false, "also print the function's JSON log lines")
	flag.BoolVar(&opts.Keep, "keep", false, "leave moto_server and the identity providers running until Ctrl-C, to try the CLI against them")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./cmd/demo [-v] [-keep]\n\n"+
			"Runs the drift-check function once against local AWS (moto_server) and local\n"+
			"identity providers, and prints what it did. Needs moto_server and go on PATH.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Stdout, opts)
	interrupted := ctx.Err() != nil
	stop()
	switch {
	case err == nil:
		return
	case interrupted:
		fmt.Fprintln(os.Stderr, "demo: interrupted; everything it started was stopped")
		os.Exit(130)
	default:
		fmt.Fprintf(os.Stderr, "demo failed: %v\n", err)
		os.Exit(1)
	}
}
