// Package drift is the engine: for each IAM OIDC provider of one account or
// of every account of an organisation it probes the live thumbprints,
// decides (the decision table: decide.go), replaces the stored list where
// safe (check.go), and returns the report (engine.go, org.go). It knows
// nothing of alerting: internal/alert's notify pipeline takes the report.
package drift

import (
	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/iac"
)

// Outcome is what a run did with one provider.
type Outcome string

// The outcomes of DESIGN.md's decision table.
const (
	InSync Outcome = "in-sync"
	// Expiring: in sync, thumbprint enforced, and a certificate whose
	// thumbprint is live (the last certificate of a served chain) expires
	// within EXPIRY_WARNING.
	Expiring Outcome = "expiring"
	Updated  Outcome = "updated"
	Drift    Outcome = "drift"
	// Reverted: with state, the function applied a list and another writer
	// has since set the provider back to a list without a live thumbprint;
	// not written again (DESIGN.md "Infrastructure as code").
	Reverted     Outcome = "reverted"
	ProbeFailed  Outcome = "probe-failed"
	UpdateFailed Outcome = "update-failed"
	Skipped      Outcome = "skipped"
	// AccountFailed (organisation mode): an account's role could not be
	// assumed or its providers listed.
	AccountFailed Outcome = "account-failed"
)

// Outcomes lists every provider outcome in the order reports show them.
var Outcomes = []Outcome{InSync, Expiring, Updated, Drift, Reverted, ProbeFailed, UpdateFailed, Skipped}

// Problem reports whether o is a problem (DESIGN.md's decision table gives
// it a severity above none and an operator has something to do): drift,
// reverted, probe-failed, update-failed, expiring and account-failed.
func (o Outcome) Problem() bool {
	switch o {
	case Drift, Reverted, ProbeFailed, UpdateFailed, Expiring, AccountFailed:
		return true
	}
	return false
}

// Severity grades an outcome for alert routing.
type Severity string

