// Command bench measures thumbprint-drift (make bench), in a world from the
// test-support packages (moto_server; identity providers with generated chains
// behind forwarders making a round trip cost -rtt; the Runtime API driving the
// real bootstrap): one account's loads against the network limit, against
// the floor the contract's ignore rule sets (each probe after its
// provider's Get: the target since that rule) and against
// AWS's curl + openssl procedure; an organisation of -org-accounts members
// through the production wiring, with IAM and STS at -aws-latency per call,
// in-process (calls metered) and as the bootstrap (peak RSS), then as a
// sharded run (-shard-size: template.yaml's state machine on moto's Step
// Functions engine, beside the unsharded run's wall time), and a model of
// 10,000 accounts from it; the bootstrap's size and cold start. It prints
// tables and, last, one line of figures:
//
//	bench: limit_ratio=<x> openssl_speedup=<x> cold_start_ms=<ms> rss_mb=<MiB> bootstrap_mb=<MiB> org_accounts_per_min=<n> org_rss_mb=<MiB> handshakes_ratio=<x> cpu_ms_per_account=<ms> floor_ratio=<x>
//
// With -v, the bootstrap's organisation run is a build with -tags
// benchprofile (functions/drift-check/profile.go) and the bench prints the
// top entries of its CPU and allocation profiles.
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
	"strconv"
	"strings"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

// options are the command-line flags.
type options struct {
	rtt, awsLatency, timeout                        time.Duration
	handshakes, peerProviders, coldSamples, rssRuns int
	hsRounds                                        int // rounds of the handshake comparison
	engineRuns                                      int // timed engine runs per load and concurrency
	profileDir                                      string
	conc                                            []int
	loads                                           []load
	org                                             load // Accounts 0: none
	orgSettings                                     []orgSetting
	noFunction, noPeer, verbose                     bool
	idpHTTP1                                        bool // identity providers speak HTTP/1.1 only
	shardSize, shardConc                            int  // the sharded run; shardSize 0: none
}

// load is one world: accounts (1: the function's own; more: organisation
// members), providers in each, distinct hosts.
type load struct{ Accounts, Providers, Hosts int }

// Name is the load as the tables show it.
func (l load) Name() string { return fmt.Sprintf("%dp/%dh", l.Providers, l.Hosts) }

// orgSetting is one organisation run's ACCOUNT_CONCURRENCY and CONCURRENCY.
type orgSetting struct{ AccountConc, Conc int }

