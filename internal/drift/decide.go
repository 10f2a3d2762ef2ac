package drift

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/iac"
	"github.com/thumbprint-drift/thumbprint-drift/internal/oidcprovider"
	"github.com/thumbprint-drift/thumbprint-drift/internal/thumbprint"
)

// This file is the whole decision table (DESIGN.md "Decisions"): the
// tags' policy and mode (ParsePolicy, EffectiveMode), the outcome and the
// new list (Decide, Merge), expiring, breaks_assume_role and severity
// (grade). The engine (check.go) only reads, probes and writes.

// Tag keys read from each provider.
const (
	TagMode            = "thumbprint-drift:mode"
	TagAllowUnverified = "thumbprint-drift:allow-unverified"
)

// Policy is what a provider's tags ask for.
type Policy struct {
	// Mode overrides the default mode; empty when not tagged (or tagged badly).
	Mode config.Mode
	// Ignore is set by thumbprint-drift:mode=ignore.
	Ignore bool
	// AllowUnverified lets remediate apply a chain that is not publicly trusted.
	AllowUnverified bool
	// Warnings name tags whose values were not understood and were ignored.
	Warnings []string
}

// ParsePolicy reads the thumbprint-drift tags. Values are compared
// case-insensitively; a value not understood is ignored with a warning.
func ParsePolicy(tags map[string]string) Policy {
	var p Policy
	if v, ok := tags[TagMode]; ok {
		switch s := strings.ToLower(strings.TrimSpace(v)); s {
		case "ignore":
			p.Ignore = true
		case string(config.ModeRemediate), string(config.ModeAlert), string(config.ModeReport):
			p.Mode = config.Mode(s)
		default:
			p.Warnings = append(p.Warnings, fmt.Sprintf("tag %s=%q is not remediate, alert, report or ignore; the default mode applies", TagMode, v))
		}
	}
	if v, ok := tags[TagAllowUnverified]; ok {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true":
			p.AllowUnverified = true
		case "false":
		default:
			p.Warnings = append(p.Warnings, fmt.Sprintf("tag %s=%q is not true or false; treated as false", TagAllowUnverified, v))
		}
	}
	return p
}

var invasiveness = map[config.Mode]int{config.ModeReport: 0, config.ModeAlert: 1, config.ModeRemediate: 2}

// EffectiveMode is the mode that applies to a provider. A tag overrides the
// default mode; when the run's mode was asked for explicitly (a manual payload,
// the CLI's --mode), a tag can only make the provider more careful, so a manual
// report never writes.
func EffectiveMode(run config.Mode, explicit bool, tag config.Mode) config.Mode {
	if tag == "" {
		return run
	}
	if explicit && invasiveness[tag] > invasiveness[run] {
		return run
	}
	return tag
}

// InSyncWith reports whether every live thumbprint is in the stored list,
// comparing case-insensitively.
func InSyncWith(live, stored []string) bool {
	have := make(map[string]bool, len(stored))
	for _, s := range stored {
		have[strings.ToLower(s)] = true
	}
	for _, l := range live {
		if !have[strings.ToLower(l)] {
			return false
		}
	}
	return true
}

// LastSeen is when each thumbprint (lowercase hex) of a provider was last
// seen live, as the alert state remembers it; nil without state.
type LastSeen map[string]time.Time

// Merge builds the list to write: the live thumbprints (lowercase, in order),
// then the stored entries seen live (most recently seen first), then the
// stored entries never seen live (in stored order), without duplicates, cut
// to 5. So a cut never drops a chain the server still alternates to, or a
// thumbprint staged for the next rotation, before an entry nobody has seen.
// Stored entries that are not 40 hex characters are left out and returned as
// dropped, since IAM would refuse the whole update.
func Merge(live, stored []string, seen LastSeen) (list, dropped []string) {
	have := make(map[string]bool, len(live)+len(stored))
	add := func(t string) {
		k := strings.ToLower(t)
		if !have[k] && len(list) < oidcprovider.MaxThumbprints {
			list = append(list, t)
		}
		have[k] = true
	}
	for _, l := range live {
		add(strings.ToLower(l))
	}
	valid := make([]string, 0, len(stored))
	for _, s := range stored {
		if !oidcprovider.ValidThumbprint(s) {
			dropped = append(dropped, s)
			continue
		}
		valid = append(valid, s)
	}
	// Stable: entries seen at the same time, and entries never seen, keep
	// their stored order.
	slices.SortStableFunc(valid, func(a, b string) int {
		return seen[strings.ToLower(b)].Compare(seen[strings.ToLower(a)])
	})
	for _, s := range valid {
		add(s)
	}
	return list, dropped
}

