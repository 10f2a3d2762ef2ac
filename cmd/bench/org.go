package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"

	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
	"github.com/thumbprint-drift/thumbprint-drift/internal/app"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

// Organisation mode: A member accounts, each holding the same P provider Urls
// (GitHub Actions, GitLab, EKS appear in most accounts of an organisation) on H
// hosts. The production wiring runs it: app.NewEngineFromAWS with
// cfg.AccountRoleARNs, each role assumed through moto's STS, whose credentials
// land the IAM calls in that account's own state.

// orgRoleName is the member role in every account; moto lets any role be assumed.
const orgRoleName = "thumbprint-drift-member"

// orgCreateLimit bounds creating the organisation's providers (A x P creates).
const orgCreateLimit = 3 * time.Minute

// orgCreateParallel is how many creates are in flight at once.
const orgCreateParallel = 8

// loneSamples is how many calls of each kind are timed one at a time, with
// nothing else running, for the IAM term of the limit (the fastest counts).
const loneSamples = 15

// orgSetting is one (ACCOUNT_CONCURRENCY, CONCURRENCY) pair.
type orgSetting struct{ AccountConc, Conc int }

func (s orgSetting) String() string { return fmt.Sprintf("%d/%d", s.AccountConc, s.Conc) }

// parseOrgLoad reads ACCOUNTSxPROVIDERSxHOSTS; "" or "none" is no load.
func parseOrgLoad(s string) (load, error) {
	if s = strings.TrimSpace(s); s == "" || s == "none" {
		return load{}, nil
	}
	f := strings.Split(s, "x")
	var n [3]int
	ok := len(f) == len(n)
	for i := range n {
		var err error
		if !ok {
			break
		}
		if n[i], err = strconv.Atoi(strings.TrimSpace(f[i])); err != nil {
			ok = false
		}
	}
	if !ok || n[0] < 2 || n[0] > 100 || n[1] < 1 || n[1] > 1000 || n[2] < 1 || n[2] > n[1] {
		return load{}, fmt.Errorf("%q: want ACCOUNTSxPROVIDERSxHOSTS, 2 <= accounts <= 100, 1 <= hosts <= providers <= 1000, or none", s)
	}
	return load{Accounts: n[0], Providers: n[1], Hosts: n[2]}, nil
}

// parseOrgSettings reads "4/8,20/8": ACCOUNT_CONCURRENCY/CONCURRENCY pairs.
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

// orgAccounts are the load's member account ids and role ARNs.
func orgAccounts(n int) (ids, roles []string) {
	for i := range n {
		id := fmt.Sprintf("%012d", 210000000001+i)
		ids = append(ids, id)
		roles = append(roles, fmt.Sprintf("arn:aws:iam::%s:role/%s", id, orgRoleName))
	}
	return ids, roles
}

// iamCost is what one account's IAM and STS calls cost, as the bench saw them.
type iamCost struct {
	Calls int           // AssumeRole, List and Gets
	Time  time.Duration // their summed latency
	Wall  time.Duration // first AssumeRole start to last Get end
}

// loneLatency is the fastest latency of each call kind against moto with
// nothing else running: under load a call only gets slower.
type loneLatency struct {
	AssumeRole, List, Get time.Duration
}

// orgResult is one measured organisation run.
type orgResult struct {
	Load               string
	Accounts           int
	Setting            orgSetting
	Shape              shape // the shared probe work: all accounts' providers, the distinct Urls and hosts, AC x C workers
	NetRTT             int   // limitRTT(Shape)
	IAMLimit           time.Duration
	Lone               loneLatency
	Took               time.Duration
	PerAcct            iamCost // means over the accounts
	Calls              int     // IAM and STS calls of the run, all accounts
	GetMean            time.Duration
	CPU                time.Duration
	MotoCPU            time.Duration // moto_server's CPU time over the run; -1 when unknown
	Handshakes, WantHS int
	Counts             map[drift.Outcome]int
	Problem            string
}

// Limit is the larger of the network and IAM terms.
func (r orgResult) Limit(rtt time.Duration) time.Duration {
	return max(time.Duration(r.NetRTT)*rtt, r.IAMLimit)
}

