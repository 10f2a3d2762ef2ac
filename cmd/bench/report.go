package main

import (
	"cmp"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/fleet"
)

// target is one figure of the last line and what the issues ask of it.
// value is 0 when not measured (every figure is positive); cmp is "<=" or
// ">=", or "" for a figure only reported (no target of its own).
type target struct {
	name, cmp, what string
	value, want     float64
}

// verdict is how the figure stands against its target.
func (t target) verdict() string {
	switch {
	case t.value == 0:
		return "not measured"
	case t.cmp == "":
		return "reported"
	case t.cmp == "<=" && t.value <= t.want, t.cmp == ">=" && t.value >= t.want:
		return "met"
	}
	return "MISSED"
}

// wanted is the target as the table prints it.
func (t target) wanted() string {
	if t.cmp == "" {
		return "-"
	}
	return fmt.Sprintf("%s %.4g", t.cmp, t.want)
}

// targets are the last line's figures, in its order.
func (r *results) targets() []target {
	var ratio, floorRatio, speedup, perMin, orgRSS, cpuPerAccount float64
	hsRatio, _, _ := r.handshakeRatio()
	if head := r.engineAt(headlineLoad.Name(), headlineConc); head != nil && head.Problem == "" {
		ratio, floorRatio = head.Ratio(r.opts.rtt), head.FloorRatio(r.opts.rtt)
		if i := slices.IndexFunc(r.peers, func(p peerResult) bool { return p.Load == head.Load }); i >= 0 && r.peers[i].Problem == "" {
			speedup = r.peers[i].Total().Seconds() / head.Took.Seconds()
		}
	}
	if o := r.org; o != nil && len(o.Runs) > 0 {
		run := &o.Runs[0]
		if fn := o.run("bootstrap"); fn != nil {
			run, orgRSS = fn, float64(fn.HWMKiB)/1024
			if fn.Problem == "" {
				cpuPerAccount = ms(fn.CPU) / float64(o.Load.Accounts)
			}
		}
		if run.Problem == "" {
			perMin = float64(o.Load.Accounts) / run.Took.Minutes()
		}
	}
	head := fmt.Sprintf("%s at C%d", headlineLoad.Name(), headlineConc)
	return []target{
		// The limit lets every probe start from List's ARNs, which the
		// contract forbids since issue 17 (an ignored provider's identity
		// provider is never contacted): no run may reach it, and its ratio
		// moves with moto's speed (floor / limit = 1 + R / IAM alone).
		// floor_ratio holds the 1.3 the limit had.
		{"limit_ratio", "", "measured / limit (probes from List's ARNs, before the ignore rule), " + head, ratio, 0},
		{"openssl_speedup", ">=", "procedure total / ours, " + head, speedup, 10},
		{"cold_start_ms", "<=", "median", ms(testpeer.Median(r.fn.ColdStarts)), 30},
		{"rss_mb", "<=", "MiB, VmHWM, largest over the one-account invocations", float64(r.fn.MaxRSSKiB()) / 1024, 40},
		{"bootstrap_mb", "<=", "MiB", float64(r.fn.BootstrapBytes) / (1 << 20), 13}, // 12 before the S3 client of sharded runs (issue 20)
		{"org_accounts_per_min", ">=", "member accounts per minute, the bootstrap's run (90 s for 1,000)", perMin, 1000.0 / 1.5},
		{"org_rss_mb", "<=", "MiB, VmHWM of the bootstrap's organisation run", orgRSS, 64},
		{"handshakes_ratio", "<=", fmt.Sprintf("median at PROBE_HANDSHAKES=%d / at 1, %s", r.opts.handshakes, head), hsRatio, 1.3},
		{"cpu_ms_per_account", "<=", "ms, user+sys CPU of the bootstrap's organisation run (start-up included) per member account", cpuPerAccount, 5},
		{"floor_ratio", "<=", "measured / floor (the limit under the ignore rule: each probe after its provider's Get), " + head, floorRatio, 1.3},
	}
}

// lastLine is the one line scripts read.
func lastLine(ts []target) string {
	line := "bench:"
	for _, t := range ts {
		line += " " + t.name + "=" + num(t.value)
	}
	return line
}

