package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/oidcprovider"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/thumbprint"
)

// probeTimeout bounds each provider's probe in the engine runs, as PROBE_TIMEOUT.
const probeTimeout = 10 * time.Second

// engineRunLimit bounds one engine run.
const engineRunLimit = 3 * time.Minute

// engineResult is one measured run of the engine.
type engineResult struct {
	Load     string
	Conc     int
	Shape    shape
	LimitRTT int // the probing's limit: limitRTT
	SimRTT   int // the engine's probe schedule in round trips: simulateRTT
	// ListLone is the fastest List against moto with nothing else running.
	ListLone time.Duration
	// IAMAlone is the IAM reads alone: List, then every Get, C at once, with
	// nothing else running (moto serves calls about one at a time, so this is
	// not ceil(P/C) lone Gets): the IAM term of the limit.
	IAMAlone   time.Duration
	Took       time.Duration
	Handshakes int // TLS handshakes the identity providers saw
	WantHS     int // discoveries + hosts x K
	Counts     map[drift.Outcome]int
	Problem    string // a result that was not as seeded; the figure is then not valid

	IAMGet   time.Duration // mean time of one IAM GetOpenIDConnectProvider (moto)
	ProbeAvg time.Duration // mean time of one provider's probe, waits for a shared host included
	CPU      time.Duration // this process's CPU time over the run (engine, identity providers and forwarders)
}

// Limit is the fastest the run can be: List, then probing and IAM reads side by side.
func (r engineResult) Limit(rtt time.Duration) time.Duration {
	return limit(r.Shape, rtt, r.ListLone, r.IAMAlone)
}

// Ratio is measured time over the limit.
func (r engineResult) Ratio(rtt time.Duration) float64 {
	return r.Took.Seconds() / r.Limit(rtt).Seconds()
}

// engineBench runs the real engine in-process: the real IAM client to
// moto_server, the real prober trusting the generated root, connecting
// directly (the forwarders are the hosts), mode report so runs repeat.
type engineBench struct {
	iam        *iam.Client
	root       *testidp.CA
	handshakes int
	// cpuProfile, when set, receives a CPU profile of the headline run.
	cpuProfile string
}

// run checks every provider of w once at concurrency conc, as the function
// does: the engine lists them itself.
func (b *engineBench) run(ctx context.Context, w *world, l load, conc int, last map[string][]string) (engineResult, error) {
	prober := thumbprint.New(thumbprint.Options{Handshakes: b.handshakes, Timeout: probeTimeout, RootCAs: b.root.Pool()})
	store := oidcprovider.New(b.iam)
	timed := &timedStore{Store: store}
	var probes timing
	engine := drift.New(drift.Options{
		Providers: timed,
		NewProbe: func() drift.ProbeFunc {
			probe := prober.NewRun().Probe
			return func(ctx context.Context, providerURL string) (*thumbprint.Result, error) {
				defer probes.since(time.Now())
				return probe(ctx, providerURL)
			}
		},
		Mode:        config.ModeReport,
		Concurrency: conc,
	})

	// The order the engine will work in: its own List (sorted ARNs), round
	// robin over their hosts (drift.WorkOrder).
	arns, err := store.List(ctx)
	if err != nil {
		return engineResult{}, err
	}
	// The engine starts every provider's probe at once, in List order; the
	// probe's scheduler grants hosts in the order they ask.
	jobs := make([]job, 0, len(arns))
	for _, arn := range arns {
		p := w.byARN(arn)
		if p == nil {
			return engineResult{}, fmt.Errorf("IAM lists %s, which the bench did not create", arn)
		}
		jobs = append(jobs, job{URL: p.URL, Host: p.Host.Addr()})
	}
	s := shape{Providers: len(w.providers), URLs: len(w.providers), Hosts: len(w.hosts), Handshakes: b.handshakes, Concurrency: conc}
	listLone, iamAlone, err := iamFloor(ctx, store, arns, conc)
	if err != nil {
		return engineResult{}, err
	}

	rctx, cancel := context.WithTimeout(ctx, engineRunLimit)
	defer cancel()
	before := w.Handshakes()
	stopProfile, err := b.profile(l, conc)
	if err != nil {
		return engineResult{}, err
	}
	cpu := cpuTime()
	start := time.Now()
	rep, err := engine.Run(rctx, drift.Request{})
	took := time.Since(start)
	cpu = cpuTime() - cpu
	stopProfile()
	if ctx.Err() != nil {
		return engineResult{}, ctx.Err()
	}
	r := engineResult{
		Load: l.Name(), Conc: conc, Shape: s,
		LimitRTT: limitRTT(s), SimRTT: simulateRTT(jobs, probeConcurrency, b.handshakes), ListLone: listLone, IAMAlone: iamAlone,
		Took: took, Handshakes: w.Handshakes() - before, WantHS: s.URLs + s.Hosts*s.Handshakes,
		IAMGet: timed.gets.mean(), ProbeAvg: probes.mean(), CPU: cpu,
	}
	if err != nil {
		r.Problem = "run error: " + err.Error()
	}
	if rep != nil {
		r.Counts = rep.Counts
		if p := w.checkReport(rep); p != "" && r.Problem == "" {
			r.Problem = p
		}
		if last != nil {
			for _, res := range rep.Results {
				last[res.URL] = res.LiveThumbprints
			}
		}
	}
	return r, nil
}

