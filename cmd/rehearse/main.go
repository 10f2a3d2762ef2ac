// Command rehearse (`make rehearse`) rehearses `sam deploy` on this machine for
// every parameter set of the matrix (internal/rehearsal): the real SAM
// transform, the stack created in moto_server's CloudFormation, the real
// function run with the stack's environment and role, every AWS call it made
// checked against the role's policies, the stack deleted. -set runs one set.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/rehearsal"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

func main() {
	only := flag.String("set", "", "run only the set of this name")
	verbose := flag.Bool("v", false, "also print the function's log lines")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *only, *verbose); err != nil {
		fmt.Fprintf(os.Stderr, "rehearse: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, only string, verbose bool) error {
	start := time.Now()
	root, err := testpeer.ModuleRoot(ctx)
	if err != nil {
		return err
	}
	opts := rehearsal.Options{Root: root, Out: os.Stdout, Verbose: verbose}
	if only != "" {
		s, ok := rehearsal.SetNamed(only)
		if !ok {
			return fmt.Errorf("no set %q in the matrix", only)
		}
		opts.Sets = []rehearsal.Set{s}
	}
	results, err := rehearsal.Run(ctx, opts)
	if errors.Is(err, testpeer.ErrMissing) {
		return fmt.Errorf("%w (pip install 'moto[server]' cfn-lint)", err)
	}
	fmt.Println()
	for _, r := range results {
		created := "not created"
		if r.Stack != nil {
			created = r.Stack.Status
		}
		fmt.Printf("%-22s transformed (%d resources), created (%s), function ran (%s), calls allowed (%d of %d), deleted (%s)\n",
			r.Set.Name, len(r.Resources), created, rehearsal.FormatCounts(r.Outcomes), len(r.Calls)-len(r.Denied()), len(r.Calls), r.Deleted["thumbprint-drift"])
	}
	if err != nil {
		return err
	}
	fmt.Printf("rehearsal: %d sets in %.1fs\n", len(results), time.Since(start).Seconds())
	return nil
}