// orgIAMLimit is the IAM term: accounts run AccountConc at once; each first
// assumes its role, then lists, then its C workers make its P Gets (each
// worker at least ceil(P/C) one after another). IAM is per account, so only
// AccountConc makes accounts wait for each other. Calls are taken at their
// fastest lone latency: under load they only get slower.
func orgIAMLimit(accounts, providers int, s orgSetting, lone loneLatency) time.Duration {
	perAccount := lone.AssumeRole + lone.List + time.Duration(ceilDiv(providers, min(s.Conc, providers)))*lone.Get
	return time.Duration(ceilDiv(accounts, min(s.AccountConc, accounts))) * perAccount
}

// iamMeter times every IAM and STS call of the clients it is installed in
// (aws.Config.APIOptions), retries included, by kind and by account.
type iamMeter struct {
	mu    sync.Mutex
	calls map[string]int
	time  map[string]time.Duration
	first map[string]time.Time // by account
	last  map[string]time.Time
	errs  int
}

func newIAMMeter() *iamMeter {
	m := &iamMeter{}
	m.reset()
	return m
}

func (m *iamMeter) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls, m.time = map[string]int{}, map[string]time.Duration{}
	m.first, m.last = map[string]time.Time{}, map[string]time.Time{}
	m.errs = 0
}

// apiOption installs the meter first in a client's stack, around retries.
func (m *iamMeter) apiOption(s *middleware.Stack) error {
	return s.Initialize.Add(middleware.InitializeMiddlewareFunc("BenchIAMMeter",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			var kind, account string
			switch v := in.Parameters.(type) {
			case *sts.AssumeRoleInput:
				kind, account = "AssumeRole", accounts.AccountOf(aws.ToString(v.RoleArn))
			case *iam.ListOpenIDConnectProvidersInput:
				kind = "List"
			case *iam.GetOpenIDConnectProviderInput:
				kind, account = "Get", accounts.AccountOf(aws.ToString(v.OpenIDConnectProviderArn))
			default:
				kind = strings.TrimPrefix(fmt.Sprintf("%T", v), "*")
			}
			start := time.Now()
			out, md, err := next.HandleInitialize(ctx, in)
			m.record(kind, account, start, time.Now(), err)
			return out, md, err
		}), middleware.Before)
}

func (m *iamMeter) record(kind, account string, start, end time.Time, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls[kind]++
	m.time[kind] += end.Sub(start)
	if err != nil {
		m.errs++
	}
	if account == "" {
		return
	}
	if f, ok := m.first[account]; !ok || start.Before(f) {
		m.first[account] = start
	}
	if end.After(m.last[account]) {
		m.last[account] = end
	}
}

// summary is the run's calls and per-account means over n accounts.
func (m *iamMeter) summary(n int) (per iamCost, calls int, getMean time.Duration, errs int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var total time.Duration
	for k, c := range m.calls {
		calls += c
		total += m.time[k]
	}
	var wall time.Duration
	for a, f := range m.first {
		wall += m.last[a].Sub(f)
	}
	if n > 0 {
		per = iamCost{Calls: calls / n, Time: total / time.Duration(n)}
	}
	if len(m.first) > 0 {
		per.Wall = wall / time.Duration(len(m.first))
	}
	if m.calls["Get"] > 0 {
		getMean = m.time["Get"] / time.Duration(m.calls["Get"])
	}
	return per, calls, getMean, m.errs
}

// trustInSystemPool makes the bench root Go's system pool: the production
// wiring's prober verifies against it, as the function's does (the function is
// given SSL_CERT_FILE). Go reads SSL_CERT_FILE once, when the pool is first
// needed; nothing in the bench needed it before (every other TLS client is
// given the root), which it checks. The returned function puts the variable
// back, so processes started later (openssl, curl) see the environment as
// before; the loaded pool stays.
func trustInSystemPool(ca *testidp.CA, certFile string) (restore func(), err error) {
	old, had := os.LookupEnv("SSL_CERT_FILE")
	restore = func() {
		if had {
			os.Setenv("SSL_CERT_FILE", old)
		} else {
			os.Unsetenv("SSL_CERT_FILE")
		}
	}
	if err := os.Setenv("SSL_CERT_FILE", certFile); err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err == nil {
		_, err = ca.Cert.Verify(x509.VerifyOptions{Roots: pool})
	}
	if err != nil {
		restore()
		return nil, fmt.Errorf("organisation load: the bench root is not in Go's system pool (loaded before SSL_CERT_FILE was set?): %w", err)
	}
	return restore, nil
}

// orgWorld is the organisation load: its hosts and Urls, the member accounts.
type orgWorld struct {
	*world
	load  load
	ids   []string
	roles []string
	arns  [][]string // per account, per provider
}