// Cuts reports whether Merge has more distinct candidates than a list holds,
// so that which stored entries survive depends on when they were last seen.
func Cuts(live, stored []string) bool {
	have := make(map[string]bool, len(live)+len(stored))
	for _, l := range live {
		have[strings.ToLower(l)] = true
	}
	for _, s := range stored {
		if oidcprovider.ValidThumbprint(s) {
			have[strings.ToLower(s)] = true
		}
	}
	return len(have) > oidcprovider.MaxThumbprints
}

// Decision is what to do with one probed provider.
type Decision struct {
	Outcome Outcome
	// NewList is the list to write (Apply) or that would be written (drift).
	NewList []string
	// Dropped are stored entries left out of NewList because they are malformed.
	Dropped []string
	// Apply says the list should be written now.
	Apply bool
	// Reason explains a drift left in place.
	Reason string
}

// Code is what is known of the code that owns a provider, for Decide
// (DESIGN.md "Infrastructure as code").
type Code struct {
	// Owner says whether the provider is owned by code (its managed-by tag,
	// its recorded writer, a revert recorded earlier).
	Owner iac.Owner
	// Remediate: tagged thumbprint-drift:mode=remediate explicitly, which
	// lets remediate write a provider owned by code.
	Remediate bool
	// Wrote is the list the function last applied, at WroteAt, as the state
	// remembers it; nil without state or when forgotten.
	Wrote   []string
	WroteAt time.Time
	// By is who set the list back since the function wrote, when a
	// CloudTrail event named them; nil: unknown.
	By *iac.Writer
}

// Decide applies the decision table to live and stored thumbprints of a
// provider whose probe succeeded; seen orders the stored entries kept
// (Merge); code says who owns the provider and what the function wrote.
//
// A drift is reverted when the function applied a list and the stored list
// is now another one (without a live thumbprint, or it would be in sync):
// another writer set it back, and the function never writes it again. In
// remediate, a provider owned by code is not written unless tagged
// thumbprint-drift:mode=remediate.
func Decide(live, stored []string, seen LastSeen, publiclyTrusted bool, mode config.Mode, allowUnverified bool, code Code) Decision {
	if len(live) > 0 && InSyncWith(live, stored) {
		return Decision{Outcome: InSync}
	}
	d := Decision{Outcome: Drift}
	d.NewList, d.Dropped = Merge(live, stored, seen)
	switch {
	case len(live) == 0:
		d.NewList = nil
		d.Reason = "the probe found no thumbprint; nothing to write"
	case len(code.Wrote) > 0 && !oidcprovider.SameList(stored, code.Wrote):
		d.Outcome = Reverted
		d.Reason = iac.Revert{Wrote: code.Wrote, WroteAt: code.WroteAt, SetTo: stored, By: code.By}.Detail()
	case oidcprovider.ValidateList(d.NewList) != nil:
		d.Reason = fmt.Sprintf("not applied: %v", oidcprovider.ValidateList(d.NewList))
	case mode != config.ModeRemediate:
		d.Reason = fmt.Sprintf("mode %s: not applied", mode)
	case code.Owner.Owned() && !code.Remediate:
		d.Reason = code.Owner.NotWritten()
	case !publiclyTrusted && !allowUnverified:
		d.Reason = fmt.Sprintf("not applied: the served chain is not publicly trusted (a private CA, or an intercepting proxy on the probe's path); STS checks this thumbprint, so verify it out of band, then tag %s=true to let remediate write it", TagAllowUnverified)
	default:
		d.Apply = true
	}
	return d
}

