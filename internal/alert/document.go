package alert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/iac"
)

// Document is the JSON alert document of one grouped message (DESIGN.md
// "Messages"): what SNS delivers to every protocol but email, and the detail
// of the EventBridge event. Its JSON names are a contract.
type Document struct {
	Transition      Transition     `json:"transition"`
	Outcome         drift.Outcome  `json:"outcome"`
	Severity        drift.Severity `json:"severity"`
	Host            string         `json:"host"`
	LiveThumbprints []string       `json:"live_thumbprints"`
	Mode            string         `json:"mode"`
	// CheckedAt is RFC 3339, UTC.
	CheckedAt string `json:"checked_at"`
	// Count is how many providers (or accounts) the message concerns.
	Count int `json:"count"`
	// Omitted is how many of them Results leaves out to keep the message
	// within its bound (the report and the log have them all).
	Omitted int              `json:"omitted"`
	Results []DocumentResult `json:"results"`
}

// DocumentResult is one provider (or failed account) of a Document.
type DocumentResult struct {
	AccountID          string   `json:"account_id"`
	ProviderARN        string   `json:"provider_arn"`
	URL                string   `json:"url"`
	StoredThumbprints  []string `json:"stored_thumbprints"`
	NewThumbprints     []string `json:"new_thumbprints"`
	PubliclyTrusted    bool     `json:"publicly_trusted"`
	ThumbprintEnforced bool     `json:"thumbprint_enforced"`
	BreaksAssumeRole   bool     `json:"breaks_assume_role"`
	FirstSeen          string   `json:"first_seen,omitempty"`
	// Detail is at most MaxDetailBytes.
	Detail string `json:"detail"`
	// Fix is the AWS CLI command that writes the new list, when there is one
	// to write (drift, reverted and update-failed).
	Fix string `json:"fix,omitempty"`
	// ManagedBy, LastWriter and CodeFix say, for a provider owned by code,
	// what owns it, who last wrote it and the change to make in the code
	// (DESIGN.md "Infrastructure as code").
	ManagedBy  string      `json:"managed_by,omitempty"`
	LastWriter *iac.Writer `json:"last_writer,omitempty"`
	CodeFix    string      `json:"code_fix,omitempty"`
}

// MaxDetailBytes bounds one result's detail in a message; a longer detail is
// cut at a UTF-8 boundary and ends with DetailCutMarker.
const MaxDetailBytes = 1024

// DetailCutMarker ends a detail that was cut to MaxDetailBytes.
const DetailCutMarker = " [cut]"

// CutDetail returns s when it is at most MaxDetailBytes, else its longest
// prefix that ends on a rune boundary followed by DetailCutMarker, in all at
// most MaxDetailBytes.
func CutDetail(s string) string {
	if len(s) <= MaxDetailBytes {
		return s
	}
	n := MaxDetailBytes - len(DetailCutMarker)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.ToValidUTF8(s[:n], "") + DetailCutMarker
}

// CutDetails cuts every detail of rep to MaxDetailBytes (CutDetail), and
// each account section's error and skip reason: a report carries its
// details as messages do, the function's response and the CLI's JSON alike.
func CutDetails(rep *drift.Report) {
	for i := range rep.Results {
		rep.Results[i].Detail = CutDetail(rep.Results[i].Detail)
	}
	for i := range rep.Accounts {
		rep.Accounts[i].Error = CutDetail(rep.Accounts[i].Error)
		rep.Accounts[i].Skipped = CutDetail(rep.Accounts[i].Skipped)
	}
}

// documentResult is r as a message lists it.
func documentResult(r drift.Result) DocumentResult {
	account := r.AccountID
	if account == "" {
		account = accounts.AccountOf(r.ProviderARN)
	}
	d := DocumentResult{
		AccountID:          account,
		ProviderARN:        r.ProviderARN,
		URL:                r.URL,
		StoredThumbprints:  nonNil(r.StoredThumbprints),
		NewThumbprints:     nonNil(r.NewThumbprints),
		PubliclyTrusted:    r.PubliclyTrusted,
		ThumbprintEnforced: r.ThumbprintEnforced,
		BreaksAssumeRole:   r.BreaksAssumeRole,
		FirstSeen:          r.FirstSeen,
		Detail:             CutDetail(r.Detail),
		ManagedBy:          r.ManagedBy,
		LastWriter:         r.LastWriter.Brief(),
		CodeFix:            r.CodeFix,
	}
	if (r.Outcome == drift.Drift || r.Outcome == drift.Reverted || r.Outcome == drift.UpdateFailed) && len(r.NewThumbprints) > 0 && r.ProviderARN != "" {
		d.Fix = FixCommand(r.ProviderARN, r.NewThumbprints)
	}
	return d
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// NewDocument is m's document listing all of its results (unbounded; the
// publishers bound it).
func NewDocument(m Message) Document {
	results := make([]DocumentResult, len(m.Results))
	for i, r := range m.Results {
		results[i] = documentResult(r)
	}
	return Document{
		Transition:      m.Transition,
		Outcome:         m.Outcome,
		Severity:        m.Severity,
		Host:            m.Host,
		LiveThumbprints: nonNil(m.LiveThumbprints),
		Mode:            string(m.Mode),
		CheckedAt:       m.CheckedAt.UTC().Format(time.RFC3339),
		Count:           len(results),
		Results:         results,
	}
}

// first returns the document listing only its first n results, counting the
// others in Omitted.
func (d Document) first(n int) Document {
	d.Omitted = d.Count - n
	d.Results = d.Results[:n]
	return d
}

// breaking counts the listed results whose drift breaks AssumeRoleWithWebIdentity.
func (d Document) breaking() int {
	n := 0
	for _, r := range d.Results {
		if r.BreaksAssumeRole {
			n++
		}
	}
	return n
}

// marshal is json.Marshal without HTML escaping (a message is not HTML, and
// \u003c costs six bytes of the bound) and without a trailing newline.
func marshal(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", fmt.Errorf("encode %T: %w", v, err)
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// DetailType is the EventBridge detail-type of a message with transition t:
// "OIDC Provider Thumbprint New", "... Changed", "... Reminder", "... Resolved",
// "... Applied".
func DetailType(t Transition) string {
	s := string(t)
	if s != "" {
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	return "OIDC Provider Thumbprint " + s
}
