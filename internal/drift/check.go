package drift

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/oidcprovider"
	"github.com/thumbprint-drift/thumbprint-drift/internal/thumbprint"
)

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
		if seenRead || e.opts.Seen == nil || !Cuts(res.Thumbprints, stored) {
			return seen
		}
		seenRead = true
		var err error
		if seen, err = e.opts.Seen.LastSeen(work, arn, e.opts.Now()); err != nil {
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
