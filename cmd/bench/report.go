package main

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/thumbprint"
)

// Targets of the benchmark issue.
const (
	targetLimitRatio = 1.3
	targetSpeedup    = 10
	targetColdMS     = 30
	targetRSSMB      = 40
	targetBootMB     = 12
)

// figures are the last line's numbers; NaN when not measured.
type figures struct {
	LimitRatio, Speedup, ColdMS, RSSMB, BootMB float64
}

func (r *results) figures() figures {
	f := figures{math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()}
	head := r.engineAt(headlineLoad.Name(), headlineConc)
	if head != nil && head.Problem == "" {
		f.LimitRatio = head.Ratio(r.opts.rtt)
	}
	if p := r.peerFor(headlineLoad.Name()); p != nil && head != nil && p.Problem == "" && head.Problem == "" {
		f.Speedup = p.Total().Seconds() / head.Took.Seconds()
	}
	if len(r.fn.ColdStarts) > 0 {
		f.ColdMS = ms(median(r.fn.ColdStarts))
	}
	if m := r.fn.MaxRSSKiB(); m > 0 {
		f.RSSMB = float64(m) / 1024
	}
	if r.fn.BootstrapBytes > 0 {
		f.BootMB = float64(r.fn.BootstrapBytes) / (1 << 20)
	}
	return f
}

func (r *results) engineAt(loadName string, conc int) *engineResult {
	for i := range r.engine {
		e := &r.engine[i]
		if e.Load == loadName && e.Conc == conc {
			return e
		}
	}
	return nil
}

