// Command bench measures thumbprint-drift (make bench) against the network
// limit, against the openssl procedure a user would otherwise script, and at
// organisation scale.
//
// Its world comes from the test-support packages: moto_server (testpeer),
// identity providers with generated chains behind loopback forwarders that
// make one round trip cost -rtt (testpeer/fleet), the Lambda Runtime API
// driving the real bootstrap (testpeer.Function). The scenarios, in order:
//
//  1. each load of one account: the engine in-process at several
//     concurrencies, AWS's curl + openssl procedure over the same providers,
//     the function's peak RSS over it;
//  2. the organisation: -org-accounts member accounts in moto Organizations,
//     the same providers in each, IAM and STS behind a forwarder adding
//     -aws-latency per call, through the production wiring (ORG_ROLE_NAME)
//     in-process (calls metered) and as the real bootstrap (peak RSS);
//  3. the function binary: size and cold start.
//
// It prints tables and, last, one line of figures:
//
//	bench: limit_ratio=<x> openssl_speedup=<x> cold_start_ms=<ms> rss_mb=<MiB> bootstrap_mb=<MiB> org_accounts_per_min=<n> org_rss_mb=<MiB>
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

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
)

// options are the command-line flags.
type options struct {
	rtt, awsLatency         time.Duration
	handshakes              int
	conc                    []int
	loads                   []load
	org                     load // Accounts 0: none
	orgSettings             []orgSetting
	peerProviders           int
	coldSamples, rssRuns    int
	noFunction, noPeer      bool
	noCurl                  bool
	timeout                 time.Duration
	cpuProfile, functionLog string
	functionEnv             []string
}

// load is one world: accounts (1: the function's own; more: organisation
// members), providers in each, distinct hosts.
type load struct {
	Accounts, Providers, Hosts int
}

// Name is the load as the tables show it.
func (l load) Name() string {
	if l.Accounts > 1 {
		return fmt.Sprintf("%dx%dp/%dh", l.Accounts, l.Providers, l.Hosts)
	}
	return fmt.Sprintf("%dp/%dh", l.Providers, l.Hosts)
}

// orgSetting is one organisation run's ACCOUNT_CONCURRENCY and CONCURRENCY.
type orgSetting struct{ AccountConc, Conc int }

func (s orgSetting) String() string { return fmt.Sprintf("%d/%d", s.AccountConc, s.Conc) }

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := options{}
	def := config.Default()
	var conc, loads, orgShape, orgSettings string
	quick := fs.Bool("quick", false, "smaller run (about a minute): load 100x20 at concurrency 8, 100 member accounts, the openssl procedure over 20 providers (extrapolated), 5 cold starts, 1 RSS invocation")
	fs.DurationVar(&o.rtt, "rtt", 50*time.Millisecond, "round trip time the forwarders add in front of each identity provider")
	fs.DurationVar(&o.awsLatency, "aws-latency", 50*time.Millisecond, "time a forwarder adds to each IAM and STS call of the organisation scenario")
	fs.IntVar(&o.handshakes, "handshakes", def.ProbeHandshakes, "TLS handshakes per host (PROBE_HANDSHAKES), 1 to 5")
	fs.StringVar(&conc, "conc", "1,8,32", "engine concurrencies of the one-account loads, comma-separated")
	fs.StringVar(&loads, "loads", "100x20,100x100", "one-account loads as PROVIDERSxHOSTS, comma-separated")
	fs.IntVar(&o.org.Accounts, "org-accounts", 1000, "member accounts of the organisation scenario (0 skips it)")
	fs.StringVar(&orgShape, "org-shape", "5x3", "providers per member account x hosts they share (the last host's providers drifted in every account)")
	fs.StringVar(&orgSettings, "org-conc", fmt.Sprintf("%d/%d,4/%d", def.AccountConcurrency, def.Concurrency, def.Concurrency), "in-process organisation runs as ACCOUNT_CONCURRENCY/CONCURRENCY, comma-separated; the bootstrap runs with the defaults")
	fs.IntVar(&o.peerProviders, "peer-providers", 0, "run the openssl procedure over only the first N providers of a load and extrapolate (0: all)")
	fs.IntVar(&o.coldSamples, "cold-samples", 20, "cold starts to take the median of")
	fs.IntVar(&o.rssRuns, "rss-runs", 3, "invocations (each in a new process) per one-account load for the peak RSS; the largest is reported")
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
	fs.DurationVar(&o.timeout, "timeout", 20*time.Minute, "stop everything after this long")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		quickDefault := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		quickDefault("conc", func() { conc = "8" })
		quickDefault("loads", func() { loads = "100x20" })
		quickDefault("org-accounts", func() { o.org.Accounts = 100 })
		quickDefault("org-conc", func() { orgSettings = fmt.Sprintf("%d/%d", def.AccountConcurrency, def.Concurrency) })
		quickDefault("peer-providers", func() { o.peerProviders = 20 })
		quickDefault("cold-samples", func() { o.coldSamples = 5 })
		quickDefault("rss-runs", func() { o.rssRuns = 1 })
	}
	var err error
	if o.conc, err = parseInts(conc, config.MinConcurrency, config.MaxConcurrency); err != nil {
		return o, fmt.Errorf("-conc: %w", err)
	}
	if o.loads, err = parseLoads(loads); err != nil {
		return o, fmt.Errorf("-loads: %w", err)
	}
	if o.orgSettings, err = parseOrgSettings(orgSettings); err != nil {
		return o, fmt.Errorf("-org-conc: %w", err)
	}
	shape, err := parseLoads(orgShape)
	if err != nil || len(shape) != 1 {
		return o, fmt.Errorf("-org-shape: want one PROVIDERSxHOSTS: %v", err)
	}
	o.org.Providers, o.org.Hosts = shape[0].Providers, shape[0].Hosts
	switch {
	case o.rtt < 0 || o.rtt > 2*time.Second:
		return o, errors.New("-rtt: want 0 to 2s")
	case o.awsLatency < 0 || o.awsLatency > 2*time.Second:
		return o, errors.New("-aws-latency: want 0 to 2s")
	case o.handshakes < config.MinHandshakes || o.handshakes > config.MaxHandshakes:
		return o, errors.New("-handshakes: want 1 to 5")
	case o.org.Accounts < 0 || o.org.Accounts > 20000:
		return o, errors.New("-org-accounts: want 0 to 20000")
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

// parseOrgSettings reads "16/8,4/8": ACCOUNT_CONCURRENCY/CONCURRENCY pairs.
func parseOrgSettings(s string) ([]orgSetting, error) {
	var out []orgSetting
	for f := range strings.SplitSeq(s, ",") {
		as, cs, ok := strings.Cut(strings.TrimSpace(f), "/")
		a, err1 := strconv.Atoi(as)
		c, err2 := strconv.Atoi(cs)
		if !ok || err1 != nil || err2 != nil || a < config.MinAccountConcurrency || a > config.MaxAccountConcurrency ||
			c < config.MinConcurrency || c > config.MaxConcurrency {
			return nil, fmt.Errorf("%q: want ACCOUNT_CONCURRENCY/CONCURRENCY, %d to %d / %d to %d", f,
				config.MinAccountConcurrency, config.MaxAccountConcurrency, config.MinConcurrency, config.MaxConcurrency)
		}
		out = append(out, orgSetting{a, c})
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
		return
	}
	fmt.Fprintln(os.Stderr, "bench:", err)
	if errors.Is(err, context.Canceled) {
		os.Exit(130)
	}
	os.Exit(1)
}
