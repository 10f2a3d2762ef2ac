package drift

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/iac"
	"github.com/thumbprint-drift/thumbprint-drift/internal/oidcprovider"
	"github.com/thumbprint-drift/thumbprint-drift/internal/thumbprint"
)

// check decides one provider. Reading and probing honour work (the run's
// deadline less the reserve); a decided write uses ctx so it is never cut half way.
//
// event is the writer the run's CloudTrail event names for this provider
// (nil: none); with the tags and, for a drift, the state it says whether
// the provider is owned by code.
// memory (nil without state) tells what the state remembers of it.
func (e *Engine) check(ctx, work context.Context, providers Providers, probe ProbeFunc, arn string, runMode config.Mode, explicit bool, event *iac.Writer,
	memory func(context.Context, string) (*Recall, error)) Result {
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

	// The state is read once, and only when needed: for a merge that cuts
	// the list (when each entry was last seen live), and for a drift (who
	// owns the provider, what the function wrote).
	var mem *Recall
	recalled := false
	recall := func() *Recall {
		if recalled || memory == nil {
			return mem
		}
		recalled = true
		var err error
		if mem, err = memory(work, arn); err != nil {
			notes = append(notes, fmt.Sprintf("the alert state could not be read (%v): ownership by code from the tags and this event only, no revert detected, the cut keeps stored entries in stored order", err))
		}
		return mem
	}
	seenFor := func(stored []string) LastSeen {
		if !Cuts(res.Thumbprints, stored) {
			return nil
		}
		if m := recall(); m != nil {
			return m.Seen
		}
		return nil
	}
	// Who owns the provider: its tags and the writer this run's event names,
	// and for a drift what the state remembers.
	writer := event
	codeFor := func(stored []string) Code {
		c := Code{Remediate: pol.Mode == config.ModeRemediate}
		revertedBefore := false
		if len(res.Thumbprints) > 0 && !InSyncWith(res.Thumbprints, stored) {
			if m := recall(); m != nil {
				writer = iac.Newer(m.Writer, event)
				c.Wrote, c.WroteAt, c.By = m.Wrote, m.WroteAt, iac.SetBackBy(writer, m.WroteAt)
				revertedBefore = !m.RevertedAt.IsZero()
			}
		}
		c.Owner = owner(p.Tags, writer, c.By, revertedBefore)
		return c
	}
	code := codeFor(p.Thumbprints)
	if code.Owner.Warning != "" {
		r.tagWarning = true
		notes = append(notes, code.Owner.Warning)
	}
	d := Decide(res.Thumbprints, p.Thumbprints, seenFor(p.Thumbprints), res.PubliclyTrusted, r.Mode, pol.AllowUnverified, code)
	if len(d.Dropped) > 0 {
		notes = append(notes, fmt.Sprintf("malformed stored entries left out of the new list: %q", d.Dropped))
	}
	// finish sets what the result says of the code that owns the provider.
	finish := func() Result {
		o := code.Owner
		if r.Outcome == Reverted {
			o = owner(p.Tags, writer, code.By, true)
		}
		r.ManagedBy, r.LastWriter, r.EventWriter = string(o.ManagedBy), writer.Brief(), event
		if o.Owned() && (r.Outcome == Drift || r.Outcome == Reverted) {
			r.CodeFix = iac.CodeFix(o.ManagedBy, arn, r.NewThumbprints)
		}
		r.Detail = join(notes)
		return r
	}
	for range 3 {
		r.Outcome, r.NewThumbprints = d.Outcome, d.NewList
		if !d.Apply && d.Outcome != Reverted {
			if detail, ok := expiring(d.Outcome, res, e.opts.Now(), e.opts.ExpiryWarning); ok {
				r.Outcome = Expiring
				notes = append(notes, detail)
			}
			if d.Reason != "" {
				notes = append(notes, d.Reason)
			}
			return finish()
		}
		if d.Outcome == Reverted {
			// Read again before calling it a revert: never take this run's
			// stale read, next to a concurrent invocation's write, for one.
			cur, err := providers.Get(ctx, arn)
			switch {
			case errors.Is(err, oidcprovider.ErrNotFound):
				r.Outcome = Skipped
				notes = append(notes, "provider deleted since it was read; nothing written")
				return finish()
			case err != nil:
				notes = append(notes, d.Reason, fmt.Sprintf("re-read to confirm: %v", err))
				return finish()
			case !oidcprovider.SameList(cur.Thumbprints, r.StoredThumbprints):
				notes = append(notes, fmt.Sprintf("stored list changed from %q to %q since the decision; decided again", r.StoredThumbprints, cur.Thumbprints))
				r.StoredThumbprints = cur.Thumbprints
				code = codeFor(cur.Thumbprints)
				d = Decide(res.Thumbprints, cur.Thumbprints, seenFor(cur.Thumbprints), res.PubliclyTrusted, r.Mode, pol.AllowUnverified, code)
				continue
			}
			notes = append(notes, d.Reason)
			return finish()
		}
		// The compare-and-swap reads again just before writing: never
		// overwrite someone else's change.
		cur, err := providers.UpdateIfUnchanged(ctx, arn, r.StoredThumbprints, d.NewList)
		switch {
		case errors.Is(err, oidcprovider.ErrChanged):
			notes = append(notes, fmt.Sprintf("stored list changed from %q to %q since the decision; decided again", r.StoredThumbprints, cur.Thumbprints))
			r.StoredThumbprints = cur.Thumbprints
			code = codeFor(cur.Thumbprints)
			d = Decide(res.Thumbprints, cur.Thumbprints, seenFor(cur.Thumbprints), res.PubliclyTrusted, r.Mode, pol.AllowUnverified, code)
			continue
		case errors.Is(err, oidcprovider.ErrNotFound):
			r.Outcome = Skipped
			notes = append(notes, "provider deleted before the write; nothing written")
			return finish()
		case err != nil:
			r.Outcome = UpdateFailed
			notes = append(notes, err.Error()+"; nothing written")
			return finish()
		}
		r.Outcome = Updated
		notes = append(notes, "thumbprint list replaced")
		return finish()
	}
	r.Outcome = Drift
	notes = append(notes, "stored list kept changing under concurrent writers; nothing written")
	return finish()
}

// owner is who owns a provider (iac.Ownership): its tags, else its last
// writer; after a revert (reverted), whoever set it back (by, nil:
// unknown) when nothing else names an owner.
func owner(tags map[string]string, last, by *iac.Writer, reverted bool) iac.Owner {
	o := iac.Ownership(tags, last, false)
	if !o.Owned() && reverted {
		w := o.Warning
		o = iac.Ownership(tags, by, true)
		o.Warning = w
	}
	return o
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
		url = urlOfARN(r.ProviderARN)
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
