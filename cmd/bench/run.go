package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/fleet"
)

// results is everything one bench run measured.
type results struct {
	started, finished time.Time
	opts              options
	engine            []engineResult
	handshakes        []engineResult // the handshake comparison: headlineLoad at headlineConc, K = -handshakes and 1
	peers             []peerResult
	org               *orgResults
	fn                functionResult
	notes             []string
}

// bench is one run's peers and files, started once and shared by the scenarios.
type bench struct {
	o       options
	c       *testpeer.Cleanups
	res     *results
	logf    func(format string, args ...any)
	dir     string
	moto    *testpeer.Moto
	sf      *testpeer.StepFunctions // moto executing state machines (moto is sf.Moto)
	root    *testidp.CA             // signs every host's intermediate: the trust store
	trust   []string                // SSL_CERT_FILE (root) and SSL_CERT_DIR (empty) of a function
	hostBin string                  // the function for this machine; "" when not built
	profBin string                  // its profiling build (-v); "" when not built
	proc    *testidp.Procedure
}

// run measures every scenario and returns the results, complete unless the
// error is non-nil. What it starts is registered in c; the caller stops it.
func run(ctx context.Context, o options, c *testpeer.Cleanups, stderr io.Writer) (*results, error) {
	res := &results{started: time.Now(), opts: o}
	b := &bench{o: o, c: c, res: res, logf: func(format string, args ...any) {
		fmt.Fprintf(stderr, "bench: %5.1fs "+format+"\n", append([]any{time.Since(res.started).Seconds()}, args...)...)
	}}
	var err error
	if b.dir, err = os.MkdirTemp("", "thumbprint-drift-bench-"); err != nil {
		return nil, err
	}
	c.Add(func() { os.RemoveAll(b.dir) })
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return nil, err
		}
	}

	// The binaries first, so no build runs while anything is timed.
	if !o.noFunction {
		b.logf("building the linux/arm64 bootstrap (make build-DriftCheckFunction) and a host binary with the same flags")
		if err := b.buildFunction(ctx); err != nil {
			return nil, err
		}
	}

	if b.root, err = testidp.NewRoot("Bench Root CA"); err != nil {
		return nil, err
	}
	if b.trust, err = testpeer.TrustStore(b.dir, b.root.PEM()); err != nil {
		return nil, err
	}

	b.logf("starting moto_server (executing state machines, for the sharded run)")
	if b.sf, err = testpeer.StartStepFunctions(ctx, nil); err != nil {
		return nil, err
	}
	b.moto = b.sf.Moto
	c.Add(b.sf.Close)

	if !o.noPeer && !testidp.HaveOpenSSL() {
		res.notes = append(res.notes, "openssl not found on PATH: the peer procedure was not run")
	} else if !o.noPeer {
		if b.proc, err = testidp.NewProcedure(b.dir, b.root); err != nil {
			return nil, err
		}
		if b.proc.Curl == "" {
			res.notes = append(res.notes, "curl not found on PATH: the procedure's discovery step used Go's net/http client (a new connection per request, as curl), openssl for the rest")
		}
	}
	for _, l := range o.loads {
		if err := b.benchLoad(ctx, l); err != nil {
			return nil, err
		}
	}
	if o.org.Accounts > 0 {
		if res.org, err = b.benchOrg(ctx); err != nil {
			return nil, err
		}
	}
	if b.hostBin != "" {
		b.logf("cold start: %d starts of the host binary", o.coldSamples)
		if err := b.coldStarts(ctx); err != nil {
			return nil, err
		}
	}
	res.finished = time.Now()
	return res, ctx.Err()
}