func (s orgSetting) String() string { return fmt.Sprintf("%d/%d", s.AccountConc, s.Conc) }

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := options{}
	def := config.Default()
	var conc, loads, orgShape, orgSettings string
	quick := fs.Bool("quick", false, "smaller run (about a minute): load 100x20 at concurrency 8, 100 member accounts (sharded by 25), the openssl procedure over 20 providers (extrapolated), 5 cold starts, 1 RSS invocation")
	fs.DurationVar(&o.rtt, "rtt", 50*time.Millisecond, "round trip time the forwarders add in front of each identity provider")
	fs.DurationVar(&o.awsLatency, "aws-latency", 50*time.Millisecond, "time a forwarder adds to each IAM and STS call of the organisation scenario")
	fs.IntVar(&o.handshakes, "handshakes", def.ProbeHandshakes, "TLS handshakes per host (PROBE_HANDSHAKES), 1 to 5")
	fs.IntVar(&o.engineRuns, "engine-runs", 3, "timed runs of the engine per one-account load and concurrency (after its warm-up run); the table shows the run with the median measured / limit, and the line under it every run's")
	fs.IntVar(&o.hsRounds, "hs-rounds", 5, "rounds of the handshake comparison over load 100x20 at concurrency 8: one run at -handshakes and one at PROBE_HANDSHAKES=1 each, in alternating order (0 skips it)")
	fs.StringVar(&conc, "conc", "1,8,32", "engine concurrencies of the one-account loads, comma-separated")
	fs.StringVar(&loads, "loads", "100x20,100x100", "one-account loads as PROVIDERSxHOSTS, comma-separated")
	fs.IntVar(&o.org.Accounts, "org-accounts", 1000, "member accounts of the organisation scenario (0 skips it)")
	fs.StringVar(&orgShape, "org-shape", "5x3", "providers per member account x hosts they share (the last host's providers drifted in every account)")
	fs.StringVar(&orgSettings, "org-conc", fmt.Sprintf("%d/%d,32/%d", def.AccountConcurrency, def.Concurrency, def.Concurrency), "in-process organisation runs as ACCOUNT_CONCURRENCY/CONCURRENCY, comma-separated, or none (then only the bootstrap's run, no calls metered); the bootstrap runs with the defaults")
	fs.IntVar(&o.shardSize, "shard-size", 250, "the organisation again as a sharded run (template.yaml's state machine on moto's Step Functions engine) with this ShardSize, 10 to 10000 (0 skips it)")
	fs.IntVar(&o.shardConc, "shard-conc", 4, "the sharded run's MaxConcurrency, and as many function processes, 1 to 64")
	fs.IntVar(&o.peerProviders, "peer-providers", 0, "run the openssl procedure over only the first N providers of a load and extrapolate (0: all)")
	fs.IntVar(&o.coldSamples, "cold-samples", 20, "cold starts to take the median of")
	fs.IntVar(&o.rssRuns, "rss-runs", 3, "invocations (each in a new process) per one-account load for the peak RSS; the largest is reported")
	fs.BoolVar(&o.noFunction, "no-function", false, "skip the function binary (build, size, cold start, RSS)")
	fs.BoolVar(&o.noPeer, "no-peer", false, "skip the openssl procedure")
	fs.BoolVar(&o.idpHTTP1, "idp-http1", false, "identity providers speak HTTP/1.1 only (by default they offer h2 too, as most on the Internet do, and a host's discoveries share one connection)")
	fs.BoolVar(&o.verbose, "v", false, "profile the bootstrap's organisation run (the same build with -tags benchprofile: its figures include the profiler's small cost) and print the top entries of its CPU and allocation profiles")
	fs.StringVar(&o.profileDir, "profile-dir", "", "with -v, where the pprof files and the profiled binary go (default: a temporary directory, removed at the end)")
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
		for name, v := range map[string]string{"conc": "8", "loads": "100x20", "org-accounts": "100", "peer-providers": "20", "cold-samples": "5", "hs-rounds": "3",
			"rss-runs": "1", "org-conc": fmt.Sprintf("%d/%d", def.AccountConcurrency, def.Concurrency), "shard-size": "25"} {
			if !set[name] {
				_ = fs.Set(name, v)
			}
		}
	}
	var err error
	if o.conc, err = parseInts(conc, config.MinConcurrency, config.MaxConcurrency); err != nil {
		return o, fmt.Errorf("-conc: %w", err)
	}
	pairs, err := parsePairs(loads, "x", [2]int{1, 1}, [2]int{1000, 1000}, true)
	if err != nil {
		return o, fmt.Errorf("-loads: PROVIDERSxHOSTS: %w", err)
	}
	for _, p := range pairs {
		o.loads = append(o.loads, load{Accounts: 1, Providers: p[0], Hosts: p[1]})
	}
	if orgSettings == "none" {
		pairs = nil
	} else if pairs, err = parsePairs(orgSettings, "/", [2]int{config.MinAccountConcurrency, config.MinConcurrency},
		[2]int{config.MaxAccountConcurrency, config.MaxConcurrency}, false); err != nil {
		return o, fmt.Errorf("-org-conc: ACCOUNT_CONCURRENCY/CONCURRENCY or none: %w", err)
	}
	for _, p := range pairs {
		o.orgSettings = append(o.orgSettings, orgSetting{p[0], p[1]})
	}
	if pairs, err = parsePairs(orgShape, "x", [2]int{1, 1}, [2]int{1000, 1000}, true); err != nil || len(pairs) != 1 {
		return o, fmt.Errorf("-org-shape: want one PROVIDERSxHOSTS: %v", err)
	}
	o.org.Providers, o.org.Hosts = pairs[0][0], pairs[0][1]
	for _, c := range []struct {
		bad  bool
		want string
	}{
		{o.rtt < 0 || o.rtt > 2*time.Second, "-rtt: want 0 to 2s"},
		{o.awsLatency < 0 || o.awsLatency > 2*time.Second, "-aws-latency: want 0 to 2s"},
		{o.handshakes < config.MinHandshakes || o.handshakes > config.MaxHandshakes, "-handshakes: want 1 to 5"},
		{o.org.Accounts < 0 || o.org.Accounts > 20000, "-org-accounts: want 0 to 20000"},
		{o.coldSamples < 1 || o.coldSamples > 200, "-cold-samples: want 1 to 200"},
		{o.rssRuns < 0 || o.rssRuns > 20, "-rss-runs: want 0 to 20"},
		{o.hsRounds < 0 || o.hsRounds > 50, "-hs-rounds: want 0 to 50"},
		{o.engineRuns < 1 || o.engineRuns > 50, "-engine-runs: want 1 to 50"},
		{o.peerProviders < 0, "-peer-providers: want 0 or more"},
		{o.shardSize != 0 && (o.shardSize < config.MinShardSize || o.shardSize > config.MaxShardSize), "-shard-size: want 0 or 10 to 10000"},
		{o.shardConc < 1 || o.shardConc > 64, "-shard-conc: want 1 to 64"},
		{o.timeout <= 0, "-timeout: want a positive duration"},
	} {
		if c.bad {
			return o, errors.New(c.want)
		}
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

// parsePairs reads comma-separated pairs "AsepB" with lo[0] <= A <= hi[0],
// lo[1] <= B <= hi[1] and, when ordered, B <= A.
func parsePairs(s, sep string, lo, hi [2]int, ordered bool) ([][2]int, error) {
	var out [][2]int
	for f := range strings.SplitSeq(s, ",") {
		as, bs, ok := strings.Cut(strings.TrimSpace(f), sep)
		a, err1 := strconv.Atoi(as)
		b, err2 := strconv.Atoi(bs)
		if !ok || err1 != nil || err2 != nil || a < lo[0] || a > hi[0] || b < lo[1] || b > hi[1] || (ordered && b > a) {
			return nil, fmt.Errorf("%q: want A%sB, %d <= A <= %d, %d <= B <= %d", f, sep, lo[0], hi[0], lo[1], min(hi[1], hi[0]))
		}
		out = append(out, [2]int{a, b})
	}
	return out, nil
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

	var c testpeer.Cleanups
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	c.OnSignal("bench", os.Stderr, cancel)
	res, err := run(ctx, o, &c, os.Stderr)
	c.Run()
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