// The severities.
const (
	SeverityNone     Severity = "none"
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Result is the decision for one provider. Its JSON names are a contract:
// users' SNS filters and dashboards read them.
type Result struct {
	ProviderARN       string   `json:"provider_arn"`
	URL               string   `json:"url"`
	Outcome           Outcome  `json:"outcome"`
	Severity          Severity `json:"severity"`
	LiveThumbprints   []string `json:"live_thumbprints"`
	StoredThumbprints []string `json:"stored_thumbprints"`
	// NewThumbprints is the list written (updated) or that would be written (drift).
	NewThumbprints  []string `json:"new_thumbprints"`
	PubliclyTrusted bool     `json:"publicly_trusted"`
	// ThumbprintEnforced: AWS checks the thumbprint for this provider (the
	// chain is not publicly trusted, or a host requires TLS 1.3).
	ThumbprintEnforced bool `json:"thumbprint_enforced"`
	// BreaksAssumeRole: drift left in place and the thumbprint enforced.
	BreaksAssumeRole bool `json:"breaks_assume_role"`
	// Transition is the alert lifecycle's transition sent for this result
	// (new, changed, reminder, resolved, applied); empty: none. The engine
	// leaves it empty; the notify pipeline (internal/alert) sets it.
	Transition string `json:"transition"`
	// FirstSeen is when the current problem was first seen (RFC 3339), for
	// problems; set by the notify pipeline from the alert state.
	FirstSeen string `json:"first_seen,omitempty"`
	Detail    string `json:"detail"`
	// AccountID is set in organisation mode.
	AccountID string `json:"account_id,omitempty"`
	// ManagedBy is the code that owns the provider (its managed-by tag, else
	// its recorded writer's tool; unknown for a revert by a writer no event
	// named); empty when not owned by code, or not known (DESIGN.md
	// "Infrastructure as code").
	ManagedBy string `json:"managed_by,omitempty"`
	// LastWriter is the provider's last writer other than the function
	// (tool, principal, time), where known: from this run's CloudTrail event
	// or the state.
	LastWriter *iac.Writer `json:"last_writer,omitempty"`
	// CodeFix is the change to make in the owning code so that it declares
	// NewThumbprints (drift and reverted of a provider owned by code).
	CodeFix string `json:"code_fix,omitempty"`
	// EventWriter is the writer the CloudTrail event of this run names, in
	// full (user agent included), for the state to record; nil otherwise.
	EventWriter *iac.Writer `json:"-"`

	// Host groups alerts: the jwks_uri host, or the issuer host when discovery
	// failed, with :port when not 443.
	Host string `json:"-"`

	// Mode is the mode that applied to this provider (default, request and tag).
	Mode config.Mode `json:"-"`
	// tagWarning: a thumbprint-drift tag was not understood (named in Detail),
	// so the decision is logged as a warning even when its severity is none.
	tagWarning bool
}

// Key identifies the result's subject: the provider ARN (which holds the
// account), or "account#<id>" for an account's own result (account-failed).
func (r Result) Key() string {
	if r.ProviderARN == "" {
		return "account#" + r.AccountID
	}
	return r.ProviderARN
}

// Account is the result's account: set in organisation mode, else the
// provider ARN's.
func (r Result) Account() string {
	if r.AccountID != "" {
		return r.AccountID
	}
	return accounts.AccountOf(r.ProviderARN)
}

// Report is what a run returns. In organisation mode Accounts has one
// section per account and Counts, Checked and Results are the totals.
type Report struct {
	Mode    config.Mode     `json:"mode"`
	Checked int             `json:"checked"`
	Counts  map[Outcome]int `json:"counts"`
	Results []Result        `json:"results"`
	// ResultsOmitted counts the results left out of Results to keep the
	// function's response under Lambda's 6 MB (Counts still has them):
	// in-sync ones first, then, when the others alone do not fit, those past
	// the bound, summarised in OmittedGroups.
	ResultsOmitted int `json:"results_omitted,omitempty"`
	// OmittedGroups summarises the results other than in-sync left out, by
	// outcome and host.
	OmittedGroups []OmittedGroup   `json:"omitted_groups,omitempty"`
	Accounts      []AccountSummary `json:"accounts,omitempty"`
	// AccountsOmitted counts the account sections left out to stay under
	// the same bound.
	AccountsOmitted int `json:"accounts_omitted,omitempty"`
	// Reached are the accounts of an organisation run whose role was assumed
	// and whose providers were listed ("" for the organisation's own
	// listing); nil outside organisation mode. Not part of the JSON report.
	Reached []string `json:"-"`
}

// OmittedGroup counts the results of one outcome and host left out of a
// bounded report.
type OmittedGroup struct {
	Outcome Outcome `json:"outcome"`
	// Host is the alert grouping host (Result.Host); "(other hosts)" when
	// the groups themselves did not fit and were merged per outcome.
	Host  string `json:"host"`
	Count int    `json:"count"`
}

// AccountSummary is one account's section of an organisation report.
type AccountSummary struct {
	AccountID string          `json:"account_id"`
	RoleARN   string          `json:"role_arn,omitempty"`
	Checked   int             `json:"checked"`
	Counts    map[Outcome]int `json:"counts"`
	// Error says why the account failed, when it did.
	Error string `json:"error,omitempty"`
	// Skipped says why the account was not checked, when it was not (the
	// management account seen from a delegated administrator).
	Skipped string `json:"skipped,omitempty"`
}

func newReport(mode config.Mode, results []Result, accounts []AccountSummary) *Report {
	rep := &Report{Mode: mode, Checked: len(results), Counts: make(map[Outcome]int, len(Outcomes)+1), Results: results, Accounts: accounts}
	for _, o := range Outcomes {
		rep.Counts[o] = 0
	}
	if accounts != nil {
		rep.Counts[AccountFailed] = 0
	}
	for _, r := range results {
		rep.Counts[r.Outcome]++
	}
	if rep.Results == nil {
		rep.Results = []Result{}
	}
	return rep
}