// buildOrgWorld starts the load's identity providers and creates its
// providers in every member account, through credentials assumed with moto's
// STS (the same way the engine reaches the accounts). moto must be empty.
func buildOrgWorld(ctx context.Context, base aws.Config, root *testidp.CA, l load, rtt time.Duration) (*orgWorld, error) {
	w, err := newWorld(root, load{Accounts: 1, Providers: l.Providers, Hosts: l.Hosts}, rtt)
	if err != nil {
		return nil, err
	}
	ow := &orgWorld{world: w, load: l}
	ow.ids, ow.roles = orgAccounts(l.Accounts)
	stsc := sts.NewFromConfig(base)
	clients := make([]*iam.Client, l.Accounts)
	for i, role := range ow.roles {
		cfg := base.Copy()
		cfg.Credentials = accounts.Credentials(stsc, role, "")
		clients[i] = iam.NewFromConfig(cfg)
	}
	cctx, cancel := context.WithTimeout(ctx, orgCreateLimit)
	defer cancel()
	ow.arns, err = createProviders(cctx, clients, w.providers, orgCreateParallel)
	if err == nil {
		err = ow.checkARNs()
	}
	if err != nil {
		w.Close()
		if ctx.Err() == nil && cctx.Err() != nil {
			err = fmt.Errorf("creating %d providers took over %s: %w", l.Accounts*l.Providers, orgCreateLimit, err)
		}
		return nil, err
	}
	return ow, nil
}

// checkARNs makes sure every provider landed in its own account.
func (ow *orgWorld) checkARNs() error {
	for i, arns := range ow.arns {
		for _, arn := range arns {
			if got := accounts.AccountOf(arn); got != ow.ids[i] {
				return fmt.Errorf("provider %s created through %s landed in account %q", arn, ow.roles[i], got)
			}
		}
	}
	return nil
}

// lone times each call kind one at a time in the first member account.
func (ow *orgWorld) lone(ctx context.Context, base aws.Config) (loneLatency, error) {
	stsc := sts.NewFromConfig(base)
	cfg := base.Copy()
	cfg.Credentials = accounts.Credentials(stsc, ow.roles[0], "")
	client := iam.NewFromConfig(cfg)
	var l loneLatency
	sample := func(dst *time.Duration, call func() error) error {
		ds := make([]time.Duration, 0, loneSamples)
		for range loneSamples {
			start := time.Now()
			if err := call(); err != nil {
				return err
			}
			ds = append(ds, time.Since(start))
		}
		*dst = slices.Min(ds)
		return nil
	}
	err := errors.Join(
		sample(&l.AssumeRole, func() error {
			_, err := stsc.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(ow.roles[0]), RoleSessionName: aws.String(accounts.SessionName)})
			return err
		}),
		sample(&l.List, func() error {
			_, err := client.ListOpenIDConnectProviders(ctx, &iam.ListOpenIDConnectProvidersInput{})
			return err
		}),
		sample(&l.Get, func() error {
			_, err := client.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(ow.arns[0][0])})
			return err
		}),
	)
	if err != nil {
		return l, fmt.Errorf("lone IAM calls: %w", err)
	}
	return l, nil
}

// checkOrgReport compares an organisation report with the seed: one section
// per account without error, every provider of every account checked once,
// each result as its Url was seeded. It returns the first difference, "" when none.
func (ow *orgWorld) checkOrgReport(rep *drift.Report) string {
	want := ow.load.Accounts * ow.load.Providers
	if rep.Checked != want {
		return fmt.Sprintf("checked %d of %d providers", rep.Checked, want)
	}
	if len(rep.Accounts) != len(ow.ids) {
		return fmt.Sprintf("%d account sections, want %d", len(rep.Accounts), len(ow.ids))
	}
	for _, a := range rep.Accounts {
		if a.Error != "" || a.Checked != ow.load.Providers || !slices.Contains(ow.ids, a.AccountID) {
			return fmt.Sprintf("account %s: checked %d, error %q", a.AccountID, a.Checked, firstLine(a.Error))
		}
	}
	seen := map[string]bool{}
	for _, res := range rep.Results {
		if accounts.AccountOf(res.ProviderARN) != res.AccountID || seen[res.ProviderARN] {
			return fmt.Sprintf("%s: in account %q, or twice", res.ProviderARN, res.AccountID)
		}
		seen[res.ProviderARN] = true
	}
	return ow.checkResults(rep.Results)
}

