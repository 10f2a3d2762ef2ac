package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/app"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/oidcprovider"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/fleet"
	"github.com/thumbprint-drift/thumbprint-drift/internal/thumbprint"
)

const (
	probeTimeout   = 10 * time.Second // each provider's probe, as PROBE_TIMEOUT
	engineRunLimit = 3 * time.Minute  // one engine run of a one-account load
	headlineConc   = 8                // the concurrency of the last line's figures, over headlineLoad
)

var headlineLoad = load{Accounts: 1, Providers: 100, Hosts: 20}

// engineResult is one measured run of the engine over one account's load, as
// the table prints it: limits from fleet (LimitRTT, SimRTT in round trips;
// ListLone, IAMAlone from IAMFloor). A Problem (a result not as seeded) makes
// the figures invalid.
type engineResult struct {
	Load, Problem                                   string
	Conc, K, LimitRTT, SimRTT, Handshakes, WantHS   int // K: PROBE_HANDSHAKES; Handshakes: TLS connections the hosts saw
	Connects                                        int // TCP connections the hosts accepted (TLS ones and those closed before any)
	Shape                                           fleet.Shape
	Took, IAMGet, ProbeAvg, CPU, ListLone, IAMAlone time.Duration
	Counts                                          map[drift.Outcome]int
	DDBReads, DDBWrites, DDBTransacts               int // the state table's BatchGetItem, UpdateItem and TransactWriteItems calls
	// Ratios and FloorRatios are measured / limit and measured / floor of
	// every timed run of the load and concurrency when this one is their
	// median (medianRun); nil for one run.
	Ratios, FloorRatios []float64
}

// Limit is the fastest the run can be: List, then probing and IAM reads side by side.
func (r engineResult) Limit(rtt time.Duration) time.Duration {
	return fleet.Limit(r.Shape, rtt, r.ListLone, r.IAMAlone)
}

// Floor is the fastest the run can be when each probe starts after its
// provider's Get (fleet.Floor).
func (r engineResult) Floor(rtt time.Duration) time.Duration {
	return fleet.Floor(r.Shape, rtt, r.ListLone, r.IAMAlone)
}

// Ratio is measured time over the limit.
func (r engineResult) Ratio(rtt time.Duration) float64 {
	return r.Took.Seconds() / r.Limit(rtt).Seconds()
}

// FloorRatio is measured time over the floor.
func (r engineResult) FloorRatio(rtt time.Duration) float64 {
	return r.Took.Seconds() / r.Floor(rtt).Seconds()
}

// TLSPerHost is the TLS connections the hosts saw, per host: its discovery
// connections (one, which its further Urls reuse when it is idle; more when
// they go out while it is busy) and the probe's handshakes.
func (r engineResult) TLSPerHost() float64 {
	return float64(r.Handshakes) / float64(max(r.Shape.Hosts, 1))
}