// iamFloor returns the fastest of a few Lists made one at a time, and how
// long the run's IAM reads take alone: List, then a Get of every provider,
// conc at once, nothing else running.
func iamFloor(ctx context.Context, store *oidcprovider.Store, arns []string, conc int) (list, alone time.Duration, err error) {
	ls := make([]time.Duration, 0, loneSamples)
	for range loneSamples {
		start := time.Now()
		if _, err := store.List(ctx); err != nil {
			return 0, 0, fmt.Errorf("lone List: %w", err)
		}
		ls = append(ls, time.Since(start))
	}
	start := time.Now()
	if _, err := store.List(ctx); err != nil {
		return 0, 0, fmt.Errorf("List: %w", err)
	}
	jobs := make(chan string)
	errs := make(chan error, conc)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for arn := range jobs {
				if _, err := store.Get(ctx, arn); err != nil {
					errs <- fmt.Errorf("Get %s: %w", arn, err)
					return
				}
			}
		})
	}
	for _, arn := range arns {
		jobs <- arn
	}
	close(jobs)
	wg.Wait()
	close(errs)
	return slices.Min(ls), time.Since(start), <-errs
}

// profile starts the CPU profile when this is the headline run and one was
// asked for; the returned function stops it.
func (b *engineBench) profile(l load, conc int) (func(), error) {
	if b.cpuProfile == "" || l.Name() != headlineLoad.Name() || conc != headlineConc {
		return func() {}, nil
	}
	f, err := os.Create(b.cpuProfile)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	b.cpuProfile = "" // once
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// byARN finds a seeded provider by its ARN.
func (w *world) byARN(arn string) *provider {
	for _, p := range w.providers {
		if p.ARN == arn {
			return p
		}
	}
	return nil
}

// checkReport compares a report with the seed: every provider checked, live
// thumbprint = its host's intermediate, publicly trusted, in-sync or drift as
// seeded. It returns the first difference, "" when none.
func (w *world) checkReport(rep *drift.Report) string {
	if rep.Checked != len(w.providers) {
		return fmt.Sprintf("checked %d of %d providers", rep.Checked, len(w.providers))
	}
	return w.checkResults(rep.Results)
}

// checkResults compares results with the seed by provider Url (in any
// account): live thumbprint = its host's intermediate, publicly trusted,
// in-sync or drift as seeded. It returns the first difference, "" when none.
func (w *world) checkResults(results []drift.Result) string {
	for _, res := range results {
		p := w.byURL[res.URL]
		if p == nil {
			return fmt.Sprintf("%s: %s (%s)", res.ProviderARN, res.Outcome, firstLine(res.Detail))
		}
		want := drift.InSync
		if p.Drifted {
			want = drift.Drift
		}
		switch {
		case res.Outcome != want:
			return fmt.Sprintf("%s: %s, want %s (%s)", p.URL, res.Outcome, want, firstLine(res.Detail))
		case !slices.Equal(res.LiveThumbprints, []string{p.Host.thumbprint}):
			return fmt.Sprintf("%s: live %v, want [%s]", p.URL, res.LiveThumbprints, p.Host.thumbprint)
		case !res.PubliclyTrusted:
			return fmt.Sprintf("%s: chain not verified against the bench's root", p.URL)
		}
	}
	return ""
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}

// timing sums durations safely from many goroutines.
type timing struct {
	mu    sync.Mutex
	n     int
	total time.Duration
}

func (t *timing) since(start time.Time) {
	d := time.Since(start)
	t.mu.Lock()
	t.n++
	t.total += d
	t.mu.Unlock()
}

func (t *timing) mean() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == 0 {
		return 0
	}
	return t.total / time.Duration(t.n)
}

// timedStore is the real IAM store, timing its Get calls.
type timedStore struct {
	*oidcprovider.Store
	gets timing
}

func (s *timedStore) Get(ctx context.Context, arn string) (oidcprovider.Provider, error) {
	defer s.gets.since(time.Now())
	return s.Store.Get(ctx, arn)
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