// run checks every account once through the production wiring at setting s.
func (ow *orgWorld) run(ctx context.Context, m *testpeer.Moto, meter *iamMeter, s orgSetting, handshakes int, lone loneLatency) (orgResult, error) {
	base := m.Config()
	cfg := config.Default()
	cfg.Mode = config.ModeReport
	cfg.Concurrency = s.Conc
	cfg.AccountConcurrency = s.AccountConc
	cfg.AccountRoleARNs = ow.roles
	cfg.ProbeHandshakes = handshakes
	cfg.ProbeTimeout = probeTimeout
	awsCfg := base.Copy()
	awsCfg.APIOptions = append(slices.Clone(awsCfg.APIOptions), meter.apiOption)
	engine := app.NewEngineFromAWS(ctx, awsCfg, cfg, nil)

	l := ow.load
	sh := shape{Providers: l.Accounts * l.Providers, URLs: l.Providers, Hosts: l.Hosts, Handshakes: handshakes, Concurrency: s.AccountConc * s.Conc}
	r := orgResult{Load: l.Name(), Accounts: l.Accounts, Setting: s, Shape: sh, NetRTT: limitRTT(sh), WantHS: sh.URLs + sh.Hosts*sh.Handshakes,
		Lone: lone, IAMLimit: orgIAMLimit(l.Accounts, l.Providers, s, lone)}

	rctx, cancel := context.WithTimeout(ctx, engineRunLimit)
	defer cancel()
	meter.reset()
	before := ow.Handshakes()
	motoCPU, motoErr := m.CPUTime()
	cpu := cpuTime()
	start := time.Now()
	rep, err := engine.Run(rctx, drift.Request{})
	r.Took = time.Since(start)
	r.CPU = cpuTime() - cpu
	r.MotoCPU = -1
	if after, err := m.CPUTime(); err == nil && motoErr == nil {
		r.MotoCPU = after - motoCPU
	}
	if ctx.Err() != nil {
		return r, ctx.Err()
	}
	r.Handshakes = ow.Handshakes() - before
	var errs int
	r.PerAcct, r.Calls, r.GetMean, errs = meter.summary(l.Accounts)
	if err != nil {
		r.Problem = "run error: " + firstLine(err.Error())
	}
	if rep != nil {
		r.Counts = rep.Counts
		if p := ow.checkOrgReport(rep); p != "" && r.Problem == "" {
			r.Problem = p
		}
	}
	if errs > 0 && r.Problem == "" {
		r.Problem = fmt.Sprintf("%d IAM/STS calls failed after retries", errs)
	}
	return r, nil
}

// benchOrg builds the organisation load, times lone IAM calls, and measures
// the engine at each setting after one untimed warm-up run.
func benchOrg(ctx context.Context, logf func(string, ...any), c *cleanups, res *results, m *testpeer.Moto, ca *testidp.CA, certFile string) error {
	o := res.opts
	l := o.org
	restore, err := trustInSystemPool(ca, certFile)
	if err != nil {
		return err
	}
	defer restore()
	logf("load %s: starting %d identity providers behind %s forwarders, creating %d IAM providers in %d accounts (%d at a time, through assumed roles)",
		l.Name(), l.Hosts, o.rtt, l.Accounts*l.Providers, l.Accounts, orgCreateParallel)
	if err := m.Reset(ctx); err != nil {
		return err
	}
	base := m.Config()
	start := time.Now()
	ow, err := buildOrgWorld(ctx, base, ca, l, o.rtt)
	if err != nil {
		return err
	}
	c.add(ow.Close)
	defer ow.Close()
	res.orgCreate = time.Since(start)
	logf("load %s: created in %.1fs; timing lone IAM calls", l.Name(), res.orgCreate.Seconds())
	lone, err := ow.lone(ctx, base)
	if err != nil {
		return err
	}
	meter := newIAMMeter()
	logf("load %s: warm-up run at %s", l.Name(), o.orgSettings[0])
	if _, err := ow.run(ctx, m, meter, o.orgSettings[0], o.handshakes, lone); err != nil {
		return err
	}
	for _, s := range o.orgSettings {
		r, err := ow.run(ctx, m, meter, s, o.handshakes, lone)
		if err != nil {
			return err
		}
		logf("load %s AC/C %s: %.2fs (limit %.2fs)", l.Name(), s, r.Took.Seconds(), r.Limit(o.rtt).Seconds())
		res.orgs = append(res.orgs, r)
	}
	return nil
}
