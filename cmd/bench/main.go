// Command bench measures thumbprint-drift against the network limit and
// against the openssl procedure a user would otherwise script (make bench).
//
// It starts moto_server for IAM and local TLS identity providers, each behind a
// loopback forwarder that makes one round trip cost -rtt, creates the IAM OIDC
// providers with the real SDK, runs the real engine in-process over them at
// several concurrencies, runs AWS's documented curl + openssl procedure over the
// same providers, runs organisation mode (many accounts, the same provider Urls
// in each) through the production wiring with assumed roles, and measures the
// function binary (size, cold start, peak RSS). It prints tables and, last,
// one line of figures:
//
//	bench: limit_ratio=<x> openssl_speedup=<x> cold_start_ms=<ms> rss_mb=<MiB> bootstrap_mb=<MiB>
//
// Everything it starts is stopped when it ends, also on Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// options are the command-line flags.
type options struct {
	rtt           time.Duration
	handshakes    int
	conc          []int
	loads         []load
	org           load // Accounts 0: none
	orgSettings   []orgSetting
	peerProviders int
	coldSamples   int
	rssRuns       int
	noFunction    bool
	noPeer        bool
	noCurl        bool
	timeout       time.Duration
	cpuProfile    string
	functionEnv   []string
	functionLog   string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := options{}
	var conc, loads, org, orgSettings string
	quick := fs.Bool("quick", false, "smaller run (about a minute): load 100x20, concurrency 8, the organisation load at 4/8 only, the openssl procedure over 20 providers (extrapolated), 5 cold starts, 1 RSS invocation")
	fs.DurationVar(&o.rtt, "rtt", 50*time.Millisecond, "round trip time the forwarders add in front of each identity provider")
	fs.IntVar(&o.handshakes, "handshakes", 2, "TLS handshakes per host (PROBE_HANDSHAKES), 1 to 5")
	fs.StringVar(&conc, "conc", "1,8,32", "engine concurrencies to run, comma-separated")
	fs.StringVar(&loads, "loads", "100x20,100x100", "loads as PROVIDERSxHOSTS, comma-separated")
	fs.StringVar(&org, "org", "20x100x20", "organisation load as ACCOUNTSxPROVIDERSxHOSTS (the same provider Urls in every account), run through app.NewEngineFromAWS with ACCOUNT_ROLE_ARNS; none to skip")
	fs.StringVar(&orgSettings, "org-conc", "4/8,20/8", "organisation runs as ACCOUNT_CONCURRENCY/CONCURRENCY pairs, comma-separated")
	fs.IntVar(&o.peerProviders, "peer-providers", 0, "run the openssl procedure over only the first N providers of a load and extrapolate (0: all)")
	fs.IntVar(&o.coldSamples, "cold-samples", 20, "cold starts to take the median of")
	fs.IntVar(&o.rssRuns, "rss-runs", 3, "invocations (each in a new process) per load for the peak RSS; the largest is reported")
	fs.BoolVar(&o.noFunction, "no-function", false, "skip the function binary (build, size, cold start, RSS)")
	fs.BoolVar(&o.noCurl, "no-curl", false, "do the openssl procedure's discovery step with Go's HTTP client, as when curl is not installed")
	fs.BoolVar(&o.noPeer, "no-peer", false, "skip the openssl procedure")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the engine run at 100x20, concurrency 8 to this file (go tool pprof)")
	fs.Func("function-env", "KEY=VALUE added to the function's environment (repeatable), e.g. GODEBUG=gctrace=1 or GOMEMLIMIT=20MiB", func(v string) error {
		if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
			return errors.New("want KEY=VALUE")
		}
		o.functionEnv = append(o.functionEnv, v)
		return nil
	})
	fs.StringVar(&o.functionLog, "function-log", "", "append the function's stdout and stderr of the RSS invocations to this file")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "stop everything after this long")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["conc"] {
			conc = "8"
		}
		if !set["loads"] {
			loads = "100x20"
		}
		if !set["peer-providers"] {
			o.peerProviders = 20
		}
		if !set["cold-samples"] {
			o.coldSamples = 5
		}
		if !set["rss-runs"] {
			o.rssRuns = 1
		}
		if !set["org-conc"] {
			orgSettings = "4/8"
		}
	}
	var err error
	if o.conc, err = parseInts(conc, 1, 64); err != nil {
		return o, fmt.Errorf("-conc: %w", err)
	}
	if o.loads, err = parseLoads(loads); err != nil {
		return o, fmt.Errorf("-loads: %w", err)
	}
	if o.org, err = parseOrgLoad(org); err != nil {
		return o, fmt.Errorf("-org: %w", err)
	}
	if o.orgSettings, err = parseOrgSettings(orgSettings); err != nil {
		return o, fmt.Errorf("-org-conc: %w", err)
	}
	switch {
	case o.rtt < 0 || o.rtt > 2*time.Second:
		return o, errors.New("-rtt: want 0 to 2s")
	case o.handshakes < 1 || o.handshakes > 5:
		return o, errors.New("-handshakes: want 1 to 5")
	case o.coldSamples < 1 || o.coldSamples > 200:
		return o, errors.New("-cold-samples: want 1 to 200")
	case o.rssRuns < 0 || o.rssRuns > 20:
		return o, errors.New("-rss-runs: want 0 to 20")
	case o.peerProviders < 0:
		return o, errors.New("-peer-providers: want 0 or more")
	case o.timeout <= 0:
		return o, errors.New("-timeout: want a positive duration")
	}
	return o, nil
}

func parseInts(s string, lo, hi int) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < lo || n > hi {
			return nil, fmt.Errorf("%q: want integers from %d to %d", f, lo, hi)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseLoads reads "100x20,100x100" (providers x hosts, one account each).
func parseLoads(s string) ([]load, error) {
	var out []load
	for f := range strings.SplitSeq(s, ",") {
		ps, hs, ok := strings.Cut(strings.TrimSpace(f), "x")
		p, err1 := strconv.Atoi(ps)
		h, err2 := strconv.Atoi(hs)
		if !ok || err1 != nil || err2 != nil || p < 1 || p > 1000 || h < 1 || h > p {
			return nil, fmt.Errorf("%q: want PROVIDERSxHOSTS, 1 <= hosts <= providers <= 1000", f)
		}
		out = append(out, load{Accounts: 1, Providers: p, Hosts: h})
	}
	return out, nil
}

// cleanups stops what the bench started, last started first, once.
type cleanups struct {
	mu  sync.Mutex
	fns []func()
}

func (c *cleanups) add(f func()) {
	c.mu.Lock()
	c.fns = append(c.fns, f)
	c.mu.Unlock()
}

// run holds the lock while it runs, so a second caller returns only once
// everything is stopped.
func (c *cleanups) run() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.fns) - 1; i >= 0; i-- {
		c.fns[i]()
	}
	c.fns = nil
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}

	var c cleanups
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	// A closed stdout or stderr (bench | head) must fail the write, not kill
	// the bench before it stops what it started.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "bench: interrupted: stopping everything it started (again to hurry)")
		cancel()
		<-sigs
		c.run()
		os.Exit(130)
	}()

	res, err := run(ctx, o, &c, os.Stderr)
	c.run()
	cancel()
	if err == nil {
		printResults(os.Stdout, res)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		if errors.Is(err, context.Canceled) {
			os.Exit(130)
		}
		os.Exit(1)
	}
}