// expiring is the table's expiring row: an in-sync provider whose
// thumbprint AWS enforces, one of whose certificates with a live thumbprint
// expires within horizon (0: the warning is off). The detail names it.
func expiring(o Outcome, res *thumbprint.Result, now time.Time, horizon time.Duration) (string, bool) {
	if o != InSync || res == nil || !res.ThumbprintEnforced || horizon <= 0 {
		return "", false
	}
	return ExpiringSoon(res, now, horizon)
}

// breaksAssumeRole is the table's breaks_assume_role: drift left in place
// (drift, reverted, or update-failed) and the thumbprint enforced; false
// once updated.
func breaksAssumeRole(o Outcome, enforced bool) bool {
	return (o == Drift || o == Reverted || o == UpdateFailed) && enforced
}

// grade completes a result's row of the table from its outcome:
// breaks_assume_role and, unless set, severity.
func grade(r *Result) {
	r.BreaksAssumeRole = breaksAssumeRole(r.Outcome, r.ThumbprintEnforced)
	if r.Severity == "" {
		r.Severity = severity(r.Outcome, r.BreaksAssumeRole)
	}
}

// severity grades an outcome per DESIGN.md.
func severity(o Outcome, breaks bool) Severity {
	switch o {
	case Updated:
		return SeverityInfo
	case AccountFailed:
		return SeverityCritical
	case Drift, Reverted, UpdateFailed:
		if breaks {
			return SeverityCritical
		}
		return SeverityWarning
	case ProbeFailed, Expiring:
		return SeverityWarning
	default:
		return SeverityNone
	}
}

// ExpiringSoon finds, among the certificates whose thumbprint is live (the
// last certificate of each served chain, of any host probed), the one that
// expires first, and reports it when it expires within horizon of now: an
// in-sync provider whose thumbprint AWS enforces is then expiring, since the
// next chain will carry a new thumbprint. A leaf or a lower intermediate is
// never a reason: renewed under the same CA, it keeps the thumbprint (with
// cert-manager's 90-day or an ACME CA's one-day leaves every private IdP
// would otherwise be expiring for good). The detail names the certificate
// (subject common name, thumbprint, host, position in its chain) and when it
// expires (RFC 3339). The caller decides whether the warning applies.
func ExpiringSoon(res *thumbprint.Result, now time.Time, horizon time.Duration) (detail string, ok bool) {
	if res == nil || horizon <= 0 {
		return "", false
	}
	type found struct {
		cert thumbprint.Certificate
		host string
		len  int
	}
	var first *found
	within := map[string]bool{} // by SHA-1: chains share certificates
	for _, h := range res.Hosts {
		for _, c := range h.Chains {
			if len(c.Certificates) == 0 {
				continue
			}
			cert := c.Certificates[len(c.Certificates)-1]
			if cert.NotAfter.Sub(now) > horizon {
				continue
			}
			within[cert.SHA1] = true
			if first == nil || cert.NotAfter.Before(first.cert.NotAfter) {
				first = &found{cert: cert, host: h.Host, len: len(c.Certificates)}
			}
		}
	}
	if first == nil {
		return "", false
	}
	name := first.cert.CommonName
	if name == "" {
		name = first.cert.Subject
	}
	when := "expires " + first.cert.NotAfter.UTC().Format(time.RFC3339) + ", in " + left(first.cert.NotAfter.Sub(now))
	if !first.cert.NotAfter.After(now) {
		when = "expired " + first.cert.NotAfter.UTC().Format(time.RFC3339)
	}
	detail = fmt.Sprintf("certificate %q with the live thumbprint %s, served by %s (%d of %d in its chain: the last certificate sent) %s; the thumbprint is enforced, and the next chain will carry a new one: stage its thumbprint ahead of the rotation",
		name, first.cert.SHA1, alertHost(first.host), first.len, first.len, when)
	if len(within) > 1 {
		detail += fmt.Sprintf(" (%d certificates with a live thumbprint expire within %s)", len(within), horizon)
	}
	return detail, true
}

// left is a duration as an operator reads it: days and hours, or less.
func left(d time.Duration) string {
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd%dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	case d >= time.Hour:
		return d.Truncate(time.Minute).String()
	default:
		return d.Truncate(time.Second).String()
	}
}
