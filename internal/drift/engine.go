package drift

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/iac"
	"github.com/thumbprint-drift/thumbprint-drift/internal/oidcprovider"
	"github.com/thumbprint-drift/thumbprint-drift/internal/thumbprint"
)

// Providers is the IAM side the engine uses (an *oidcprovider.Store).
type Providers interface {
	List(ctx context.Context) ([]string, error)
	Get(ctx context.Context, arn string) (oidcprovider.Provider, error)
	// UpdateIfUnchanged writes list when the stored list is still expected
	// (the compare-and-swap every writer uses).
	UpdateIfUnchanged(ctx context.Context, arn string, expected, list []string) (oidcprovider.Provider, error)
}

var _ Providers = (*oidcprovider.Store)(nil)

// Memory is what the state remembers of providers for their decisions (an
// *alert.Lifecycle over the state table): Recall reads the providers' items
// in batches; a provider without one is absent from the map.
type Memory interface {
	Recall(ctx context.Context, providerARNs []string, now time.Time) (map[string]Recall, error)
}

// Recall is a provider's memory: when its thumbprints were last seen live,
// its last writer other than the function, the list the function last
// applied, and whether a list the function applied was ever set back.
type Recall struct {
	Seen       LastSeen
	Writer     *iac.Writer
	Wrote      []string
	WroteAt    time.Time
	RevertedAt time.Time
}

// ProbeFunc computes the live thumbprints of a provider Url.
type ProbeFunc func(ctx context.Context, providerURL string) (*thumbprint.Result, error)

// ProbeRuns is Options.NewProbe for p: a thumbprint.Run per engine run,
// closed when the run is over.
func ProbeRuns(p *thumbprint.Prober) func() (ProbeFunc, func()) {
	return func() (ProbeFunc, func()) {
		r := p.NewRun()
		return r.Probe, r.Close
	}
}

// Options configure an Engine.
type Options struct {
	Providers Providers
	// NewProbe returns the probe for one run (hosts are probed once per
	// run) and done, which the run calls once its last probe has returned:
	// it closes the connections the probe keeps for reuse, so that none
	// outlives an invocation.
	NewProbe func() (probe ProbeFunc, done func())
	// Memory tells, for a provider that drifted, its last writer and the
	// list the function last applied (ownership by code, reverts), and for
	// a merge that cuts the list when each stored entry was last seen live;
	// nil: stateless (ownership from tags and the run's CloudTrail event
	// only; the cut keeps stored entries in their order).
	Memory Memory
	// Mode is the default mode.
	Mode config.Mode
	// Concurrency is how many IAM calls are made at once (CONCURRENCY);
	// providers wait for their probes without holding one.
	Concurrency int
	// Logger receives one line per provider decision; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Accounts lists the accounts of a run (organisation mode); nil means the
	// single account of Providers.
	Accounts func(ctx context.Context) ([]Account, error)
	// AccountConcurrency is how many accounts are checked at once.
	AccountConcurrency int
	// ExpiryWarning is the expiring horizon (EXPIRY_WARNING): an in-sync
	// provider whose thumbprint AWS enforces is expiring when a certificate
	// whose thumbprint is live (the last of a served chain) expires within
	// it. 0 turns the warning off.
	ExpiryWarning time.Duration
	// OwnAccount returns the account id of Providers (STS
	// GetCallerIdentity) without organisation mode. It is asked only when a
	// provider cannot be read (AccessDenied or NoSuchEntity): a provider of
	// another account is then skipped with the reason, never a probe
	// failure. nil: such a provider is judged by the error alone.
	OwnAccount func(ctx context.Context) (string, error)
}

// Account is one AWS account a run checks.
type Account struct {
	// ID is the 12-digit account id.
	ID string
	// RoleARN is the role assumed to reach it; empty for the caller's own credentials.
	RoleARN string
	// Open returns the account's providers, assuming the role first; an error
	// makes the account account-failed.
	Open func(ctx context.Context) (Providers, error)
	// Skip, when not empty, says why the account is listed but not checked
	// (the management account seen from a delegated administrator): Open is
	// never called, and the account is one skipped result with this reason.
	Skip string
}

// Engine runs drift checks.
type Engine struct {
	opts Options

	ownMu sync.Mutex
	own   string // OwnAccount's answer, once it gave one
}