// handshakeRatio is the handshake comparison's median run at -handshakes
// over its median at PROBE_HANDSHAKES=1, with the two runs; 0 when not run
// or a run was not valid.
func (r *results) handshakeRatio() (ratio float64, atK, at1 *engineResult) {
	byK := map[int][]engineResult{}
	for _, e := range r.handshakes {
		if e.Problem != "" {
			return 0, nil, nil
		}
		byK[e.K] = append(byK[e.K], e)
	}
	took := func(e engineResult) float64 { return e.Took.Seconds() }
	atK, at1 = medianBy(byK[r.opts.handshakes], took), medianBy(byK[1], took)
	if atK == nil || at1 == nil {
		return 0, nil, nil
	}
	return atK.Took.Seconds() / at1.Took.Seconds(), atK, at1
}

// medianBy is the run of rs with the median key (the higher of the two
// middle ones for an even count); nil when rs is empty.
func medianBy(rs []engineResult, key func(engineResult) float64) *engineResult {
	if len(rs) == 0 {
		return nil
	}
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b engineResult) int { return cmp.Compare(key(a), key(b)) })
	return &rs[len(rs)/2]
}

func (r *results) engineAt(loadName string, conc int) *engineResult {
	if i := slices.IndexFunc(r.engine, func(e engineResult) bool { return e.Load == loadName && e.Conc == conc }); i >= 0 {
		return &r.engine[i]
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func num(x float64) string {
	if x == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", x)
}

// outcomes are the counts, or why the run is not valid.
func outcomes(c map[drift.Outcome]int, problem string) string {
	if problem != "" {
		return "INVALID: " + problem
	}
	var parts []string
	for _, o := range drift.Outcomes {
		if c[o] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", o, c[o]))
		}
	}
	return cmp.Or(strings.Join(parts, ", "), "-")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}

// share is a CPU time over a wall time, in cores.
func share(cpu, wall time.Duration) string {
	return fmt.Sprintf("%.2f", cpu.Seconds()/max(wall.Seconds(), 1e-9))
}

func printResults(out io.Writer, r *results) {
	o, rtt := r.opts, r.opts.rtt
	p := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	p("thumbprint-drift bench, %s (took %s)", r.started.UTC().Format("2006-01-02 15:04 MST"), r.finished.Sub(r.started).Round(time.Second))
	p("machine: %s/%s, %d cores (runtime.NumCPU), %s; AWS: moto_server on loopback", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	proto := "HTTP/2 (ALPN h2; http/1.1 too): a host's discoveries share one connection"
	if o.idpHTTP1 {
		proto = "HTTP/1.1 only (-idp-http1): a host's discoveries go one at a time per connection"
	}
	p("network: each identity provider behind a loopback forwarder, R = %s per round trip (connect 1 R, then R/2 each way per chunk); identity providers speak %s", rtt, proto)
	p("probe cost (internal/thumbprint): discovery D = %d R (new connection: TCP 1, TLS 1.3 1, GET 1), a further Url of a host G = %d R (GET on its HTTP/2 connection, or on a kept HTTP/1.1 one when one is idle), handshake S = %d R (TCP 1, TLS 1.3 1; the TLS 1.2 check too), K = %d handshakes per host, the discovery's and the TLS 1.2 check's among them", fleet.DiscoveryRTT, fleet.ReuseRTT, fleet.HandshakeRTT, o.handshakes)
	p("  %s\n", fleet.LimitFormula)

	if len(r.engine) > 0 {
		p("engine in-process (real IAM client to moto_server, real prober, mode report; one untimed warm-up run per load):")
		tw := tabwriter.NewWriter(out, 2, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "load\tC\tlimit\tmodel\tmeasured\tmeasured/limit\tIAM get\tprobe mean (ideal)\tCPU\tTLS conns (want)\tTLS per host\tTCP conns\toutcomes")
		for _, e := range r.engine {
			s := e.Shape
			ideal := time.Duration(fleet.IdealRTT(s)) * rtt / time.Duration(max(s.Providers, 1))
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%.2f\t%.1f ms\t%.0f ms (%.0f)\t%.0f%%\t%d (%d)\t%.2f\t%d\t%s\n", e.Load, e.Conc,
				secs(e.Limit(rtt)), secs(time.Duration(e.SimRTT)*rtt), secs(e.Took), e.Ratio(rtt), ms(e.IAMGet), ms(e.ProbeAvg), ms(ideal),
				100*e.CPU.Seconds()/e.Took.Seconds()/float64(runtime.NumCPU()), e.Handshakes, e.WantHS, e.TLSPerHost(), e.Connects, outcomes(e.Counts, e.Problem))
		}
		tw.Flush()
		for _, e := range r.engine {
			if base := r.engineAt(headlineLoad.Name(), e.Conc); e.DDBReads+e.DDBWrites+e.DDBTransacts > 0 && base != nil {
				p("  state cost, %s C%d: %d BatchGetItem, %d UpdateItem, %d TransactWriteItems, %+.0f ms over the stateless run", e.Load, e.Conc, e.DDBReads, e.DDBWrites, e.DDBTransacts, ms(e.Took-base.Took))
			}
			if len(e.Ratios) > 1 {
				p("  runs of %s C%d, measured / limit each (the table shows the median): %s; measured / floor each: %s", e.Load, e.Conc, joinNums(e.Ratios), joinNums(e.FloorRatios))
			}
			p("  limit of %s C%d: max(List %.1f ms + probing %s, IAM alone %s)", e.Load, e.Conc, ms(e.ListLone), secs(time.Duration(e.LimitRTT)*rtt), secs(e.IAMAlone))
			p("  floor of %s C%d, each probe after its provider's Get (an ignored provider's identity provider is never contacted): max(limit, IAM alone + the last provider's probe %s) = %s; measured / floor %.2f",
				e.Load, e.Conc, secs(time.Duration(fleet.AfterGetRTT(e.Shape))*rtt), secs(e.Floor(rtt)), e.FloorRatio(rtt))
		}
		p("  IAM get = mean GetOpenIDConnectProvider against moto; probe mean = one provider's probe, waiting for a host another provider\n"+
			"  is probing included (ideal: the limit's work spread evenly); CPU = this process (engine, identity providers, forwarders) over the %d cores;\n"+
			"  TLS conns = what the hosts saw; want = the fewest: per host one discovery connection, reused by its further Urls (G), and the probe's handshakes;\n"+
			"  TLS per host = TLS conns / H: over HTTP/2 a further Url adds none (one read while the host's first connection opens connects TCP only, closed unused);\n"+
			"  over HTTP/1.1, one when its discovery goes out while the host's others are dialing (or each has a discovery waiting for it already);\n"+
			"  TCP conns = the connections the hosts accepted: the TLS ones and those closed before any TLS byte\n", runtime.NumCPU())
	}
	printHandshakes(out, r)

	printOrg(out, r)

	if len(r.peers) > 0 {
		p("AWS's documented procedure, one provider after another (discovery: %s; openssl s_client -showcerts; last certificate; openssl x509 -fingerprint -sha1):", r.peers[0].Discovery)
		tw := tabwriter.NewWriter(out, 2, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "load\tproviders\ttotal\tper provider\tcurl / s_client / x509\tours (C8)\tspeed-up\tthumbprints agree")
		for _, pr := range r.peers {
			n, total, ours, speed := pr.Providers(), secs(pr.Total()), "-", "-"
			if n != pr.Of {
				total += fmt.Sprintf(" (extrapolated from %d)", n)
			}
			if e := r.engineAt(pr.Load, headlineConc); e != nil {
				ours, speed = secs(e.Took), fmt.Sprintf("%.1fx", pr.Total().Seconds()/e.Took.Seconds())
			}
			d := time.Duration(max(n, 1))
			agree := fmt.Sprintf("%d/%d", pr.Agree, n)
			if pr.Problem != "" {
				agree += "; FIRST PROBLEM: " + pr.Problem
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%.0f ms\t%.0f / %.0f / %.0f ms\t%s\t%s\t%s\n", pr.Load, pr.Of, total, ms(pr.PerProvider()),
				ms(pr.Steps.Discovery/d), ms(pr.Steps.SClient/d), ms(pr.Steps.X509/d), ours, speed, agree)
		}
		tw.Flush()
		p("  the procedure is given each provider's Url (no aws iam calls), makes one handshake per provider; ours also verifies, makes K per host\n")
	}

	if fn := r.fn; !o.noFunction {
		p("function binary (functions/drift-check):")
		if fn.BootstrapBytes > 0 {
			p("  bootstrap, linux/arm64 static stripped (make build-DriftCheckFunction): %.2f MiB (%d bytes)", float64(fn.BootstrapBytes)/(1<<20), fn.BootstrapBytes)
		}
		if len(fn.ColdStarts) > 0 {
			p("  cold start, process start to first Runtime API next (%s/%s binary, same flags, env against moto): median %.1f ms of %d (min %.1f, max %.1f); starting /usr/bin/true: %.1f ms",
				runtime.GOOS, runtime.GOARCH, ms(testpeer.Median(fn.ColdStarts)), len(fn.ColdStarts), ms(slices.Min(fn.ColdStarts)), ms(slices.Max(fn.ColdStarts)), ms(fn.SpawnFloor))
		}
		if len(fn.RSS) > 0 {
			p("  peak RSS after one scheduled invocation, a new process each, CONCURRENCY=8, DRIFT_MODE=report:")
			p("    VmHWM of the process (/proc/PID/status, its own image since exec) [rusage maxrss from wait4, never below the bench's own RSS on Linux: golang/go#32054]")
		}
		for _, s := range fn.RSS {
			p("    %s: %.1f MiB [%.1f] (invocation %.2f s; %s)", s.Load, float64(s.HWMKiB)/1024, float64(s.MaxrssKiB)/1024, s.Took.Seconds(), outcomes(s.Report.Counts, ""))
		}
		for _, pr := range fn.Problems {
			p("  PROBLEM: %s", firstLine(pr))
		}
		p("")
	}
	for _, n := range r.notes {
		p("note: %s", n)
	}

	ts := r.targets()
	p("targets:")
	tw := tabwriter.NewWriter(out, 2, 0, 2, ' ', 0)
	for _, t := range ts {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", t.name, num(t.value), t.wanted(), t.verdict(), t.what)
	}
	tw.Flush()
	p("%s", lastLine(ts))
}

// printHandshakes prints the handshake comparison.
func printHandshakes(out io.Writer, r *results) {
	ratio, atK, at1 := r.handshakeRatio()
	if len(r.handshakes) == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	p("handshakes per host, %s at C%d, in-process as above, %d rounds alternating which goes first:", headlineLoad.Name(), headlineConc, r.opts.hsRounds)
	tw := tabwriter.NewWriter(out, 2, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROBE_HANDSHAKES\truns\tmedian\tTLS per host\tTLS conns\tprobe mean")
	for _, k := range []int{r.opts.handshakes, 1} {
		var took []float64
		var last engineResult
		for _, e := range r.handshakes {
			if e.K == k {
				took, last = append(took, e.Took.Seconds()), e
			}
		}
		med := "-"
		if m := map[int]*engineResult{r.opts.handshakes: atK, 1: at1}[k]; m != nil {
			med = secs(m.Took)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.2f\t%d\t%.0f ms\n", k, joinNums(took), med, last.TLSPerHost(), last.Handshakes, ms(last.ProbeAvg))
	}
	tw.Flush()
	for _, e := range r.handshakes {
		if e.Problem != "" {
			p("  INVALID run at PROBE_HANDSHAKES=%d: %s", e.K, e.Problem)
			break
		}
	}
	p("  median at PROBE_HANDSHAKES=%d / median at 1 = %s (target <= 1.3)\n", r.opts.handshakes, num(ratio))
}

// printProfile prints the top entries of the bootstrap's profiles (-v).
func printProfile(p func(string, ...any), pr *profile) {
	if pr == nil {
		return
	}
	if pr.Err != "" {
		p("  PROBLEM: profile: %s", firstLine(pr.Err))
	}
	for _, s := range []struct {
		name  string
		lines []string
	}{{"CPU profile", pr.CPU}, {"allocation profile (alloc_space)", pr.Alloc}, {"live heap at its peak (inuse_space)", pr.Peak}} {
		if len(s.lines) == 0 {
			continue
		}
		p("  bootstrap %s, go tool pprof -top (files in %s):", s.name, pr.Dir)
		for _, l := range s.lines {
			p("    %s", l)
		}
	}
}

// printOrg prints the organisation scenario and the model built from it.
func printOrg(out io.Writer, r *results) {
	org := r.org
	if org == nil {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	l, lat := org.Load, r.opts.awsLatency
	p("organisation through the production wiring (app.NewFromAWS, ORG_ROLE_NAME, DRIFT_MODE=alert, SNS read back through SQS, STATE_TABLE emptied\n"+
		"before each run but the repeat): %d member accounts x the same %d provider Urls on %d hosts, the last host's drifted everywhere; a proxy adds %s\n"+
		"to each IAM and STS call; organisation and %d providers created in %s, moto at %s cores", l.Accounts, l.Providers, l.Hosts, lat,
		l.Accounts*l.Providers, org.Create.Round(100*time.Millisecond), share(org.CreateMotoCPU, org.Create))
	tw := tabwriter.NewWriter(out, 2, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "run\tlimit (probe, IAM)\tmeasured\t/limit\tper account: IAM+STS, DynamoDB calls; IAM+STS time; span\tmessages\treport\tmoto: calls/s, cores\tCPU cores\tpeak RSS\tTLS conns (want)\toutcomes")
	for _, e := range org.Runs {
		lim, a := e.Limit.Network(l.Accounts), float64(l.Accounts)
		perAcct, rate, rss := "(not metered)", "-", "-"
		if e.Calls != nil {
			iam, total := e.Calls["IAM"].Add(e.Calls["STS"]), testpeer.CallStats{}
			for _, c := range e.Calls {
				total = total.Add(c)
			}
			perAcct = fmt.Sprintf("%.1f, %.2f; %s; %s", float64(iam.N)/a, float64(e.Calls["DynamoDB"].N)/a, secs(iam.Time/time.Duration(l.Accounts)), secs(e.Span))
			rate = fmt.Sprintf("%.0f", float64(total.N)/e.Took.Seconds())
		}
		if e.HWMKiB > 0 {
			rss = fmt.Sprintf("%.1f MiB", float64(e.HWMKiB)/1024)
		}
		fmt.Fprintf(tw, "%s\t%s (%s, %s)\t%s\t%.2f\t%s\t%d\t%.0f KiB\t%s, %s\t%s\t%s\t%d (%d)\t%s\n", e.Name, secs(lim), secs(e.Limit.Probe), secs(e.Limit.IAM(l.Accounts)),
			secs(e.Took), e.Took.Seconds()/lim.Seconds(), perAcct, len(e.Messages), float64(e.Bytes)/1024, rate, share(e.MotoCPU, e.Took), share(e.CPU, e.Took), rss,
			e.TLS, fleet.WantTLS(l.Providers, l.Hosts, r.opts.handshakes), outcomes(e.Counts, e.Problem))
	}
	tw.Flush()
	for _, e := range org.Runs {
		if len(e.Messages) > 0 {
			p("  %s: %d messages, first %q", e.Name, len(e.Messages), e.Messages[0])
		}
	}
	for _, pr := range org.Problems {
		p("  PROBLEM: %s", firstLine(pr))
	}
	if fn := org.run("bootstrap"); fn != nil {
		p("  bootstrap CPU: %.2f ms per account (user+sys %.1f s over %d accounts, start-up included)", ms(fn.CPU)/float64(l.Accounts), fn.CPU.Seconds(), l.Accounts)
		printProfile(p, fn.Profile)
	}
	printSharded(p, org)
	p("  limit: the shared hosts' probing + IAM = ceil(A/AC) x (AssumeRole, List, ceil(P/C) Gets) x %s; per account: calls (SDK middleware), their latency, AssumeRole\n"+
		"  to last Get (mean); moto near 1 core is the bound; CPU: the function's own (bootstrap), this whole process in-process (hosts, forwarders, meter)", lat)
	if m, ok := r.model(); ok {
		p("  model (README): wall = max(network, CPU); network = probe %s + ceil(A/%d) ListAccounts pages x L + ceil(A/AC) x %d calls x L", secs(m.Probe), orgListPage, m.chain())
		p("    + DynamoDB (%.2f reads + %.2f writes / %d) per account x %s; CPU = %.2f ms per account / (memory / %d MB); RSS = %.1f MiB + %.1f KiB per account",
			m.DDBReads, m.DDBWrites, ddbWritesAtOnce, ddbLatency, ms(m.CPUPerAccount), lambdaMBPerVCPU, m.RSSBaseMiB, m.RSSPerAccountMiB*1024)
		for _, n := range []int{l.Accounts, 10000} {
			for _, lat := range []time.Duration{m.Latency, 2 * m.Latency} {
				mm := m
				mm.Latency, mm.ListLatency = lat, lat
				p("    %d accounts x %dp at AC/C %s, L = %s: network %s; CPU %s at 128 MB, %s at 256 MB; wall %s / %s; RSS %.0f MiB", n, l.Providers, m.Setting, lat,
					secs(mm.Network(n)), secs(mm.CPU(n, 128)), secs(mm.CPU(n, 256)), secs(mm.Wall(n, 128)), secs(mm.Wall(n, 256)), mm.RSSMiB(n))
			}
		}
	}
	p("")
}

// joinNums prints xs as num does, space-separated.
func joinNums(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = num(x)
	}
	return strings.Join(parts, " ")
}
