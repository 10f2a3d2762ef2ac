package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/smithy-go"
	"golang.org/x/sync/errgroup"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
)

// Integration delivers messages to one receiver: SNSPublisher,
// EventBridgePublisher, SecurityHub.
type Integration interface {
	// Name identifies the integration in the alert state, which records
	// per integration what it took, and in logs: "sns", "eventbridge",
	// "securityhub".
	Name() string
	// Notify delivers m. An error means m was not delivered to this
	// integration, for every result, unless it is a *Refused, which names
	// the results refused (the others were delivered).
	Notify(ctx context.Context, m Message) error
}

// Refused is the error of an integration that took some results of a
// message and refused others (a failed PutEvents entry, a FailedFindings
// entry): the refused results are not delivered to that integration only.
type Refused struct {
	// Keys are the refused results' keys and why each was refused.
	Keys map[string]Refusal
}

// Refusal is why one result was refused: the service's error code and message.
type Refusal struct {
	Code, Message string
}

func (r *Refused) Error() string {
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range r.Keys {
			if !yield(k) {
				return
			}
		}
	})
	parts := make([]string, 0, min(len(keys), 4))
	for i, k := range keys {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(keys)-3))
			break
		}
		parts = append(parts, k+": "+r.Keys[k].Code+" "+r.Keys[k].Message)
	}
	return fmt.Sprintf("%d refused: %s", len(keys), strings.Join(parts, "; "))
}

// Errors Notify returns (wrapped).
var (
	// ErrNotDelivered: a message was not delivered to an integration; its
	// transitions are recorded for the integrations that took them, so a
	// retried invocation sends them to this one only.
	ErrNotDelivered = errors.New("alert not delivered")
	// ErrState: the alert state could not be read or written.
	ErrState = errors.New("alert state")
)

// ClaimHold is how long a run's claims on its transitions last, from the
// time left before the invocation's deadline: that time, at least 5s and at
// most a minute (a minute without a deadline). Delivery stops before the
// claims lapse; a claim that a crash leaves behind lapses within a minute,
// so Lambda's retry (a minute or more later) or the next run sends the
// transition.
func ClaimHold(ctx context.Context) time.Duration {
	const lo, hi = 5 * time.Second, time.Minute
	dl, ok := ctx.Deadline()
	if !ok {
		return hi
	}
	return min(max(time.Until(dl), lo), hi)
}

// Retry is how an integration's delivery is retried within a run, the same
// for every integration: a throttled call, and results refused with a
// throttling or internal-failure code, are sent again, up to Attempts in all.
type Retry struct {
	Attempts int
	// Backoff is the wait before the attempt-th retry (from 1).
	Backoff func(attempt int) time.Duration
}

// DefaultRetry: 4 attempts, 200ms doubling.
var DefaultRetry = Retry{Attempts: 4, Backoff: func(attempt int) time.Duration { return 200 * time.Millisecond << (attempt - 1) }}