// New returns an Engine. Zero options take config defaults.
func New(opts Options) *Engine {
	def := config.Default()
	if opts.Mode == "" {
		opts.Mode = def.Mode
	}
	if opts.Concurrency < 1 {
		opts.Concurrency = def.Concurrency
	}
	if opts.AccountConcurrency < 1 {
		opts.AccountConcurrency = def.AccountConcurrency
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Engine{opts: opts}
}

// Request narrows a run.
type Request struct {
	// Mode overrides the default mode for this run; tags can then only make a
	// provider more careful. Empty: the default mode.
	Mode config.Mode
	// Providers limits the run to these ARNs; empty: every provider.
	Providers []string
	// Writer is who wrote the provider a CloudTrail event names (Providers'
	// one entry), when the call makes them its last writer; nil otherwise.
	Writer *iac.Writer
}

// Errors Run returns (wrapped) after every provider was processed.
var (
	// ErrUpdateFailed: a result is update-failed.
	ErrUpdateFailed = errors.New("thumbprint update failed")
	// ErrAccountFailed: an account's role could not be assumed or its providers listed.
	ErrAccountFailed = errors.New("account failed")
	// ErrListFailed: the run could not list what to check (the providers of
	// the single account, or the accounts of organisation mode); the report
	// then holds no provider results.
	ErrListFailed = errors.New("listing failed")
)

// DeadlineReserve is the time kept back from the context's deadline so the
// caller can still notify (internal/alert) and return the report: a quarter
// of what is left, from 1.5s to 15s.
func DeadlineReserve(remaining time.Duration) time.Duration {
	return min(max(remaining/4, 1500*time.Millisecond), 15*time.Second)
}

// Run checks the providers, writes where the mode and safety allow, and
// returns the report; alerting is the caller's (internal/alert's pipeline
// takes the report). The error is non-nil when listing failed or any result
// is update-failed or account-failed, always after every provider was
// processed; the report is complete even then.
func (e *Engine) Run(ctx context.Context, req Request) (*Report, error) {
	r := e.newRun(ctx, req)
	defer r.cancel()
	defer r.probeDone()
	if e.opts.Accounts == nil {
		results, err := r.account(e.opts.Providers, req.Providers)
		if err != nil {
			e.opts.Logger.ErrorContext(ctx, "listing providers failed", "error", err.Error())
			return newReport(r.mode, nil, nil), fmt.Errorf("%w: %w", ErrListFailed, err)
		}
		return r.finish(results, nil)
	}
	return r.accounts()
}

// run is one invocation's state.
type run struct {
	e          *Engine
	ctx, work  context.Context
	cancel     context.CancelFunc
	req        Request
	mode       config.Mode
	explicit   bool
	checkedAt  time.Time
	probe      ProbeFunc
	probeDone  func()
	listErrors []error

	mu sync.Mutex
	// reached are the accounts opened and listed (organisation mode; "" for
	// the organisation's own listing), whose account-failed is resolved.
	reached []string
}

func (e *Engine) newRun(ctx context.Context, req Request) *run {
	r := &run{e: e, ctx: ctx, work: ctx, cancel: func() {}, req: req, mode: e.opts.Mode, checkedAt: e.opts.Now().UTC()}
	if req.Mode != "" {
		r.mode, r.explicit = req.Mode, true
	}
	if dl, ok := ctx.Deadline(); ok {
		r.work, r.cancel = context.WithDeadline(ctx, dl.Add(-DeadlineReserve(time.Until(dl))))
	}
	// One probe run for the whole invocation: each host is probed once,
	// however many providers or accounts use it.
	r.probe, r.probeDone = e.opts.NewProbe()
	return r
}

// account checks one account's providers: the requested ARNs, or every
// provider the account lists.
func (r *run) account(providers Providers, requested []string) ([]Result, error) {
	arns := dedupe(requested)
	if len(arns) == 0 {
		var err error
		if arns, err = providers.List(r.work); err != nil {
			return nil, err
		}
	}
	// A provider's probe starts once it has been read: its tags may say
	// ignore, and an ignored provider's host is never contacted unless
	// another provider needs it. The IAM reads go on while probes are in
	// flight (maxInFlight providers at once, CONCURRENCY IAM calls), and
	// WorkOrder reads one provider of every host before a second of any.
	providers = limitIAM(providers, r.e.opts.Concurrency)
	mem := &accountMemory{memory: r.e.opts.Memory, arns: arns, now: r.e.opts.Now}
	results := make([]Result, len(arns))
	var g errgroup.Group
	g.SetLimit(maxInFlight)
	for _, i := range WorkOrder(arns) {
		g.Go(func() error {
			if r.work.Err() != nil {
				results[i] = notReached(arns[i], r.mode)
				return nil
			}
			results[i] = r.e.check(r.ctx, r.work, providers, r.probe, arns[i], r.mode, r.explicit, r.writerOf(arns[i]), mem.recall)
			return nil
		})
	}
	_ = g.Wait() // every check returns nil: its failures are results
	return results, nil
}

// accountMemory reads what the state remembers of an account's providers
// once, in batches, the first time a provider needs it (a drift, a merge
// that cuts the list): a run without drift reads nothing more than the
// lifecycle does, and one with drift reads every provider's item in
// BatchGetItem calls of 100, not one call per drifting provider.
type accountMemory struct {
	memory Memory
	arns   []string
	now    func() time.Time
	once   sync.Once
	items  map[string]Recall
	err    error
}

// recall returns what the state remembers of arn; nil without state.
func (m *accountMemory) recall(ctx context.Context, arn string) (*Recall, error) {
	if m.memory == nil {
		return nil, nil
	}
	m.once.Do(func() { m.items, m.err = m.memory.Recall(ctx, m.arns, m.now()) })
	if m.err != nil {
		return &Recall{}, m.err
	}
	rec := m.items[arn]
	return &rec, nil
}

// writerOf is the request's CloudTrail writer when it names arn.
func (r *run) writerOf(arn string) *iac.Writer {
	if len(r.req.Providers) == 1 && r.req.Providers[0] == arn {
		return r.req.Writer
	}
	return nil
}

// WorkOrder is the order in which a run hands providers to its workers: the
// indexes of arns round robin over their hosts (the host of the Url in each
// ARN), hosts in order of first appearance, each host's providers in their
// order. Providers of one host share one probe; taken one after another they
// would hold every worker waiting on that probe while other hosts' probes
// could run.
func WorkOrder(arns []string) []int {
	var hosts []string
	groups := map[string][]int{}
	for i, arn := range arns {
		a, _ := oidcprovider.ParseARN(arn)
		host := a.Host()
		if _, ok := groups[host]; !ok {
			hosts = append(hosts, host)
		}
		groups[host] = append(groups[host], i)
	}
	order := make([]int, 0, len(arns))
	for round := 0; len(order) < len(arns); round++ {
		for _, h := range hosts {
			if round < len(groups[h]) {
				order = append(order, groups[h][round])
			}
		}
	}
	return order
}

// finish grades the results, logs each decision and builds the report.
func (r *run) finish(results []Result, summaries []AccountSummary) (*Report, error) {
	errs := r.listErrors
	for i := range results {
		res := &results[i]
		grade(res)
		if res.Host == "" {
			res.Host = issuerHost(res)
		}
		normalise(res)
		switch res.Outcome {
		case UpdateFailed:
			errs = append(errs, fmt.Errorf("%w: %s: %s", ErrUpdateFailed, res.ProviderARN, res.Detail))
		case AccountFailed:
			if len(r.listErrors) == 0 {
				errs = append(errs, fmt.Errorf("%w: %s: %s", ErrAccountFailed, res.AccountID, res.Detail))
			}
		}
	}
	for _, res := range results {
		r.e.log(r.ctx, res)
	}
	rep := newReport(r.mode, results, summaries)
	if summaries != nil {
		r.mu.Lock()
		rep.Reached = append([]string{}, r.reached...)
		r.mu.Unlock()
	}
	return rep, errors.Join(errs...)
}

func (e *Engine) log(ctx context.Context, r Result) {
	level := slog.LevelInfo
	switch r.Severity {
	case SeverityWarning:
		level = slog.LevelWarn
	case SeverityCritical:
		level = slog.LevelError
	}
	if level == slog.LevelInfo && r.tagWarning {
		level = slog.LevelWarn
	}
	msg := "provider checked"
	switch {
	case r.Outcome == AccountFailed:
		msg = "account failed"
	case r.Outcome == Skipped && r.ProviderARN == "":
		msg = "account skipped"
	}
	e.opts.Logger.LogAttrs(ctx, level, msg,
		slog.String("account_id", r.Account()),
		slog.String("provider_arn", r.ProviderARN),
		slog.String("url", r.URL),
		slog.String("mode", string(r.Mode)),
		slog.String("outcome", string(r.Outcome)),
		slog.String("severity", string(r.Severity)),
		slog.Any("live_thumbprints", r.LiveThumbprints),
		slog.Any("stored_thumbprints", r.StoredThumbprints),
		slog.Any("new_thumbprints", r.NewThumbprints),
		slog.Bool("publicly_trusted", r.PubliclyTrusted),
		slog.Bool("thumbprint_enforced", r.ThumbprintEnforced),
		slog.Bool("breaks_assume_role", r.BreaksAssumeRole),
		slog.String("detail", r.Detail),
	)
}

func dedupe(arns []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range arns {
		if a = strings.TrimSpace(a); a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

func join(notes []string) string { return strings.Join(notes, "; ") }
