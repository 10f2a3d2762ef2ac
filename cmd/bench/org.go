package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/app"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/fleet"
)

// The organisation scenario: moto Organizations with A member accounts, each
// holding the same P provider Urls on H hosts, the last host's providers
// drifted in every account (fleet.StartOrg). The production wiring checks it
// with ORG_ROLE_NAME (ListAccounts, then each member's role assumed through
// STS), DRIFT_MODE=alert (the drift stays, so runs repeat), alerts to an SNS
// topic read back through SQS, and the state table.
const (
	orgRoleName       = "thumbprint-drift-member"
	orgStateTable     = "thumbprint-drift-bench-state"
	orgCreateParallel = 8                // creates in flight: moto answers one at a time
	orgRunLimit       = 14 * time.Minute // an organisation run's remaining time
)

// orgResults is the organisation scenario.
type orgResults struct {
	Load                  load
	Create, CreateMotoCPU time.Duration // the organisation and its providers in moto
	Runs                  []orgRun
	// Sharded is the same organisation as a sharded run (-shard-size).
	Sharded  *shardedRun
	Problems []string
}

// orgRun is one measured run over the organisation.
type orgRun struct {
	Name     string // in-process AC/C, bootstrap, repeat AC/C
	Setting  orgSetting
	Took     time.Duration
	Calls    map[string]testpeer.CallStats // by service; nil for the bootstrap
	DDBReads int                           // DynamoDB BatchGetItem calls (the rest are writes)
	Span     time.Duration                 // mean first-to-last call of an account
	Messages []string                      // subjects of the messages sent
	Bytes    int                           // of the report as JSON
	Counts   map[drift.Outcome]int
	CPU      time.Duration // the function's own (bootstrap), or this whole process's
	MotoCPU  time.Duration
	HWMKiB   int64    // bootstrap only
	TLS      int      // connections the hosts saw
	Limit    orgModel // the network model at the run's setting
	Problem  string
	Profile  *profile // the bootstrap's, with -v
}

// benchOrg builds the organisation and measures the production wiring over
// it: in-process at each -org-conc setting from empty state, then the
// bootstrap at the defaults from empty state, then in-process again over the
// state the bootstrap left (a repeat run).
func (b *bench) benchOrg(ctx context.Context) (*orgResults, error) {
	l := b.o.org
	res := &orgResults{Load: l}
	b.logf("organisation: creating %d member accounts x %d providers on %d hosts in moto, %d calls at a time", l.Accounts, l.Providers, l.Hosts, orgCreateParallel)
	if err := b.moto.Reset(ctx); err != nil {
		return nil, err
	}
	cpu0, _ := b.moto.CPUTime() // 0 where /proc cannot tell
	start := time.Now()
	w, err := fleet.StartOrg(ctx, b.moto, b.root, fleet.OrgSpec{
		Members:    l.Accounts,
		Fleet:      fleet.Spec{Providers: l.Providers, Hosts: l.Hosts, RTT: b.o.rtt, Drifted: fleet.LastHost(l.Hosts), HTTP1: b.o.idpHTTP1},
		AWSLatency: b.o.awsLatency,
		Parallel:   orgCreateParallel,
	})
	if err != nil {
		return nil, err
	}
	b.c.Add(w.Close)
	defer w.Close()
	cpu1, _ := b.moto.CPUTime()
	res.Create, res.CreateMotoCPU = time.Since(start), cpu1-cpu0
	b.logf("organisation: created in %.1fs", res.Create.Seconds())

	restore, err := fleet.TrustInSystemPool(b.root, b.dir)
	if err != nil {
		return nil, fmt.Errorf("organisation: %w", err)
	}
	defer restore()
	for _, s := range b.o.orgSettings {
		r, err := b.orgRun(ctx, w, "in-process "+s.String(), s, true, false)
		if err != nil {
			return nil, err
		}
		res.Runs = append(res.Runs, r)
	}
	if b.hostBin == "" {
		return res, nil
	}
	def := config.Default()
	s := orgSetting{def.AccountConcurrency, def.Concurrency}
	r, err := b.orgRun(ctx, w, "bootstrap", s, true, true)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		res.Problems = append(res.Problems, "bootstrap: "+err.Error())
		return res, nil
	}
	res.Runs = append(res.Runs, r)
	if len(b.o.orgSettings) > 0 {
		if r, err = b.orgRun(ctx, w, "repeat "+s.String(), s, false, false); err != nil {
			return nil, err
		}
		res.Runs = append(res.Runs, r)
	}
	if b.o.shardSize > 0 {
		if res.Sharded, err = b.shardedOrg(ctx, w); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			res.Problems = append(res.Problems, "sharded: "+err.Error())
		}
	}
	return res, nil
}

