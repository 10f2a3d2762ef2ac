package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

// options are the demo's flags.
type options struct {
	// Verbose also prints the function's JSON log lines.
	Verbose bool
	// Keep leaves moto_server and the identity providers running until ctx
	// ends (Ctrl-C), and prints how to point the CLI at them.
	Keep bool
}

// slowBuild is when the demo says that the build is still going.
const slowBuild = 5 * time.Second

// run is the whole demo: it starts the local world, runs the function once,
// prints what happened to stdout and stops everything it started before it
// returns, whatever happened.
func run(ctx context.Context, stdout io.Writer, opts options) error {
	start := time.Now()
	var c cleanups
	defer c.run()

	dir, err := os.MkdirTemp("", "thumbprint-drift-demo-")
	if err != nil {
		return fmt.Errorf("create temporary directory: %w", err)
	}
	c.add(func() { _ = os.RemoveAll(dir) })

	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	payload, err := os.ReadFile(filepath.Join(root, "events", "scheduled.json"))
	if err != nil {
		return fmt.Errorf("read the sample event: %w", err)
	}

	// The build runs while moto_server starts; both take a second or two.
	var b struct {
		bin  string
		err  error
		took time.Duration
	}
	buildCtx, cancelBuild := context.WithCancel(ctx)
	built := make(chan struct{})
	go func() {
		defer close(built)
		t := time.Now()
		b.bin, b.err = buildFunction(buildCtx, root, dir)
		b.took = time.Since(t)
	}()
	c.add(func() { cancelBuild(); <-built })

	p := newPrinter(stdout)
	p.title()
	pk, err := newPKIs()
	if err != nil {
		return err
	}
	w, err := startWorld(ctx, &c, dir, pk)
	if err != nil {
		return err
	}
	p.setup(w)

	select {
	case <-built:
	case <-time.After(slowBuild):
		p.line("  (still building the function: the first build compiles the AWS SDK, later ones take a second)")
		select {
		case <-built:
		case <-ctx.Done():
			return ctx.Err()
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	if b.err != nil {
		return b.err
	}
	p.function(runtime.GOOS+"/"+runtime.GOARCH, b.took)

	inv, err := w.invoke(ctx, b.bin, payload)
	if err != nil {
		return err
	}
	if err := w.readAfter(ctx); err != nil {
		return err
	}
	msgs, err := w.alerts.Drain(ctx)
	if err != nil {
		return err
	}

	p.invocation(inv.took)
	p.report(w, inv)
	p.messages(w, msgs)
	p.lists(w, inv.report)
	if err := p.crossCheck(ctx, w, inv.report); err != nil {
		return err
	}
	if opts.Verbose {
		p.logs(inv.logs)
	} else {
		p.logDigest(inv.logs)
	}
	if err := check(w, inv.report, msgs); err != nil {
		return err
	}
	if opts.Keep {
		p.keep(w, time.Since(start))
		<-ctx.Done()
		c.run()
		p.line("Stopped moto_server and the identity providers, removed the temporary files.")
		return nil
	}
	c.run()
	if err := ctx.Err(); err != nil {
		return err
	}
	p.done(time.Since(start))
	return nil
}

// check confirms the demo showed what it promises: each provider got its
// expected outcome and each alerted outcome reached the queue. A demo that
// quietly shows something else would mislead more than a failing one.
func check(w *world, rep *drift.Report, msgs []testpeer.Delivered) error {
	var problems []string
	for _, sc := range w.scenarios {
		r := resultFor(rep, sc.arn)
		switch {
		case r == nil:
			problems = append(problems, fmt.Sprintf("provider (%d) %s is missing from the report", sc.n, sc.url))
		case r.Outcome != sc.expect:
			problems = append(problems, fmt.Sprintf("provider (%d) %s: outcome %s, want %s (%s)", sc.n, sc.url, r.Outcome, sc.expect, r.Detail))
		}
		if sc.expect == drift.InSync {
			continue
		}
		found := false
		for _, m := range msgs {
			found = found || m.Attr("provider_arn") == sc.arn
		}
		if !found {
			problems = append(problems, fmt.Sprintf("no SNS message for provider (%d) %s", sc.n, sc.url))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("the run did not go as the demo expects:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

// resultFor returns the report's result for a provider ARN, or nil.
func resultFor(rep *drift.Report, arn string) *drift.Result {
	for i := range rep.Results {
		if rep.Results[i].ProviderARN == arn {
			return &rep.Results[i]
		}
	}
	return nil
}
