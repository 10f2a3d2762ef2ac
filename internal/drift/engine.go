package drift

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/oidcprovider"
	"github.com/thumbprint-drift/thumbprint-drift/internal/thumbprint"
)

// Providers is the IAM side the engine uses (an *oidcprovider.Store).
type Providers interface {
	List(ctx context.Context) ([]string, error)
	Get(ctx context.Context, arn string) (oidcprovider.Provider, error)
	Update(ctx context.Context, arn string, list []string) error
}

var _ Providers = (*oidcprovider.Store)(nil)

// ProbeFunc computes the live thumbprints of a provider Url.
type ProbeFunc func(ctx context.Context, providerURL string) (*thumbprint.Result, error)

// Options configure an Engine.
type Options struct {
	Providers Providers
	// NewProbe returns the probe for one run; hosts are probed once per run.
	NewProbe func() ProbeFunc
	// Publishers deliver the run's messages (SNS, EventBridge, Security
	// Hub); a message is delivered when every publisher accepted it. None:
	// messages are logged only.
	Publishers []Publisher
	// Lifecycle decides which results carry a transition and remembers what
	// was delivered; nil: stateless (every problem new, every update applied).
	Lifecycle Lifecycle
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
// run can still publish its alerts and return its report: a quarter of what
// is left, from 1.5s to 15s.
func DeadlineReserve(remaining time.Duration) time.Duration {
	return min(max(remaining/4, 1500*time.Millisecond), 15*time.Second)
}

// publishConcurrency bounds the messages being published at once; they are
// cheap, so it is not tied to the probe concurrency.
const publishConcurrency = 16

// Run checks the providers, writes where the mode and safety allow, sends the
// alert lifecycle's transitions, and returns the report. The error is non-nil
// when listing failed, an alert could not be delivered, the alert state could
// not be read or written, or any result is update-failed or account-failed,
// always after every provider was processed; the report is complete even
// then. Losing a race for a transition to a concurrent invocation is no error.
func (e *Engine) Run(ctx context.Context, req Request) (*Report, error) {
	r := e.newRun(ctx, req)
	defer r.cancel()
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
	r.probe = e.opts.NewProbe()
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
	results := make([]Result, len(arns))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(maxInFlight, max(len(arns), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if r.work.Err() != nil {
					results[i] = notReached(arns[i], r.mode)
					continue
				}
				results[i] = r.e.check(r.ctx, r.work, providers, r.probe, arns[i], r.mode, r.explicit)
			}
		}()
	}
	for _, i := range WorkOrder(arns) {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return results, nil
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
		_, url, _ := strings.Cut(arn, ":oidc-provider/")
		host, _, _ := strings.Cut(url, "/")
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

// accounts checks every account of the run, AccountConcurrency at once, each
// with its own provider concurrency, all sharing one probe run. Requested
// provider ARNs that no account of the run holds are skipped results saying so.
func (r *run) accounts() (*Report, error) {
	accts, err := r.e.opts.Accounts(r.work)
	if err != nil {
		r.listErrors = append(r.listErrors, fmt.Errorf("%w: %w", ErrListFailed, err))
		return r.finish([]Result{accountFailed(Account{}, r.mode, err.Error())}, []AccountSummary{{Error: err.Error()}})
	}
	r.reach("")
	perAccount := make([][]Result, len(accts))
	sem := make(chan struct{}, r.e.opts.AccountConcurrency)
	var wg sync.WaitGroup
	for i, a := range accts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			perAccount[i] = r.oneAccount(a)
		}()
	}
	wg.Wait()

	var results []Result
	summaries := make([]AccountSummary, len(accts))
	inRun := make(map[string]bool, len(accts))
	for i, a := range accts {
		inRun[a.ID] = true
		s := AccountSummary{AccountID: a.ID, RoleARN: a.RoleARN, Counts: map[Outcome]int{}, Skipped: a.Skip}
		for _, res := range perAccount[i] {
			if res.ProviderARN == "" { // the account's own result: failed or skipped
				if res.Outcome == AccountFailed {
					s.Error = res.Detail
				}
				continue
			}
			s.Checked++
			s.Counts[res.Outcome]++
		}
		summaries[i] = s
		results = append(results, perAccount[i]...)
	}
	for _, arn := range dedupe(r.req.Providers) {
		if acct := accounts.AccountOf(arn); !inRun[acct] {
			results = append(results, notInRun(arn, acct, r.mode))
		}
	}
	return r.finish(results, summaries)
}