// orgRun measures one run over the organisation at setting s, from empty
// state when fresh: the host bootstrap through the Runtime API when
// bootstrap, else app.NewFromAWS in-process with its calls metered. It
// checks the report against the seed and reads the messages sent (a first
// run should send the shared drift as one message, a repeat none).
func (b *bench) orgRun(ctx context.Context, w *fleet.Org, name string, s orgSetting, fresh, bootstrap bool) (orgRun, error) {
	r := orgRun{Name: name, Setting: s}
	b.logf("organisation: %s", name)
	if _, err := w.Alerts.Drain(ctx); err != nil {
		return r, err
	}
	if fresh {
		if err := b.moto.ResetStateTable(ctx, orgStateTable); err != nil {
			return r, err
		}
	}
	tls := w.Handshakes()
	moto, _ := b.moto.CPUTime()
	var rep *drift.Report
	if bootstrap {
		bin, vars := b.hostBin, append(w.Env(), "DRIFT_MODE=alert", "ORG_ROLE_NAME="+orgRoleName, "STATE_TABLE="+orgStateTable)
		prefix := filepath.Join(b.profileDir(), "org-")
		if b.profBin != "" {
			bin, vars = b.profBin, append(vars, "BENCH_PROFILE="+prefix)
		}
		inv, err := b.invokeBin(ctx, bin, orgRunLimit, vars...)
		if err != nil {
			return r, err
		}
		r.Took, r.CPU, r.HWMKiB, r.Bytes, rep = inv.Took, inv.CPU, inv.HWMKiB, len(inv.Response), inv.Report
		if b.profBin != "" {
			p, err := b.readProfile(ctx, prefix)
			if err != nil {
				p.Err = err.Error()
			}
			r.Profile = &p
		}
	} else {
		cfg := config.Default()
		cfg.Mode, cfg.OrgRoleName, cfg.TopicARN, cfg.StateTable = config.ModeAlert, orgRoleName, w.Alerts.TopicARN, orgStateTable
		cfg.AccountConcurrency, cfg.Concurrency = s.AccountConc, s.Conc
		cfg.ProbeHandshakes, cfg.ProbeTimeout = b.o.handshakes, probeTimeout
		meter := testpeer.NewCallMeter()
		svc := app.NewFromAWS(ctx, w.AWSConfig(meter.APIOption), cfg, nil)
		rctx, cancel := context.WithTimeout(ctx, orgRunLimit)
		defer cancel()
		cpu, start := testpeer.SelfCPUTime(), time.Now()
		var err error
		rep, err = svc.Run(rctx, drift.Request{})
		r.Took, r.CPU = time.Since(start), testpeer.SelfCPUTime()-cpu
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
		if err != nil {
			r.Problem = "run error: " + firstLine(err.Error())
		}
		raw, _ := json.Marshal(rep)
		r.Calls, r.Span, r.Bytes = meter.ByService(), meter.AccountSpan(), len(raw)
		r.DDBReads = meter.Calls()[testpeer.Op{Service: "DynamoDB", Operation: "BatchGetItem"}].N
	}
	after, _ := b.moto.CPUTime()
	r.MotoCPU, r.TLS = after-moto, w.Handshakes()-tls
	l := b.o.org
	probe := fleet.LimitRTT(fleet.Shape{Providers: l.Accounts * l.Providers, URLs: l.Providers, Hosts: l.Hosts,
		Handshakes: b.o.handshakes, Concurrency: s.AccountConc * s.Conc})
	r.Limit = orgModel{Providers: l.Providers, Setting: s, Latency: b.o.awsLatency, Probe: time.Duration(probe) * b.o.rtt}
	if rep != nil {
		r.Counts = rep.Counts
		if p := w.CheckReport(rep, w.Members); p != "" && r.Problem == "" {
			r.Problem = p
		}
	}
	msgs, err := w.Alerts.Drain(ctx)
	if err != nil && r.Problem == "" {
		r.Problem = "reading the alerts: " + err.Error()
	}
	for _, m := range msgs {
		r.Messages = append(r.Messages, m.Subject)
	}
	b.logf("organisation: %s: %.1fs, %d messages, report %d KiB %s", name, r.Took.Seconds(), len(r.Messages), r.Bytes>>10, r.Problem)
	return r, nil
}
