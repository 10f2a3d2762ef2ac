package alert

import (
	"fmt"
	"strings"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/iac"
)

// TagMode is the provider tag that sets its mode; "ignore" silences it.
const TagMode = "thumbprint-drift:mode"

// EmailText is the plain text of d that the email protocol receives: what
// happened, what breaks, each listed provider with its fix command, and how
// to silence a provider. Lines stay short for mail clients.
func EmailText(d Document) string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	para := func(text string) { b.WriteString(wrap(text, 72, "")); b.WriteString("\n") }

	line("%s", headline(d))
	line("")
	line("WHAT HAPPENED")
	para(happened(d))
	if len(d.LiveThumbprints) > 0 {
		line("Live thumbprint(s) of %s:", hostOr(d))
		for _, t := range d.LiveThumbprints {
			line("  %s", t)
		}
	}
	line("Checked at %s in mode %s.", d.CheckedAt, d.Mode)
	line("")
	line("WHAT BREAKS")
	para(breaks(d))
	line("")

	noun := "PROVIDERS"
	if d.Outcome == drift.AccountFailed {
		noun = "ACCOUNTS"
	}
	line("%s (%d)", noun, d.Count)
	for i, r := range d.Results {
		line("")
		name := r.ProviderARN
		if name == "" {
			name = "account " + r.AccountID
		}
		line("%d. %s", i+1, name)
		field := func(k, v string) {
			if v != "" {
				b.WriteString(wrap(v, 72, fmt.Sprintf("   %-12s ", k)))
				b.WriteString("\n")
			}
		}
		field("account", r.AccountID)
		field("url", r.URL)
		if r.ProviderARN != "" {
			field("stored", listOrNone(r.StoredThumbprints))
			if len(r.NewThumbprints) > 0 {
				label := "new list"
				if d.Outcome == drift.Updated {
					label = "written"
				}
				field(label, strings.Join(r.NewThumbprints, " "))
			}
			field("trusted", yesNo(r.PubliclyTrusted, "publicly trusted chain", "chain not publicly trusted"))
			if r.BreaksAssumeRole {
				field("breaks", "AssumeRoleWithWebIdentity fails until the fix below is applied")
			}
		}
		field("first seen", r.FirstSeen)
		field("managed by", r.ManagedBy)
		if r.LastWriter != nil {
			field("last writer", r.LastWriter.String())
		}
		field("detail", r.Detail)
		if r.CodeFix != "" {
			if res := iac.Resource(iac.Tool(r.ManagedBy)); res != "" {
				line("   change the code (%s, %s), then apply it:", r.ManagedBy, res)
			} else {
				line("   change the code that owns it (%s), or run:", r.ManagedBy)
			}
			for _, l := range strings.Split(r.CodeFix, "\n") {
				line("     %s", l)
			}
		}
		switch {
		case r.Fix != "" && r.CodeFix != "" && r.Fix != r.CodeFix:
			line("   meanwhile (the code's next apply sets it back):")
			line("     %s", r.Fix)
		case r.Fix != "" && r.CodeFix == "":
			line("   fix:")
			line("     %s", r.Fix)
		}
	}
	if d.Omitted > 0 {
		line("")
		para(fmt.Sprintf("%d more not listed: this message is kept within SNS's 256 KiB. "+
			"The function's log names each of them (WARN \"result left out\"), and its invocation report has them all.", d.Omitted))
	}

	line("")
	line("SILENCE")
	text, command := silence(d)
	para(text)
	if command != "" {
		line("  %s", command)
	}
	return b.String()
}

func headline(d Document) string {
	where := hostOr(d)
	switch d.Transition {
	case TransitionResolved:
		return fmt.Sprintf("Resolved: the problem alerted for %s is gone (%s).", where, count(d))
	case TransitionApplied:
		return fmt.Sprintf("Applied: thumbprint-drift replaced the thumbprint list for %s (%s).", where, count(d))
	case TransitionChanged:
		return fmt.Sprintf("Changed: %s for %s, different from the last alert (%s, severity %s).", d.Outcome, where, count(d), d.Severity)
	case TransitionReminder:
		return fmt.Sprintf("Reminder: %s for %s is still there (%s, severity %s).", d.Outcome, where, count(d), d.Severity)
	default:
		return fmt.Sprintf("New: %s for %s (%s, severity %s).", d.Outcome, where, count(d), d.Severity)
	}
}

func count(d Document) string {
	if d.Outcome == drift.AccountFailed {
		return plural(d.Count, "account", "accounts")
	}
	return plural(d.Count, "provider", "providers")
}

// capitalize upper-cases s's first letter (ASCII).
func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func hostOr(d Document) string {
	if d.Host != "" {
		return d.Host
	}
	if len(d.Results) == 1 && d.Results[0].AccountID != "" {
		return "account " + d.Results[0].AccountID
	}
	return "the organization"
}