// notInRun is the result of a requested provider ARN that no account of the
// run holds: it is reported, never silently dropped.
func notInRun(arn, acct string, mode config.Mode) Result {
	detail := fmt.Sprintf("account %s is not in this run (not an active account of the organisation, or not among the listed role ARNs); nothing checked", acct)
	if acct == "" {
		detail = "not an IAM OIDC provider ARN: no account of this run holds it; nothing checked"
	}
	return Result{AccountID: acct, ProviderARN: arn, Outcome: Skipped, Mode: mode, Detail: detail}
}

// oneAccount opens an account (assuming its role) and checks it; an account
// that cannot be opened or listed is one account-failed result. A skipped
// account is never opened: it is one skipped result with its reason, or, when
// the request names providers in it, one skipped result per provider.
func (r *run) oneAccount(a Account) []Result {
	var requested []string
	if len(r.req.Providers) > 0 {
		for _, arn := range dedupe(r.req.Providers) {
			if accounts.AccountOf(arn) == a.ID {
				requested = append(requested, arn)
			}
		}
		if len(requested) == 0 {
			return nil // the request names nothing in this account
		}
	}
	if a.Skip != "" {
		if len(requested) == 0 {
			return []Result{{AccountID: a.ID, Outcome: Skipped, Mode: r.mode, Detail: a.Skip}}
		}
		out := make([]Result, 0, len(requested))
		for _, arn := range requested {
			out = append(out, Result{AccountID: a.ID, ProviderARN: arn, Outcome: Skipped, Mode: r.mode,
				Detail: fmt.Sprintf("account %s is not in this run: %s; nothing checked", a.ID, a.Skip)})
		}
		return out
	}
	if r.work.Err() != nil {
		return []Result{accountFailed(a, r.mode, "deadline: account not reached before the run's deadline; nothing written")}
	}
	providers, err := a.Open(r.work)
	if err != nil {
		return []Result{accountFailed(a, r.mode, deadlineDetail(r.work, err.Error()))}
	}
	results, err := r.account(providers, requested)
	if err != nil {
		return []Result{accountFailed(a, r.mode, deadlineDetail(r.work, err.Error()))}
	}
	for i := range results {
		results[i].AccountID = a.ID
	}
	r.reach(a.ID)
	return results
}

// reach notes that account id was opened and listed.
func (r *run) reach(id string) {
	r.mu.Lock()
	r.reached = append(r.reached, id)
	r.mu.Unlock()
}

func accountFailed(a Account, mode config.Mode, detail string) Result {
	return Result{AccountID: a.ID, Outcome: AccountFailed, Mode: mode, Detail: detail}
}