// Options configure a Pipeline.
type Options struct {
	// Lifecycle is the alert state; nil: stateless (every problem new, every
	// update applied, on every run; nothing recorded).
	Lifecycle *Lifecycle
	// Integrations receive the messages; none: messages are logged only.
	Integrations []Integration
	// Retry of each integration's delivery; zero: DefaultRetry.
	Retry Retry
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Pipeline is the notify pipeline, as Alertmanager's notify stages: the
// lifecycle decides each result's transition against the alert state and
// claims it (Claim); the claimed transitions are grouped into messages, each
// message fans out to every integration that has not taken it yet, with
// retries, and each integration's delivery is recorded apart (Notify). Run
// is both, in one invocation.
type Pipeline struct {
	lc           lifecycle
	integrations []Integration
	retry        Retry
	logger       *slog.Logger
	now          func() time.Time
}

// publishConcurrency bounds the deliveries in flight (message and
// integration); they are cheap, so it is not tied to the probe concurrency.
const publishConcurrency = 16

// New returns the pipeline of opts.
func New(opts Options) *Pipeline {
	p := &Pipeline{lc: stateless{}, integrations: opts.Integrations, retry: opts.Retry, logger: opts.Logger, now: opts.Now}
	if opts.Lifecycle != nil {
		p.lc = opts.Lifecycle
	}
	if p.retry.Attempts < 1 {
		p.retry.Attempts = DefaultRetry.Attempts
	}
	if p.retry.Backoff == nil {
		p.retry.Backoff = DefaultRetry.Backoff
	}
	if p.logger == nil {
		p.logger = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p
}

// Run sends the transitions of rep's results: Claim, then Notify. It sets
// each result's Transition (empty when nothing was sent) and FirstSeen, and
// returns the results sent, by transition. Losing a race for a transition
// to a concurrent invocation is no error.
func (p *Pipeline) Run(ctx context.Context, rep *drift.Report) (map[Transition]int, error) {
	claimed, observe, err := p.claim(ctx, rep, ClaimHold(ctx))
	d, nerr := p.Notify(ctx, claimed)
	for i := range rep.Results {
		if d.Unsent[rep.Results[i].Key()] {
			rep.Results[i].Transition = string(TransitionNone)
		}
	}
	return d.Sent, errors.Join(err, nerr, p.observe(ctx, observe))
}

// Claim is the lifecycle stage: it decides the transition of each result
// of rep (and resolves the account-failed of the accounts rep reached)
// against the alert state and claims it, so that no other invocation sends
// it until this claim is recorded, released or lapses. It sets each
// result's Transition and FirstSeen in rep. Report mode, and results a tag
// puts in report mode or skipped, neither alert nor touch the state. It
// also writes the observations that need no delivery.
func (p *Pipeline) Claim(ctx context.Context, rep *drift.Report) ([]Claimed, error) {
	return p.ClaimHeld(ctx, rep, ClaimHold(ctx))
}

// ClaimHeld is Claim with the claims held for hold instead of ClaimHold:
// a sharded run's batches claim, and a later invocation notifies.
func (p *Pipeline) ClaimHeld(ctx context.Context, rep *drift.Report, hold time.Duration) ([]Claimed, error) {
	claimed, observe, err := p.claim(ctx, rep, hold)
	return claimed, errors.Join(err, p.observe(ctx, observe))
}

// observe writes the observations of a claim (observe nil: none).
func (p *Pipeline) observe(ctx context.Context, observe func(context.Context) error) error {
	if observe == nil {
		return nil
	}
	if err := observe(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	return nil
}

// claim is ClaimHeld, its observations left to write.
func (p *Pipeline) claim(ctx context.Context, rep *drift.Report, hold time.Duration) ([]Claimed, func(context.Context) error, error) {
	if rep == nil || rep.Mode == config.ModeReport {
		return nil, nil, nil
	}
	var idx []int
	for i, res := range rep.Results {
		if res.Mode != config.ModeReport && res.Outcome != drift.Skipped {
			idx = append(idx, i)
		}
	}
	obs := make([]drift.Result, 0, len(idx))
	for _, i := range idx {
		obs = append(obs, rep.Results[i])
	}
	if _, ok := p.lc.(*Lifecycle); ok {
		obs = append(obs, recoveredAccounts(rep)...)
	}
	if len(obs) == 0 {
		return nil, nil, nil
	}
	now := p.now().UTC()
	claimed, observe, err := p.lc.claim(ctx, obs, now, hold)
	if err != nil {
		p.logger.ErrorContext(ctx, "alert state failed: the results concerned send nothing this run", "error", err.Error())
		err = fmt.Errorf("%w: %w", ErrState, err)
	}
	transition := make(map[string]Transition, len(claimed))
	for i := range claimed {
		c := &claimed[i]
		c.Host, c.Mode, c.CheckedAt = c.Result.Host, rep.Mode, now
		transition[c.Key()] = c.Transition
	}
	for j, i := range idx {
		rep.Results[i].Transition, rep.Results[i].FirstSeen = string(transition[obs[j].Key()]), obs[j].FirstSeen
	}
	return claimed, observe, err
}

// recoveredAccounts are in-sync observations of the accounts rep reached,
// so that the lifecycle resolves an account-failed it alerted.
func recoveredAccounts(rep *drift.Report) []drift.Result {
	failed := map[string]bool{}
	for _, res := range rep.Results {
		if res.Outcome == drift.AccountFailed {
			failed[res.AccountID] = true
		}
	}
	var out []drift.Result
	for _, id := range rep.Reached {
		if failed[id] {
			continue
		}
		detail := "the organisation's accounts are listed again"
		if id != "" {
			detail = fmt.Sprintf("account %s: its role is assumed and its providers are listed again", id)
		}
		out = append(out, drift.Result{AccountID: id, Outcome: drift.InSync, Severity: drift.SeverityNone, Mode: rep.Mode, Detail: detail,
			LiveThumbprints: []string{}, StoredThumbprints: []string{}, NewThumbprints: []string{}})
	}
	return out
}

// Delivery is what Notify delivered.
type Delivery struct {
	// Sent counts, by transition, the results that an integration took in
	// this call (all of them when no integration is configured: logged).
	Sent map[Transition]int
	// Unsent are the keys of claimed results that no integration took in
	// this call.
	Unsent map[string]bool
}

// Notify is the rest of the pipeline, from claimed transitions (of this
// invocation or of others, read back from JSON): group them into messages,
// fan each message out to every integration that has not taken its
// results, with retries (Retry), and record each result's delivery per
// integration, or release its claim when no integration took it. Delivery
// stops before the claims lapse. The error names each message an
// integration did not take (ErrNotDelivered) and state that could not be
// written (ErrState).
func (p *Pipeline) Notify(ctx context.Context, claimed []Claimed) (Delivery, error) {
	d := Delivery{Sent: map[Transition]int{}, Unsent: map[string]bool{}}
	if len(claimed) == 0 {
		return d, nil
	}
	now := p.now().UTC()
	dctx, cancel := ctx, context.CancelFunc(func() {})
	if until := earliestLapse(claimed); !until.IsZero() {
		// Stop delivering before the claims lapse, so that no other
		// invocation can claim and send what this one is still sending.
		// (Measured on the pipeline's clock, which claimed them.)
		dctx, cancel = context.WithTimeout(ctx, until.Sub(now)*9/10)
	}
	defer cancel()

	took := p.fanOut(dctx, Group(claimed))
	var errs []error
	for _, res := range took.errs {
		errs = append(errs, res)
	}
	errs = append(errs, p.record(ctx, claimed, took.by, now)...)
	for _, c := range claimed {
		if len(took.by[c.Key()]) > 0 || len(p.integrations) == 0 {
			d.Sent[c.Transition]++
		} else {
			d.Unsent[c.Key()] = true
		}
	}
	return d, errors.Join(errs...)
}

// earliestLapse is when the first claim of claimed lapses; zero when none is held.
func earliestLapse(claimed []Claimed) time.Time {
	var t time.Time
	for _, c := range claimed {
		if c.Claim != "" && (t.IsZero() || c.ClaimUntil.Before(t)) {
			t = c.ClaimUntil
		}
	}
	return t
}

// fanned is what the fan-out stage delivered: by result key, the
// integrations that took it in this call, and the errors.
type fanned struct {
	mu   sync.Mutex
	by   map[string][]string
	errs []error
}

// fanOut is the fan-out stage: each message goes to each integration, with
// only the results that integration has not taken (dedup against the
// record), through the retry stage.
func (p *Pipeline) fanOut(ctx context.Context, msgs []Message) *fanned {
	f := &fanned{by: map[string][]string{}}
	if len(p.integrations) == 0 {
		for _, m := range msgs {
			p.logger.WarnContext(ctx, "alert not published: no SNS topic or other integration configured", messageAttrs(m)...)
		}
		return f
	}
	var g errgroup.Group
	g.SetLimit(publishConcurrency)
	for _, m := range msgs {
		for _, integ := range p.integrations {
			name := integ.Name()
			sub := m.only(func(key string) bool { return !m.took(key, name) })
			if sub == nil {
				continue
			}
			g.Go(func() error {
				failed := p.send(ctx, integ, *sub)
				f.mu.Lock()
				defer f.mu.Unlock()
				for _, r := range sub.Results {
					if _, bad := failed[r.Key()]; !bad {
						f.by[r.Key()] = append(f.by[r.Key()], name)
					}
				}
				if len(failed) == 0 {
					p.logger.InfoContext(ctx, "alert sent", messageAttrs(*sub, slog.String("integration", name))...)
					return nil
				}
				keys := make([]string, 0, len(failed))
				var why []error
				for _, r := range sub.Results {
					if err, bad := failed[r.Key()]; bad {
						keys = append(keys, r.Key())
						if !slices.ContainsFunc(why, func(e error) bool { return e.Error() == err.Error() }) {
							why = append(why, err)
						}
					}
				}
				// An account's own message (account-failed) has no host: no empty word.
				what := slices.DeleteFunc([]string{string(sub.Transition), string(sub.Outcome), sub.Host}, func(s string) bool { return s == "" })
				err := fmt.Errorf("%w to %s: %s for %s: %w", ErrNotDelivered, name, strings.Join(what, " "), keysOf(keys), errors.Join(why...))
				p.logger.ErrorContext(ctx, "alert not delivered to "+name+": its transitions are not recorded for it, a retry sends them to it", messageAttrs(*sub, slog.String("integration", name), slog.String("error", err.Error()))...)
				f.errs = append(f.errs, err)
				return nil
			})
		}
	}
	_ = g.Wait()
	return f
}

// send is the retry stage: it delivers m to integ, retrying what throttling
// or an internal failure refused, and returns the results not delivered,
// by key, with why.
func (p *Pipeline) send(ctx context.Context, integ Integration, m Message) map[string]error {
	failed := map[string]error{}
	for attempt := 1; ; attempt++ {
		err := integ.Notify(ctx, m)
		if err == nil {
			return failed
		}
		var again *Message
		if refused, ok := errors.AsType[*Refused](err); ok {
			for key, why := range refused.Keys {
				if !retryableCode(why.Code) || attempt == p.retry.Attempts {
					failed[key] = fmt.Errorf("%s: %s", why.Code, why.Message)
				}
			}
			again = m.only(func(key string) bool { _, r := refused.Keys[key]; _, f := failed[key]; return r && !f })
		} else if retryable(err) && attempt < p.retry.Attempts {
			again = &m
		} else {
			for _, r := range m.Results {
				failed[r.Key()] = err
			}
		}
		if again == nil {
			return failed
		}
		wait := time.NewTimer(p.retry.Backoff(attempt))
		select {
		case <-ctx.Done():
			wait.Stop()
			for _, r := range again.Results {
				failed[r.Key()] = fmt.Errorf("retry cut short: %w", ctx.Err())
			}
			return failed
		case <-wait.C:
		}
		m = *again
	}
}

// retryable reports whether an integration's error is throttling or a
// transient failure of the service, worth another attempt.
func retryable(err error) bool {
	if ae, ok := errors.AsType[smithy.APIError](err); ok {
		return retryableCode(ae.ErrorCode())
	}
	return false
}

// retryableCode reports whether an error code is throttling or a transient
// failure of the service.
func retryableCode(code string) bool {
	return strings.Contains(code, "Throttl") || strings.Contains(code, "TooManyRequests") ||
		code == "InternalFailure" || code == "InternalException" || code == "ServiceUnavailable" || code == "RequestLimitExceeded"
}

// took reports whether the claimed result key had already been delivered to
// integration name before this call.
func (m Message) took(key, name string) bool {
	return slices.Contains(m.delivered[key], name)
}

// record is the record stage: each claimed result's delivery, per
// integration. A result every configured integration has now taken is
// recorded as sent; one that some took is recorded with the integrations
// that took it (the others are owed it); one that none took is released.
// The lifecycle writes them together.
func (p *Pipeline) record(ctx context.Context, claimed []Claimed, by map[string][]string, now time.Time) []error {
	var ss []settlement
	for _, c := range claimed {
		if c.Claim == "" {
			continue
		}
		newly := by[c.Key()]
		all := append(slices.Clone(c.Delivered), newly...)
		complete := true
		for _, integ := range p.integrations {
			if !slices.Contains(all, integ.Name()) {
				complete = false
			}
		}
		s := settlement{c: c, complete: complete, release: !complete && len(newly) == 0}
		if !s.release {
			slices.Sort(all)
			s.delivered = slices.Compact(all)
		}
		ss = append(ss, s)
	}
	if len(ss) == 0 {
		return nil
	}
	var errs []error
	for i, err := range p.lc.settle(ctx, ss, now) {
		if err == nil {
			continue
		}
		if !ss[i].release {
			p.logger.ErrorContext(ctx, "alert delivered but not recorded: the next run may send it again", "key", ss[i].c.Key(), "transition", string(ss[i].c.Transition), "error", err.Error())
		}
		errs = append(errs, fmt.Errorf("%w: %w", ErrState, err))
	}
	return errs
}

// keysOf names the results of a message for an error: the first three
// keys, and how many more.
func keysOf(keys []string) string {
	if len(keys) > 3 {
		return strings.Join(keys[:3], ", ") + fmt.Sprintf(", and %d more", len(keys)-3)
	}
	return strings.Join(keys, ", ")
}

func messageAttrs(m Message, extra ...any) []any {
	keys := make([]string, 0, len(m.Results))
	for _, res := range m.Results {
		keys = append(keys, res.Key())
	}
	return append([]any{
		slog.String("transition", string(m.Transition)),
		slog.String("outcome", string(m.Outcome)),
		slog.String("severity", string(m.Severity)),
		slog.String("host", m.Host),
		slog.Int("count", len(m.Results)),
		slog.Any("keys", keys),
	}, extra...)
}