func happened(d Document) string {
	n := count(d)
	// the is the providers as a sentence's subject: "the provider", "the 2 providers".
	the, do := "the "+n, "do"
	if d.Count == 1 {
		the, do = "the "+strings.TrimPrefix(n, "1 "), "does"
	}
	switch d.Outcome {
	case drift.InSync:
		stores := "store"
		if d.Count == 1 {
			stores = "stores"
		}
		return fmt.Sprintf("%s now %s every live thumbprint of %s. Nothing to do.", capitalize(the), stores, d.Host)
	case drift.Updated:
		return fmt.Sprintf("%s served a certificate chain whose thumbprint %s did not store. "+
			"thumbprint-drift wrote the new list (the live thumbprints first, then the stored ones, at most 5). "+
			"Nothing to do; this records the change.", d.Host, the)
	case drift.Drift:
		why := "the chain is not publicly trusted, so the function writes it only to a provider tagged " +
			"thumbprint-drift:allow-unverified=true (each detail says why)"
		if d.Mode != string(config.ModeRemediate) {
			why = "the run's mode, " + d.Mode + ", does not write"
		}
		return fmt.Sprintf("%s serves a certificate chain whose thumbprint %s %s not store. "+
			"The stored list was left in place: %s.", d.Host, the, do, why)
	case drift.Reverted:
		return fmt.Sprintf("%s serves a certificate chain whose thumbprint %s %s not store. thumbprint-drift "+
			"had written a list holding it, and another writer (code deploying the provider, most likely) has set it back: "+
			"each detail names who and when. The function does not write it again, since the code's next apply would "+
			"set it back once more: put the list in the code (the change below).", d.Host, the, do)
	case drift.UpdateFailed:
		return fmt.Sprintf("%s serves a certificate chain whose thumbprint %s %s not store, "+
			"and IAM refused or failed the update to the new list (see each detail).", d.Host, the, do)
	case drift.ProbeFailed:
		return fmt.Sprintf("thumbprint-drift could not compute the live thumbprint of %s for %s: "+
			"discovery or the TLS handshake failed, or the run's deadline came first. Nothing was written.", hostOr(d), the)
	case drift.Expiring:
		return fmt.Sprintf("A certificate whose thumbprint is live (the last one %s serves) expires soon, and AWS checks the thumbprint of %s. "+
			"The next chain will carry a new thumbprint; each detail says which certificate and when.", d.Host, the)
	case drift.AccountFailed:
		return fmt.Sprintf("thumbprint-drift could not check %s: the role was not assumed or the providers were not listed (see each detail).", n)
	}
	return fmt.Sprintf("%s: %s.", d.Outcome, n)
}

func breaks(d Document) string {
	const why = "AWS checks the thumbprint for these providers because the chain is not publicly trusted " +
		"or the host requires TLS 1.3 (otherwise it validates the certificate with its own CA library and ignores the thumbprint)."
	switch d.Outcome {
	case drift.InSync, drift.Updated:
		return "Nothing: the stored lists match the live chain."
	case drift.Drift, drift.Reverted, drift.UpdateFailed:
		if k := d.breaking(); k > 0 {
			todo := "Run each fix command below, or let the function write it."
			if d.Outcome == drift.Reverted {
				todo = "Put each list below in the code that owns the provider, and apply it."
			}
			return fmt.Sprintf("AssumeRoleWithWebIdentity fails for %s listed here (breaks_assume_role): %s %s",
				plural(k, "provider", "providers"), why, todo)
		}
		return "Nothing yet: the chain is publicly trusted and no host requires TLS 1.3, so AWS validates " +
			"the certificate with its own CA library and ignores the thumbprint. Should that change, the stale " +
			"list breaks AssumeRoleWithWebIdentity; the fix commands below make it true."
	case drift.Expiring:
		return "Nothing yet. When the certificate is replaced, AssumeRoleWithWebIdentity fails unless the next " +
			"chain's thumbprint is stored: " + why + " Stage it ahead with `thumbprint-drift stage`."
	case drift.ProbeFailed:
		return "Unknown: without the live chain nobody can tell whether the stored list still matches. " +
			"If STS cannot reach the host either, AssumeRoleWithWebIdentity fails whatever the thumbprint."
	case drift.AccountFailed:
		return "The account's providers were not checked: drift there goes unnoticed until the role works."
	}
	return "See each detail."
}

// silence is the text that says how to stop alerts: a paragraph to wrap and
// a command to print whole.
func silence(d Document) (text, command string) {
	switch {
	case d.Outcome == drift.AccountFailed:
		return "Fix the account's role, or leave the account out of the run (ACCOUNT_ROLE_ARNS).", ""
	case d.Transition == TransitionResolved || d.Transition == TransitionApplied:
		text = "Nothing to do: this closes the alert. To stop messages about a provider, tag it " +
			TagMode + "=ignore (not checked) or " + TagMode + "=report (checked and reported, never alerted or written):"
	default:
		text = "Until the stored list is fixed, a reminder follows every REALERT_INTERVAL (with STATE_TABLE). " +
			"To stop alerts for a provider, tag it " + TagMode + "=ignore (not checked) or " +
			TagMode + "=report (checked and reported, never alerted or written):"
	}
	arn := "<provider ARN>"
	if len(d.Results) == 1 && d.Results[0].ProviderARN != "" {
		arn = shellQuote(d.Results[0].ProviderARN)
	}
	return text, "aws iam tag-open-id-connect-provider --open-id-connect-provider-arn " + arn +
		" --tags Key=" + TagMode + ",Value=ignore"
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "(none)"
	}
	return strings.Join(l, " ")
}

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

// wrap breaks text into lines of at most width (words longer than the width
// stay whole), the first line prefixed by first and the others indented to
// the same column. Newlines in text start new lines.
func wrap(text string, width int, first string) string {
	indent := strings.Repeat(" ", len(first))
	var b strings.Builder
	for i, para := range strings.Split(text, "\n") {
		if i > 0 {
			b.WriteString("\n")
		}
		prefix := first
		if i > 0 {
			prefix = indent
		}
		col := 0
		for j, w := range strings.Fields(para) {
			switch {
			case j == 0:
				b.WriteString(prefix)
				col = len(prefix)
			case col+1+len(w) > width:
				b.WriteString("\n" + indent)
				col = len(indent)
			default:
				b.WriteString(" ")
				col++
			}
			b.WriteString(w)
			col += len(w)
		}
	}
	return b.String()
}