// finish grades the results, sends the lifecycle's transitions, logs each
// decision and builds the report.
func (r *run) finish(results []Result, summaries []AccountSummary) (*Report, error) {
	errs := r.listErrors
	for i := range results {
		res := &results[i]
		if res.Severity == "" {
			res.Severity = severity(res.Outcome, res.BreaksAssumeRole)
		}
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
	sent, alertErrs := r.alert(results)
	errs = append(errs, alertErrs...)
	for _, res := range results {
		r.e.log(r.ctx, res)
	}
	rep := newReport(r.mode, results, summaries)
	rep.TransitionsSent = sent
	return rep, errors.Join(errs...)
}

// check decides one provider. Reading and probing honour work (the run's
// deadline less the reserve); a decided write uses ctx so it is never cut half way.
func (e *Engine) check(ctx, work context.Context, providers Providers, probe ProbeFunc, arn string, runMode config.Mode, explicit bool) Result {
	r := Result{ProviderARN: arn, Mode: runMode, Host: alertHost(urlOfARN(arn))}
	p, err := providers.Get(work, arn)
	if err != nil {
		if errors.Is(err, errNoIAMSlot) {
			return notReached(arn, runMode)
		}
		if detail, ok := e.outsideRun(work, arn, err); ok {
			r.Outcome, r.Detail = Skipped, detail
			return r
		}
		if errors.Is(err, oidcprovider.ErrNotFound) {
			r.Outcome, r.Detail = Skipped, "provider not found (deleted since it was listed, or not in this account)"
			return r
		}
		r.Outcome, r.Detail = ProbeFailed, deadlineDetail(work, err.Error())
		return r
	}
	r.URL, r.StoredThumbprints = p.URL, p.Thumbprints
	r.Host = alertHost(p.URL)
	pol := ParsePolicy(p.Tags)
	r.tagWarning = len(pol.Warnings) > 0
	notes := append([]string(nil), pol.Warnings...)
	if pol.Ignore {
		r.Outcome = Skipped
		r.Detail = join(append(notes, fmt.Sprintf("tagged %s=ignore", TagMode)))
		return r
	}
	r.Mode = EffectiveMode(runMode, explicit, pol.Mode)

	// The probe bounds each of its connections (PROBE_TIMEOUT) from the
	// moment it is its turn; the run's deadline bounds the wait.
	res, err := probe(work, p.URL)
	if err != nil {
		r.Outcome = ProbeFailed
		r.Detail = join(append(notes, deadlineDetail(work, err.Error())))
		// The probe could not retrieve the certificate; AWS then checks the
		// thumbprint (if it cannot retrieve it either), so assume it does.
		r.ThumbprintEnforced = true
		if pe, ok := errors.AsType[*thumbprint.Error](err); ok && pe.JWKSHost != "" {
			r.Host = alertHost(pe.JWKSHost)
		}
		return r
	}
	r.LiveThumbprints = res.Thumbprints
	r.PubliclyTrusted = res.PubliclyTrusted
	r.ThumbprintEnforced = res.ThumbprintEnforced
	if len(res.Hosts) > 0 {
		r.Host = alertHost(res.Hosts[0].Host) // the jwks_uri host
	}

	// When the merge cuts the list, the entries kept depend on when each was
	// last seen live: read that from the alert state, once.
	var seen LastSeen
	seenRead := false
	seenFor := func(stored []string) LastSeen {
		if seenRead || e.opts.Lifecycle == nil || !Cuts(res.Thumbprints, stored) {
			return seen
		}
		seenRead = true
		var err error
		if seen, err = e.opts.Lifecycle.LastSeen(work, arn, e.opts.Now()); err != nil {
			notes = append(notes, fmt.Sprintf("when stored entries were last seen live is unknown (%v): the cut keeps them in stored order", err))
		}
		return seen
	}
	d := Decide(res.Thumbprints, p.Thumbprints, seenFor(p.Thumbprints), res.PubliclyTrusted, r.Mode, pol.AllowUnverified)
	if len(d.Dropped) > 0 {
		notes = append(notes, fmt.Sprintf("malformed stored entries left out of the new list: %q", d.Dropped))
	}
	for range 3 {
		r.Outcome, r.NewThumbprints = d.Outcome, d.NewList
		r.BreaksAssumeRole = d.Outcome == Drift && res.ThumbprintEnforced
		if !d.Apply {
			if d.Outcome == InSync && res.ThumbprintEnforced && e.opts.ExpiryWarning > 0 {
				if detail, ok := ExpiringSoon(res, e.opts.Now(), e.opts.ExpiryWarning); ok {
					r.Outcome = Expiring
					notes = append(notes, detail)
				}
			}
			if d.Reason != "" {
				notes = append(notes, d.Reason)
			}
			r.Detail = join(notes)
			return r
		}
		// Read again just before writing: never overwrite someone else's change.
		cur, err := providers.Get(ctx, arn)
		if errors.Is(err, oidcprovider.ErrNotFound) {
			r.Outcome, r.BreaksAssumeRole = Skipped, false
			r.Detail = join(append(notes, "provider deleted before the write; nothing written"))
			return r
		}
		if err != nil {
			r.Outcome = UpdateFailed
			r.Detail = join(append(notes, fmt.Sprintf("re-read before write: %v; nothing written", err)))
			return r
		}
		if !oidcprovider.SameList(cur.Thumbprints, r.StoredThumbprints) {
			notes = append(notes, fmt.Sprintf("stored list changed from %q to %q since the decision; decided again", r.StoredThumbprints, cur.Thumbprints))
			r.StoredThumbprints = cur.Thumbprints
			d = Decide(res.Thumbprints, cur.Thumbprints, seenFor(cur.Thumbprints), res.PubliclyTrusted, r.Mode, pol.AllowUnverified)
			continue
		}
		if err := providers.Update(ctx, arn, d.NewList); err != nil {
			r.Outcome = UpdateFailed
			r.Detail = join(append(notes, err.Error()))
			return r
		}
		r.Outcome, r.BreaksAssumeRole = Updated, false
		r.Detail = join(append(notes, "thumbprint list replaced"))
		return r
	}
	r.Outcome = Drift
	r.Detail = join(append(notes, "stored list kept changing under concurrent writers; nothing written"))
	return r
}

// outsideRun tells whether a provider IAM would not let the run read
// (AccessDenied, or NoSuchEntity as IAM may answer for another account's ARN)
// is outside the run: without organisation mode, a provider of another
// account than the run's own. The detail says so and names IAM's answer.
func (e *Engine) outsideRun(ctx context.Context, arn string, getErr error) (string, bool) {
	if e.opts.Accounts != nil || e.opts.OwnAccount == nil ||
		!errors.Is(getErr, oidcprovider.ErrAccessDenied) && !errors.Is(getErr, oidcprovider.ErrNotFound) {
		return "", false
	}
	own, err := e.ownAccount(ctx)
	if err != nil {
		return "", false
	}
	acct := accounts.AccountOf(arn)
	if acct == own {
		return "", false
	}
	answer := "NoSuchEntity"
	if errors.Is(getErr, oidcprovider.ErrAccessDenied) {
		answer = "AccessDenied"
	}
	return fmt.Sprintf("account %s is not in this run (it checks account %s only; IAM answered %s); nothing checked", acct, own, answer), true
}

// ownAccount is OwnAccount's answer, asked once per Engine while it fails.
func (e *Engine) ownAccount(ctx context.Context) (string, error) {
	e.ownMu.Lock()
	defer e.ownMu.Unlock()
	if e.own != "" {
		return e.own, nil
	}
	own, err := e.opts.OwnAccount(ctx)
	if err != nil {
		return "", fmt.Errorf("own account: %w", err)
	}
	e.own = own
	return own, nil
}

func notReached(arn string, mode config.Mode) Result {
	return Result{ProviderARN: arn, Mode: mode, Outcome: ProbeFailed, Detail: "deadline: not reached before the run's deadline; nothing written"}
}

// deadlineDetail marks detail as caused by the run's deadline when work's
// deadline has passed (a connection's deadline can fire a moment before the
// context reports it).
func deadlineDetail(work context.Context, detail string) string {
	dl, ok := work.Deadline()
	if work.Err() != nil || ok && !time.Now().Before(dl) {
		return "deadline: " + detail
	}
	return detail
}

// issuerHost is the grouping host of a result the check set none for (it
// failed before reading the provider): the issuer host of the Url in its ARN.
func issuerHost(r *Result) string {
	url := r.URL
	if url == "" {
		_, url, _ = strings.Cut(r.ProviderARN, ":oidc-provider/")
	}
	return alertHost(url)
}

// normalise gives every list a non-nil value so the JSON shows [] not null.
func normalise(r *Result) {
	for _, l := range []*[]string{&r.LiveThumbprints, &r.StoredThumbprints, &r.NewThumbprints} {
		if *l == nil {
			*l = []string{}
		}
	}
}

// alert is the lifecycle's pipeline, as Alertmanager's notify stages: the
// lifecycle decides each result's transition against the state table and
// claims it (dedup), the results with a transition are grouped into
// messages, each message goes to every publisher, and only a message every
// publisher accepted is recorded; the claims of the others are released so
// that a retry sends them. It returns the transitions sent, by transition.
// Report mode, and results a tag puts in report mode, neither alert nor
// touch the state.
func (r *run) alert(results []Result) (map[Transition]int, []error) {
	if r.mode == config.ModeReport {
		return nil, nil
	}
	var idx []int
	for i, res := range results {
		if res.Mode != config.ModeReport && res.Outcome != Skipped {
			idx = append(idx, i)
		}
	}
	obs := make([]Result, 0, len(idx))
	for _, i := range idx {
		obs = append(obs, results[i])
	}
	var lc Lifecycle = stateless{}
	if r.e.opts.Lifecycle != nil {
		lc = r.e.opts.Lifecycle
		obs = append(obs, r.recoveredAccounts(results)...)
	}
	if len(obs) == 0 {
		return nil, nil
	}
	var (
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	hold := ClaimHold(r.ctx)
	pending, err := lc.Begin(r.ctx, obs, r.e.opts.Now().UTC(), hold)
	if err != nil {
		r.e.opts.Logger.ErrorContext(r.ctx, "alert state failed: the results concerned send nothing this run", "error", err.Error())
		fail(fmt.Errorf("%w: %w", ErrState, err))
	}
	if pending == nil {
		pending = nothingPending{}
	}

	msgs := GroupMessages(obs, r.mode, r.checkedAt)
	// Publishing stops before the claims lapse, so that no other invocation
	// can claim and send a transition this one is still sending.
	pctx, cancel := context.WithTimeout(r.ctx, hold*9/10)
	defer cancel()
	delivered := make([]bool, len(msgs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, publishConcurrency)
	for i := range msgs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			m := msgs[i]
			if err := r.publish(pctx, m); err != nil {
				r.e.opts.Logger.ErrorContext(r.ctx, "alert not delivered: its transitions are not recorded, a retry sends them", messageAttrs(m, slog.String("error", err.Error()))...)
				fail(fmt.Errorf("%w: %s %s %s for %s: %w", ErrNotDelivered, m.Transition, m.Outcome, m.Host, keysOf(m.Results), err))
				if err := pending.Undelivered(r.ctx, m.Results); err != nil {
					fail(fmt.Errorf("%w: %w", ErrState, err))
				}
				return
			}
			delivered[i] = true
			if err := pending.Delivered(r.ctx, m.Results); err != nil {
				r.e.opts.Logger.ErrorContext(r.ctx, "alert delivered but not recorded: the next run may send it again", messageAttrs(m, slog.String("error", err.Error()))...)
				fail(fmt.Errorf("%w: %w", ErrState, err))
			}
		}()
	}
	wg.Wait()
	if err := pending.Close(r.ctx); err != nil {
		fail(fmt.Errorf("%w: %w", ErrState, err))
	}

	// A result's transition is what was sent: none when its message failed.
	sent := map[Transition]int{}
	unsent := map[string]bool{}
	for i, m := range msgs {
		for _, res := range m.Results {
			if delivered[i] {
				sent[m.Transition]++
			} else {
				unsent[res.Key()] = true
			}
		}
	}
	for j, i := range idx {
		t := obs[j].Transition
		if unsent[obs[j].Key()] {
			t = TransitionNone
		}
		results[i].Transition, results[i].FirstSeen = t, obs[j].FirstSeen
	}
	return sent, errs
}

// recoveredAccounts are in-sync observations of the accounts this run
// reached, so that the lifecycle resolves an account-failed it alerted.
func (r *run) recoveredAccounts(results []Result) []Result {
	failed := map[string]bool{}
	for _, res := range results {
		if res.Outcome == AccountFailed {
			failed[res.AccountID] = true
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Result
	for _, id := range r.reached {
		if failed[id] {
			continue
		}
		detail := "the organisation's accounts are listed again"
		if id != "" {
			detail = fmt.Sprintf("account %s: its role is assumed and its providers are listed again", id)
		}
		out = append(out, Result{AccountID: id, Outcome: InSync, Severity: SeverityNone, Mode: r.mode, Detail: detail,
			LiveThumbprints: []string{}, StoredThumbprints: []string{}, NewThumbprints: []string{}})
	}
	return out
}

// publish delivers m to every publisher; m is delivered when all accepted it.
func (r *run) publish(ctx context.Context, m Message) error {
	if len(r.e.opts.Publishers) == 0 {
		r.e.opts.Logger.WarnContext(ctx, "alert not published: no SNS topic or other publisher configured", messageAttrs(m)...)
		return nil
	}
	var errs []error
	for _, p := range r.e.opts.Publishers {
		if err := p.Publish(ctx, m); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r.e.opts.Logger.InfoContext(ctx, "alert sent", messageAttrs(m)...)
	return nil
}

// keysOf names the results of a message for an error: the first three
// keys, and how many more.
func keysOf(results []Result) string {
	var keys []string
	for i, res := range results {
		if i == 3 {
			keys = append(keys, fmt.Sprintf("and %d more", len(results)-3))
			break
		}
		keys = append(keys, res.Key())
	}
	return strings.Join(keys, ", ")
}

func messageAttrs(m Message, extra ...any) []any {
	arns := make([]string, 0, len(m.Results))
	for _, res := range m.Results {
		arns = append(arns, res.Key())
	}
	return append([]any{
		slog.String("transition", string(m.Transition)),
		slog.String("outcome", string(m.Outcome)),
		slog.String("severity", string(m.Severity)),
		slog.String("host", m.Host),
		slog.Int("count", len(m.Results)),
		slog.Any("keys", arns),
	}, extra...)
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
		slog.String("account_id", r.accountID()),
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
		slog.String("transition", string(r.Transition)),
		slog.String("first_seen", r.FirstSeen),
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