// benchLoad builds one account's load and measures the engine, the
// procedure and the function over it, then tears it down.
func (b *bench) benchLoad(ctx context.Context, l load) error {
	b.logf("load %s: starting %d identity providers behind %s forwarders, creating %d IAM providers", l.Name(), l.Hosts, b.o.rtt, l.Providers)
	if err := b.moto.Reset(ctx); err != nil {
		return err
	}
	f, err := fleet.Start(b.root, fleet.Spec{Providers: l.Providers, Hosts: l.Hosts, RTT: b.o.rtt, Drifted: fleet.EveryFifth, HTTP1: b.o.idpHTTP1})
	if err != nil {
		return err
	}
	b.c.Add(f.Close)
	defer f.Close()
	if _, err := f.Seed(ctx, b.moto, []string{testpeer.AccountID}, 4); err != nil {
		return err
	}

	// One untimed run first: moto, the TLS stacks and the SDK warm up.
	warm := slices.Max(b.o.conc)
	b.logf("load %s: warm-up run at concurrency %d", l.Name(), warm)
	if _, err := b.engineRun(ctx, f, l, warm, b.o.handshakes, nil, ""); err != nil {
		return err
	}
	live := map[string][]string{}
	for _, conc := range b.o.conc {
		var runs []engineResult
		for i := range b.o.engineRuns {
			last := live // the live thumbprints, for the procedure's comparison: once
			if i > 0 {
				last = nil
			}
			r, err := b.engineRun(ctx, f, l, conc, b.o.handshakes, last, "")
			if err != nil {
				return err
			}
			b.logf("load %s C%d: %.2fs (limit %.2fs)", l.Name(), conc, r.Took.Seconds(), r.Limit(b.o.rtt).Seconds())
			runs = append(runs, r)
		}
		b.res.engine = append(b.res.engine, medianRun(runs, b.o.rtt))
	}
	if l == headlineLoad {
		if err := b.compareHandshakes(ctx, f, l); err != nil {
			return err
		}
	}
	states := []string{"+state (empty)", "+state (quiet)"} // the state's cost: from empty state, then quiet
	if l != headlineLoad {
		states = nil
	} else if err := testpeer.CreateStateTable(ctx, b.moto.Config(), "bench-state"); err != nil {
		return err
	}
	for _, name := range states {
		r, err := b.engineRun(ctx, f, l, headlineConc, b.o.handshakes, nil, "bench-state")
		r.Load += name
		b.res.engine = append(b.res.engine, r)
		if err != nil {
			return err
		}
	}

	if b.proc != nil {
		n := len(f.Providers)
		if b.o.peerProviders > 0 {
			n = min(n, b.o.peerProviders)
		}
		b.logf("load %s: AWS's curl + openssl procedure over %d providers, one after another", l.Name(), n)
		p, err := runProcedure(ctx, b.proc, l, f, n, live)
		if err != nil {
			return err
		}
		b.res.peers = append(b.res.peers, p)
	}

	for i := 0; i < b.o.rssRuns && b.hostBin != ""; i++ {
		b.logf("load %s: scheduled invocation %d/%d of the function through the Runtime API, for its peak RSS", l.Name(), i+1, b.o.rssRuns)
		inv, err := b.invoke(ctx, invokeLimit)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b.res.fn.Problems = append(b.res.fn.Problems, "invocation over "+l.Name()+": "+err.Error())
			break
		}
		inv.Load = l.Name()
		b.res.fn.RSS = append(b.res.fn.RSS, inv)
		if p := f.CheckReport(inv.Report, nil); p != "" {
			b.res.fn.Problems = append(b.res.fn.Problems, "invocation over "+l.Name()+": "+p)
		}
	}
	return nil
}

// compareHandshakes runs the engine over l at headlineConc with -handshakes
// and with PROBE_HANDSHAKES=1, -hs-rounds times each, alternating which goes
// first, so that the machine's load weighs on both alike.
func (b *bench) compareHandshakes(ctx context.Context, f *fleet.Fleet, l load) error {
	if b.o.handshakes == 1 || b.o.hsRounds == 0 {
		return nil
	}
	b.logf("load %s C%d: %d rounds of PROBE_HANDSHAKES=%d and =1", l.Name(), headlineConc, b.o.hsRounds, b.o.handshakes)
	for i := range b.o.hsRounds {
		ks := []int{b.o.handshakes, 1}
		if i%2 == 1 {
			ks[0], ks[1] = ks[1], ks[0]
		}
		for _, k := range ks {
			r, err := b.engineRun(ctx, f, l, headlineConc, k, nil, "")
			if err != nil {
				return err
			}
			b.res.handshakes = append(b.res.handshakes, r)
		}
	}
	return nil
}

// functionEnv is the function's environment: the one-account loads' (mode
// report, so invocations repeat), then vars; later entries win.
func (b *bench) functionEnv(vars ...string) ([]string, error) {
	base := []string{
		"AWS_LAMBDA_FUNCTION_NAME=drift-check-bench",
		"DRIFT_MODE=report",
		"CONCURRENCY=8",
		fmt.Sprintf("PROBE_HANDSHAKES=%d", b.o.handshakes),
		"PROBE_TIMEOUT=" + probeTimeout.String(),
	}
	return testpeer.FunctionEnv(b.moto, b.dir, slices.Concat(base, b.trust, vars)...)
}

// medianRun is the run of runs with the median measured / limit (the
// higher of the two middle ones for an even count), carrying every run's
// ratio and floor ratio in its order. A run with a problem is returned as
// it is.
func medianRun(runs []engineResult, rtt time.Duration) engineResult {
	var ratios, floors []float64
	for _, r := range runs {
		if r.Problem != "" {
			return r
		}
		ratios, floors = append(ratios, r.Ratio(rtt)), append(floors, r.FloorRatio(rtt))
	}
	m := *medianBy(runs, func(e engineResult) float64 { return e.Ratio(rtt) })
	m.Ratios, m.FloorRatios = ratios, floors
	return m
}