// engineRun runs the real engine in-process (the real IAM client to moto, the
// real prober trusting the bench root, mode report so runs repeat) over every
// provider of f once at concurrency conc, as the function does: the engine
// lists them itself, with k handshakes per host (PROBE_HANDSHAKES). last,
// when not nil, receives the live thumbprints by Url.
// With a state table, the run is in mode alert through the alert lifecycle
// (no publisher: the lifecycle's reads and writes are the cost measured).
func (b *bench) engineRun(ctx context.Context, f *fleet.Fleet, l load, conc, k int, last map[string][]string, table string) (engineResult, error) {
	prober := thumbprint.New(thumbprint.Options{Handshakes: k, Timeout: probeTimeout, RootCAs: b.root.Pool()})
	meter := testpeer.NewCallMeter()
	cfg := b.moto.Config()
	cfg.APIOptions = append(cfg.APIOptions, meter.APIOption)
	store := oidcprovider.New(iam.NewFromConfig(cfg))
	var probes testpeer.Timing
	lc := app.NewLifecycle(ctx, cfg, config.Config{StateTable: table, RealertInterval: 24 * time.Hour, ProbeFailuresToAlert: 2}, slog.New(slog.DiscardHandler))
	opts := drift.Options{
		Providers: store,
		NewProbe: func() (drift.ProbeFunc, func()) {
			run := prober.NewRun()
			return func(ctx context.Context, providerURL string) (*thumbprint.Result, error) {
				defer probes.Since(time.Now())
				return run.Probe(ctx, providerURL)
			}, run.Close
		},
		Mode:        map[bool]config.Mode{false: config.ModeReport, true: config.ModeAlert}[table != ""],
		Concurrency: conc,
	}
	if lc != nil {
		opts.Memory = lc
	}
	svc := &app.Service{Engine: drift.New(opts), Pipeline: alert.New(alert.Options{Lifecycle: lc})}

	// The engine starts every provider's probe at once, in List order; the
	// probe's scheduler grants hosts in the order they ask.
	arns, err := store.List(ctx)
	if err != nil {
		return engineResult{}, err
	}
	listLone, iamAlone, err := fleet.IAMFloor(ctx, store, arns, conc, 5)
	if err != nil {
		return engineResult{}, err
	}
	s := fleet.Shape{Providers: len(f.Providers), URLs: len(f.Providers), Hosts: len(f.Hosts), Handshakes: k, Concurrency: conc}

	rctx, cancel := context.WithTimeout(ctx, engineRunLimit)
	defer cancel()
	meter.Reset()
	before, connects := f.Handshakes(), f.Connects()
	cpu := testpeer.SelfCPUTime()
	start := time.Now()
	rep, err := svc.Run(rctx, drift.Request{})
	took := time.Since(start)
	cpu = testpeer.SelfCPUTime() - cpu
	if ctx.Err() != nil {
		return engineResult{}, ctx.Err()
	}
	r := engineResult{
		Load: l.Name(), Conc: conc, K: k, Shape: s, LimitRTT: fleet.LimitRTT(s), SimRTT: fleet.SimulateRTT(fleet.JobsOf(arns), fleet.ProbeConcurrency, s.Handshakes),
		ListLone: listLone, IAMAlone: iamAlone,
		Took: took, Handshakes: f.Handshakes() - before, Connects: f.Connects() - connects, WantHS: fleet.WantTLS(s.URLs, s.Hosts, k), ProbeAvg: probes.Mean(), CPU: cpu,
	}
	calls := meter.Calls()
	r.DDBReads, r.DDBWrites = calls[testpeer.Op{Service: "DynamoDB", Operation: "BatchGetItem"}].N, calls[testpeer.Op{Service: "DynamoDB", Operation: "UpdateItem"}].N
	r.DDBTransacts = calls[testpeer.Op{Service: "DynamoDB", Operation: "TransactWriteItems"}].N
	r.IAMGet = calls[testpeer.Op{Service: "IAM", Operation: "GetOpenIDConnectProvider"}].Mean()
	if err != nil {
		r.Problem = "run error: " + err.Error()
	}
	if rep != nil {
		r.Counts = rep.Counts
		if p := f.CheckReport(rep, nil); p != "" && r.Problem == "" {
			r.Problem = p
		}
		for _, res := range rep.Results {
			if last != nil {
				last[res.URL] = res.LiveThumbprints
			}
		}
	}
	return r, nil
}

// peerResult is AWS's documented procedure run over a load's providers.
type peerResult struct {
	testidp.ProcedureRun
	Load, Discovery string
	Of, Agree       int    // providers in the load; thumbprints equal to the engine's
	Problem         string // first failure or disagreement
}

// Providers is how many providers the procedure was run over.
func (p peerResult) Providers() int { return len(p.Thumbprints) }

// PerProvider is the mean time per provider.
func (p peerResult) PerProvider() time.Duration { return p.Took / time.Duration(max(p.Providers(), 1)) }

// Total is the time for the whole load: measured, or the mean per provider
// times the providers when run over a subset (-peer-providers).
func (p peerResult) Total() time.Duration { return p.PerProvider() * time.Duration(p.Of) }

// runProcedure runs the procedure over the first n providers of f and
// compares each thumbprint with live (the engine's, by provider Url).
func runProcedure(ctx context.Context, proc *testidp.Procedure, l load, f *fleet.Fleet, n int, live map[string][]string) (peerResult, error) {
	urls := f.URLs()[:n]
	run, err := proc.Run(ctx, urls)
	res := peerResult{ProcedureRun: run, Load: l.Name(), Discovery: proc.Discovery(), Of: len(f.Providers)}
	for i, u := range urls {
		switch {
		case run.Errors[i] == nil && len(live[u]) > 0 && live[u][0] == run.Thumbprints[i]:
			res.Agree++
		case res.Problem == "" && run.Errors[i] != nil:
			res.Problem = u + ": " + firstLine(run.Errors[i].Error())
		case res.Problem == "":
			res.Problem = fmt.Sprintf("%s: openssl %s, engine %v", u, run.Thumbprints[i], live[u])
		}
	}
	return res, err
}