func (r *results) peerFor(loadName string) *peerResult {
	for i := range r.peers {
		if r.peers[i].Load == loadName {
			return &r.peers[i]
		}
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// lastLine is the one line scripts read, exactly as the issue asks.
func (f figures) lastLine() string {
	return fmt.Sprintf("bench: limit_ratio=%s openssl_speedup=%s cold_start_ms=%s rss_mb=%s bootstrap_mb=%s",
		num(f.LimitRatio), num(f.Speedup), num(f.ColdMS), num(f.RSSMB), num(f.BootMB))
}

func num(x float64) string {
	if math.IsNaN(x) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", x)
}

func counts(c map[drift.Outcome]int) string {
	var parts []string
	for _, o := range drift.Outcomes {
		if c[o] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", o, c[o]))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func printResults(out io.Writer, r *results) {
	o := r.opts
	rtt := o.rtt
	fmt.Fprintf(out, "thumbprint-drift bench, %s (took %s)\n", r.started.UTC().Format("2006-01-02 15:04 MST"), r.finished.Sub(r.started).Round(time.Second))
	fmt.Fprintf(out, "machine: %s/%s, %d cores (runtime.NumCPU), %s; IAM: moto_server on loopback\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(out, "network: each identity provider behind a loopback forwarder, R = %s per round trip (connect 1 R, then R/2 each way per chunk)\n", rtt)
	fmt.Fprintf(out, "probe cost (internal/thumbprint): discovery D = %d R (new connection: TCP 1, TLS 1.3 1, GET 1), handshake S = %d R (TCP 1, TLS 1.3 1; the TLS 1.2 check too), K = %d handshakes per host, the discovery's one of them\n", discoveryRTT, handshakeRTT, o.handshakes)
	fmt.Fprintf(out, "  discoveries are per distinct provider Url (U), handshakes per distinct host (H): the run cache probes each host once;\n")
	fmt.Fprintf(out, "  a host's handshakes and TLS 1.2 check run beside its discovery, hosts Pc = %d at once (PROBE_CONCURRENCY), at most M = %d connections per host; IAM reads (C at once) do not wait for probes\n", probeConcurrency, thumbprint.MaxConnsPerHost)
	fmt.Fprintf(out, "  %s\n  (a lower bound: the probes start from List's ARNs; probing and IAM reads then go side by side; moto serves about one call at a time)\n", limitFormula)
	fmt.Fprintf(out, "  model = the engine's probe schedule on that network with no other cost: every provider's probe started at once in List order, hosts granted in order\n\n")

	fmt.Fprintln(out, "engine in-process (real IAM client to moto_server, real prober, mode report; one untimed warm-up run per load):")
	tw := tabwriter.NewWriter(out, 2, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "load\tC\tlimit\tmodel\tmeasured\tmeasured/limit\tIAM get\tprobe mean (ideal)\tCPU\tTLS conns (want)\toutcomes")
	for _, e := range r.engine {
		lim := e.Limit(rtt)
		model := time.Duration(e.SimRTT) * rtt
		outcome := counts(e.Counts)
		if e.Problem != "" {
			outcome = "INVALID: " + e.Problem
		}
		s := e.Shape
		ideal := time.Duration(s.URLs*discoveryRTT+s.Hosts*s.Handshakes*handshakeRTT) * rtt / time.Duration(max(s.Providers, 1))
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%.2f\t%.1f ms\t%.0f ms (%.0f)\t%.0f%%\t%d (%d)\t%s\n", e.Load, e.Conc,
			secs(lim), secs(model), secs(e.Took), e.Ratio(rtt), ms(e.IAMGet), ms(e.ProbeAvg), ms(ideal),
			100*e.CPU.Seconds()/e.Took.Seconds()/float64(runtime.NumCPU()), e.Handshakes, e.WantHS, outcome)
	}
	tw.Flush()
	for _, e := range r.engine {
		fmt.Fprintf(out, "  limit of %s C%d: max(List %.1f ms + probing %s, IAM alone %s)\n", e.Load, e.Conc,
			ms(e.ListLone), secs(time.Duration(e.LimitRTT)*rtt), secs(e.IAMAlone))
	}
	fmt.Fprintln(out, "  IAM get = mean GetOpenIDConnectProvider against moto; probe mean = one provider's probe, waiting for a host another provider")
	fmt.Fprintf(out, "  is probing included (ideal: the limit's work spread evenly); CPU = this process (engine, identity providers, forwarders) over the %d cores\n", runtime.NumCPU())
	fmt.Fprintln(out)

	printOrg(out, r)

	if len(r.peers) > 0 {
		fmt.Fprintf(out, "AWS's documented procedure, one provider after another (discovery: %s; openssl s_client -showcerts; last certificate; openssl x509 -fingerprint -sha1):\n", r.peers[0].Discovery)
		tw = tabwriter.NewWriter(out, 2, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "load\tproviders\ttotal\tper provider\tcurl / s_client / x509\tours (C8)\tspeed-up\tthumbprints agree")
		for _, p := range r.peers {
			total := secs(p.Total())
			if p.Providers != p.Of {
				total += fmt.Sprintf(" (extrapolated from %d)", p.Providers)
			}
			n := time.Duration(max(p.Providers, 1))
			steps := fmt.Sprintf("%.0f / %.0f / %.0f ms", ms(p.Curl/n), ms(p.SClient/n), ms(p.X509/n))
			ours, speed := "-", "-"
			if e := r.engineAt(p.Load, headlineConc); e != nil {
				ours = secs(e.Took)
				speed = fmt.Sprintf("%.1fx", p.Total().Seconds()/e.Took.Seconds())
			}
			agree := fmt.Sprintf("%d/%d", p.Agree, p.Providers)
			if p.Problem != "" {
				agree += "; FIRST PROBLEM: " + p.Problem
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%.0f ms\t%s\t%s\t%s\t%s\n", p.Load, p.Of, total, ms(p.PerProvider()), steps, ours, speed, agree)
		}
		tw.Flush()
		fmt.Fprintln(out, "  the procedure is given each provider's Url (no aws iam calls), makes one handshake per provider; ours also verifies, makes K per host")
		fmt.Fprintln(out)
	}

	fn := r.fn
	if !o.noFunction {
		fmt.Fprintln(out, "function binary (functions/drift-check):")
		if fn.BootstrapBytes > 0 {
			fmt.Fprintf(out, "  bootstrap, linux/arm64 static stripped (make build-DriftCheckFunction): %.2f MiB (%d bytes)\n", float64(fn.BootstrapBytes)/(1<<20), fn.BootstrapBytes)
		}
		if len(fn.ColdStarts) > 0 {
			lo, hi := fn.ColdStarts[0], fn.ColdStarts[0]
			for _, d := range fn.ColdStarts {
				lo, hi = min(lo, d), max(hi, d)
			}
			fmt.Fprintf(out, "  cold start, process start to first Runtime API next (%s/%s binary, same flags, env against moto): median %.1f ms of %d (min %.1f, max %.1f); starting /usr/bin/true: %.1f ms\n",
				runtime.GOOS, runtime.GOARCH, ms(median(fn.ColdStarts)), len(fn.ColdStarts), ms(lo), ms(hi), ms(fn.SpawnFloor))
		}
		if len(fn.RSS) > 0 {
			fmt.Fprintln(out, "  peak RSS after one scheduled invocation, a new process each, CONCURRENCY=8, DRIFT_MODE=report:")
			fmt.Fprintln(out, "    VmHWM of the process (/proc/PID/status, its own image since exec) [rusage maxrss from wait4, never below the bench's own RSS on Linux: golang/go#32054]")
			for _, l := range uniqueLoads(fn.RSS) {
				var hwm, maxrss, took []string
				var c map[drift.Outcome]int
				for _, s := range fn.RSS {
					if s.Load == l {
						hwm = append(hwm, fmt.Sprintf("%.1f", float64(s.HWMKiB)/1024))
						maxrss = append(maxrss, fmt.Sprintf("%.1f", float64(s.MaxrssKiB)/1024))
						took = append(took, fmt.Sprintf("%.2f", s.Took.Seconds()))
						c = s.Counts
					}
				}
				fmt.Fprintf(out, "    %s: %s MiB [%s] (invocations %s s; %s)\n", l, strings.Join(hwm, ", "), strings.Join(maxrss, ", "), strings.Join(took, ", "), counts(c))
			}
		}
		for _, p := range fn.Problems {
			fmt.Fprintf(out, "  PROBLEM: %s\n", firstLine(p))
		}
		fmt.Fprintln(out)
	}
	for _, n := range r.notes {
		fmt.Fprintf(out, "note: %s\n", n)
	}

	f := r.figures()
	fmt.Fprintln(out, "targets:")
	tw = tabwriter.NewWriter(out, 2, 0, 2, ' ', 0)
	target := func(name string, v float64, cmp string, want float64, what string) {
		verdict := "not measured"
		if !math.IsNaN(v) {
			ok := v <= want
			if cmp == ">=" {
				ok = v >= want
			}
			verdict = "met"
			if !ok {
				verdict = "MISSED"
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s %g\t%s\t%s\n", name, num(v), cmp, want, verdict, what)
	}
	target("limit_ratio", f.LimitRatio, "<=", targetLimitRatio, fmt.Sprintf("measured / limit, %s at C%d", headlineLoad.Name(), headlineConc))
	target("openssl_speedup", f.Speedup, ">=", targetSpeedup, fmt.Sprintf("procedure total / ours, %s at C%d", headlineLoad.Name(), headlineConc))
	target("cold_start_ms", f.ColdMS, "<=", targetColdMS, "median")
	target("rss_mb", f.RSSMB, "<=", targetRSSMB, "MiB, VmHWM, largest over the invocations")
	target("bootstrap_mb", f.BootMB, "<=", targetBootMB, "MiB")
	tw.Flush()
	fmt.Fprintln(out, f.lastLine())
}

func uniqueLoads(ss []rssSample) []string {
	var out []string
	for _, s := range ss {
		if !slices.Contains(out, s.Load) {
			out = append(out, s.Load)
		}
	}
	return out
}

// printOrg prints the organisation rows, if any ran.
func printOrg(out io.Writer, r *results) {
	if len(r.orgs) == 0 {
		return
	}
	rtt := r.opts.rtt
	first := r.orgs[0]
	l, sh, lone := r.opts.org, first.Shape, first.Lone
	fmt.Fprintf(out, "organisation mode through the production wiring (app.NewEngineFromAWS, ACCOUNT_ROLE_ARNS = %d roles assumed through moto's STS, mode report;\n", l.Accounts)
	fmt.Fprintf(out, "the same %d provider Urls on %d hosts in every account, %d providers created in %s; one untimed warm-up run):\n", l.Providers, l.Hosts, l.Accounts*l.Providers, r.orgCreate.Round(100*time.Millisecond))
	tw := tabwriter.NewWriter(out, 2, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "load\tAC/C\tlimit (network, IAM)\tmeasured\tmeasured/limit\tper account: IAM calls, IAM time, wall\tGet mean\tmoto: calls/s, CPU\tCPU\tTLS conns (want)\toutcomes")
	for _, e := range r.orgs {
		outcome := counts(e.Counts)
		if e.Problem != "" {
			outcome = "INVALID: " + e.Problem
		}
		lim := e.Limit(rtt)
		fmt.Fprintf(tw, "%s\t%s\t%s (%s, %s)\t%s\t%.2f\t%d, %s, %s\t%.1f ms\t%.0f, %s\t%.0f%%\t%d (%d)\t%s\n",
			e.Load, e.Setting, secs(lim), secs(time.Duration(e.NetRTT)*rtt), secs(e.IAMLimit), secs(e.Took), e.Took.Seconds()/lim.Seconds(),
			e.PerAcct.Calls, secs(e.PerAcct.Time), secs(e.PerAcct.Wall), ms(e.GetMean), float64(e.Calls)/e.Took.Seconds(), motoShare(e),
			100*e.CPU.Seconds()/e.Took.Seconds()/float64(runtime.NumCPU()), e.Handshakes, e.WantHS, outcome)
	}
	tw.Flush()
	fmt.Fprintf(out, "  network = the limit above over the probe work all accounts share (one probe run: each Url discovered, each host handshaken once):\n")
	fmt.Fprintf(out, "    P = %d providers, U = %d Urls, H = %d hosts, C' = AC x C workers; TLS conns want U + H x K, as for one account\n", sh.Providers, sh.URLs, sh.Hosts)
	fmt.Fprintf(out, "  IAM = ceil(A/AC) x (AssumeRole + List + ceil(P/C) x Get), each call at its lone latency against moto (fastest of %d with nothing else running:\n", loneSamples)
	fmt.Fprintf(out, "    AssumeRole %.1f ms, List %.1f ms, Get %.1f ms): IAM calls are per account, A = %d accounts, P = %d providers each\n", ms(lone.AssumeRole), ms(lone.List), ms(lone.Get), l.Accounts, l.Providers)
	fmt.Fprintln(out, "  per account = its calls (AssumeRole, List, one Get per provider), their summed latency, and its wall time from AssumeRole to its last Get, means over the accounts")
	fmt.Fprintln(out, "  moto answers every account from one Python process: calls/s = what it sustained over the run (IAM and STS, all accounts), CPU = its CPU")
	fmt.Fprintln(out, "  time over the run in cores: near one core (one interpreter lock), moto is the bound, not the engine. In AWS each account's IAM is its")
	fmt.Fprintln(out, "  own (and rate limited per account), which the IAM term assumes. CPU (last column) = this process over all cores")
	fmt.Fprintln(out)
}

// motoShare is moto's CPU over a run in cores, "?" when unknown.
func motoShare(e orgResult) string {
	if e.MotoCPU < 0 {
		return "?"
	}
	return fmt.Sprintf("%.2f cores", e.MotoCPU.Seconds()/e.Took.Seconds())
}
