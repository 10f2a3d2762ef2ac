package alert_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/iac"
)

var (
	tpLive = strings.Repeat("ab", 20)
	tp01   = strings.Repeat("01", 20)
	tp02   = strings.Repeat("02", 20)
	tp03   = strings.Repeat("03", 20)
)

const host = "idp.corp.example:8443"

// twoAccounts is the representative grouped message of the goldens: an
// identity provider's new chain, not publicly trusted, drifting two providers
// in two accounts.
func twoAccounts() alert.Message {
	res := func(account, tenant string, stored ...string) drift.Result {
		return drift.Result{
			AccountID:          account,
			ProviderARN:        "arn:aws:iam::" + account + ":oidc-provider/" + host + "/" + tenant,
			URL:                host + "/" + tenant,
			Outcome:            drift.Drift,
			Severity:           drift.SeverityCritical,
			Transition:         string(alert.TransitionNew),
			LiveThumbprints:    []string{tpLive},
			StoredThumbprints:  stored,
			NewThumbprints:     append([]string{tpLive}, stored...),
			ThumbprintEnforced: true,
			BreaksAssumeRole:   true,
			FirstSeen:          "2026-11-24T00:02:03Z",
			Detail:             "not applied: the served chain is not publicly trusted",
			Host:               host,
			Mode:               config.ModeRemediate,
		}
	}
	return alert.Message{
		Transition:      alert.TransitionNew,
		Outcome:         drift.Drift,
		Severity:        drift.SeverityCritical,
		Host:            host,
		LiveThumbprints: []string{tpLive},
		Mode:            config.ModeRemediate,
		CheckedAt:       time.Date(2026, 11, 24, 1, 2, 3, 0, time.FixedZone("CET", 3600)),
		Results:         []drift.Result{res("111111111111", "tenant/a", tp01, tp02), res("222222222222", "tenant/b", tp03)},
	}
}

// textGolden compares got with testdata/name as text.
func textGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if got != string(want) {
		t.Fatalf("%s differs:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestGroupedMessageGoldens(t *testing.T) {
	tests := []struct {
		name, golden string
		format       config.AlertFormat
	}{
		{"json document", "message-document.golden.json", config.FormatJSON},
		{"chatbot notification", "message-chatbot.golden.json", config.FormatChatbot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := alert.BuildSNS(twoAccounts(), tt.format)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tt.golden, []byte(m.Default))
			textGolden(t, "message-email.golden.txt", m.Email)
			var body map[string]string
			if err := json.Unmarshal([]byte(m.Message), &body); err != nil {
				t.Fatalf("Message is not a JSON object of strings: %v", err)
			}
			if len(body) != 2 || body["default"] != m.Default || body["email"] != m.Email {
				t.Errorf("Message keys %v, want exactly default and email", body)
			}
		})
	}
}

// The chatbot notification carries the JSON document, as a string, in
// metadata.additionalContext, and follows the custom notification schema.
func TestChatbotCarriesDocument(t *testing.T) {
	js, err := alert.BuildSNS(twoAccounts(), config.FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := alert.BuildSNS(twoAccounts(), config.FormatChatbot)
	if err != nil {
		t.Fatal(err)
	}
	var n alert.Chatbot
	if err := json.Unmarshal([]byte(cb.Default), &n); err != nil {
		t.Fatal(err)
	}
	if n.Version != "1.0" || n.Source != "custom" || n.Content.TextType != "client-markdown" || n.Content.Title == "" ||
		n.Content.Description == "" || len(n.Content.NextSteps) == 0 || n.ID == "" {
		t.Errorf("not a custom notification: %+v", n)
	}
	if got := n.Metadata.AdditionalContext["document"]; got != js.Default {
		t.Errorf("additionalContext.document\n%s\nwant the JSON document\n%s", got, js.Default)
	}
	for k, want := range map[string]string{"transition": "new", "outcome": "drift", "severity": "critical", "host": host, "count": "2", "omitted": "0"} {
		if got := n.Metadata.AdditionalContext[k]; got != want {
			t.Errorf("additionalContext[%s] = %q, want %q", k, got, want)
		}
	}
	if cb.Email != js.Email {
		t.Error("the email variant depends on ALERT_FORMAT")
	}
}

func TestMessageSubject(t *testing.T) {
	long := strings.Repeat("h", 120) + ".example.com"
	tests := []struct {
		name string
		edit func(*alert.Message)
		want string
	}{
		{"two providers", func(*alert.Message) {}, "thumbprint-drift: new drift idp.corp.example:8443 (2 providers)"},
		{"one provider has no count", func(m *alert.Message) { m.Results = m.Results[:1] },
			"thumbprint-drift: new drift idp.corp.example:8443"},
		{"resolved", func(m *alert.Message) { m.Transition, m.Outcome = alert.TransitionResolved, drift.InSync },
			"thumbprint-drift: resolved in-sync idp.corp.example:8443 (2 providers)"},
		{"long host cut with a marker, count kept", func(m *alert.Message) { m.Host = long },
			"thumbprint-drift: new drift " + long[:100-len("thumbprint-drift: new drift ")-len(" (2 providers)")-len(alert.SubjectCutMarker)] + alert.SubjectCutMarker + " (2 providers)"},
		{"long host of one provider cut with a marker", func(m *alert.Message) { m.Host, m.Results = long, m.Results[:1] },
			"thumbprint-drift: new drift " + long[:100-len("thumbprint-drift: new drift ")-len(alert.SubjectCutMarker)] + alert.SubjectCutMarker},
		{"a host that just fits is not cut", func(m *alert.Message) {
			m.Host, m.Results = long[:100-len("thumbprint-drift: new drift ")], m.Results[:1]
		},
			"thumbprint-drift: new drift " + long[:100-len("thumbprint-drift: new drift ")]},
		{"not printable ASCII replaced", func(m *alert.Message) { m.Host = "idp.exämple\n.com" },
			"thumbprint-drift: new drift idp.ex?mple?.com (2 providers)"},
		{"account-failed names the account", func(m *alert.Message) {
			m.Outcome, m.Host = drift.AccountFailed, ""
			m.Results = []drift.Result{{AccountID: "210987654321", Outcome: drift.AccountFailed}}
		}, "thumbprint-drift: new account-failed account 210987654321"},
		{"account-failed counts accounts", func(m *alert.Message) {
			m.Outcome, m.Host = drift.AccountFailed, ""
			m.Results = []drift.Result{{AccountID: "210987654321"}, {AccountID: "310987654321"}}
		}, "thumbprint-drift: new account-failed organization (2 accounts)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := twoAccounts()
			tt.edit(&m)
			got := alert.MessageSubject(m)
			if got != tt.want {
				t.Errorf("subject\n%q\nwant\n%q", got, tt.want)
			}
			if len(got) > alert.MaxSubject {
				t.Errorf("subject is %d characters", len(got))
			}
			for _, r := range got {
				if r < 0x20 || r > 0x7e {
					t.Errorf("subject holds %q", r)
				}
			}
		})
	}
}

func TestMessageAttributes(t *testing.T) {
	arnA := twoAccounts().Results[0].ProviderARN
	tests := []struct {
		name string
		edit func(*alert.Message)
		want map[string]string
	}{
		{"two accounts: no provider_arn, no account_id", func(*alert.Message) {},
			map[string]string{"transition": "new", "outcome": "drift", "severity": "critical", "host": host}},
		{"one provider", func(m *alert.Message) { m.Results = m.Results[:1] },
			map[string]string{"transition": "new", "outcome": "drift", "severity": "critical", "host": host, "provider_arn": arnA, "account_id": "111111111111"}},
		{"two providers of one account", func(m *alert.Message) {
			m.Results[1].AccountID = "111111111111"
			m.Results[1].ProviderARN = "arn:aws:iam::111111111111:oidc-provider/" + host + "/tenant/b"
		}, map[string]string{"transition": "new", "outcome": "drift", "severity": "critical", "host": host, "account_id": "111111111111"}},
		{"account id from the ARN", func(m *alert.Message) { m.Results = m.Results[:1]; m.Results[0].AccountID = "" },
			map[string]string{"transition": "new", "outcome": "drift", "severity": "critical", "host": host, "provider_arn": arnA, "account_id": "111111111111"}},
		{"failed account: no empty provider_arn or host", func(m *alert.Message) {
			m.Outcome, m.Host, m.Results = drift.AccountFailed, "", []drift.Result{{AccountID: "210987654321", Outcome: drift.AccountFailed}}
		}, map[string]string{"transition": "new", "outcome": "account-failed", "severity": "critical", "account_id": "210987654321"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := twoAccounts()
			tt.edit(&m)
			got, err := alert.BuildSNS(m, config.FormatJSON)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Attributes, tt.want) {
				t.Errorf("attributes %v\nwant %v", got.Attributes, tt.want)
			}
		})
	}
}

func TestDocumentFix(t *testing.T) {
	tests := []struct {
		outcome drift.Outcome
		newList []string
		wantFix bool
	}{
		{drift.Drift, []string{tpLive, tp01}, true},
		{drift.UpdateFailed, []string{tpLive, tp01}, true},
		{drift.Drift, nil, false},
		{drift.Updated, []string{tpLive, tp01}, false},
		{drift.Expiring, nil, false},
		{drift.ProbeFailed, nil, false},
		{drift.InSync, nil, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s with %d new", tt.outcome, len(tt.newList)), func(t *testing.T) {
			m := twoAccounts()
			m.Outcome = tt.outcome
			for i := range m.Results {
				m.Results[i].Outcome, m.Results[i].NewThumbprints = tt.outcome, tt.newList
			}
			d := alert.NewDocument(m)
			for _, r := range d.Results {
				if want := alert.FixCommand(r.ProviderARN, tt.newList); tt.wantFix && r.Fix != want {
					t.Errorf("fix %q, want %q", r.Fix, want)
				} else if !tt.wantFix && r.Fix != "" {
					t.Errorf("fix %q, want none", r.Fix)
				}
				if r.NewThumbprints == nil || r.StoredThumbprints == nil {
					t.Error("a list encodes as null")
				}
			}
			email := alert.EmailText(d)
			if strings.Contains(email, "update-open-id-connect-provider-thumbprint") != tt.wantFix {
				t.Errorf("email fix command present = %v, want %v:\n%s", !tt.wantFix, tt.wantFix, email)
			}
		})
	}
}

// Each transition and outcome reads right in the email: resolved and applied
// say there is nothing to do, problems say how to silence them.
func TestEmailWording(t *testing.T) {
	tests := []struct {
		transition alert.Transition
		outcome    drift.Outcome
		want       []string
	}{
		{alert.TransitionNew, drift.Drift, []string{"New: drift", "AssumeRoleWithWebIdentity fails", "not publicly trusted or the host requires TLS 1.3", "Value=ignore", "thumbprint-drift:mode=report"}},
		{alert.TransitionChanged, drift.Drift, []string{"Changed: drift", "different from the last alert"}},
		{alert.TransitionReminder, drift.ProbeFailed, []string{"Reminder: probe-failed", "could not compute the live thumbprint"}},
		{alert.TransitionNew, drift.Expiring, []string{"expires soon", "thumbprint-drift stage"}},
		{alert.TransitionResolved, drift.InSync, []string{"Resolved:", "is gone", "Nothing to do"}},
		{alert.TransitionApplied, drift.Updated, []string{"Applied:", "wrote the new list", "Nothing to do"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.transition)+" "+string(tt.outcome), func(t *testing.T) {
			m := twoAccounts()
			m.Transition, m.Outcome = tt.transition, tt.outcome
			email := alert.EmailText(alert.NewDocument(m))
			for _, w := range tt.want {
				if !strings.Contains(email, w) {
					t.Errorf("email lacks %q:\n%s", w, email)
				}
			}
		})
	}
}

// TestEmailWordingOfOneProvider: a message of one provider reads as
// English: "The provider now stores", "the provider does not store", never
// "The 1 provider now store".
func TestEmailWordingOfOneProvider(t *testing.T) {
	tests := []struct {
		transition alert.Transition
		outcome    drift.Outcome
		want       string
	}{
		{alert.TransitionResolved, drift.InSync, "The provider now stores every live thumbprint of " + host},
		{alert.TransitionNew, drift.Drift, "whose thumbprint the provider does not store"},
		{alert.TransitionNew, drift.UpdateFailed, "whose thumbprint the provider does not store,"},
		{alert.TransitionApplied, drift.Updated, "whose thumbprint the provider did not store"},
		{alert.TransitionNew, drift.ProbeFailed, "for the provider:"},
	}
	for _, tt := range tests {
		t.Run(string(tt.transition)+" "+string(tt.outcome), func(t *testing.T) {
			m := twoAccounts()
			m.Transition, m.Outcome, m.Results = tt.transition, tt.outcome, m.Results[:1]
			email := strings.Join(strings.Fields(alert.EmailText(alert.NewDocument(m))), " ")
			if !strings.Contains(email, tt.want) || strings.Contains(email, "1 provider now store") || strings.Contains(email, "1 provider do ") {
				t.Errorf("email lacks %q:\n%s", tt.want, email)
			}
		})
	}
	m := twoAccounts()
	m.Transition, m.Outcome = alert.TransitionResolved, drift.InSync
	if email := strings.Join(strings.Fields(alert.EmailText(alert.NewDocument(m))), " "); !strings.Contains(email, "The 2 providers now store every live thumbprint") {
		t.Errorf("two providers' email:\n%s", email)
	}
}

func TestCutDetail(t *testing.T) {
	tests := []struct {
		name   string
		detail string
		cut    bool
	}{
		{"empty", "", false},
		{"1 KiB kept", strings.Repeat("d", alert.MaxDetailBytes), false},
		{"1 KiB + 1 cut", strings.Repeat("d", alert.MaxDetailBytes+1), true},
		{"multi-byte runes kept whole", strings.Repeat("€", alert.MaxDetailBytes), true},
		{"1 KiB of 2-byte runes kept", strings.Repeat("é", alert.MaxDetailBytes/2), false},
		{"2-byte runes + 1 cut", "x" + strings.Repeat("é", alert.MaxDetailBytes/2), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := alert.CutDetail(tt.detail)
			if len(got) > alert.MaxDetailBytes || !utf8.ValidString(got) {
				t.Fatalf("%d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
			}
			if !tt.cut && got != tt.detail {
				t.Fatalf("changed a detail within the bound")
			}
			if tt.cut && (!strings.HasSuffix(got, alert.DetailCutMarker) || !strings.HasPrefix(tt.detail, strings.TrimSuffix(got, alert.DetailCutMarker))) {
				t.Fatalf("cut detail %q is not a prefix plus the marker", got[max(0, len(got)-40):])
			}
			if tt.cut && len(got) < alert.MaxDetailBytes-len(alert.DetailCutMarker)-utf8.UTFMax {
				t.Fatalf("cut to %d bytes, more than needed", len(got))
			}
			// The document and the email carry the cut detail.
			m := twoAccounts()
			m.Results[0].Detail = tt.detail
			s, err := alert.BuildSNS(m, config.FormatJSON)
			if err != nil {
				t.Fatal(err)
			}
			if s.Document.Results[0].Detail != got {
				t.Errorf("document detail is not the cut detail")
			}
		})
	}
}

// reverted is a message about providers owned by code: one whose list
// Terraform set back (reverted), with the change to make in the code.
func reverted(tool iac.Tool, outcome drift.Outcome) alert.Message {
	const arn = "arn:aws:iam::111111111111:oidc-provider/" + host + "/tenant/a"
	list := []string{tpLive, tp01}
	w := &iac.Writer{Tool: tool, Principal: "arn:aws:sts::111111111111:assumed-role/deploy/ci", At: time.Date(2026, 11, 24, 0, 30, 0, 0, time.UTC),
		UserAgent: "APN/1.0 HashiCorp/1.0 Terraform/1.10.5 terraform-provider-aws/5.84.0"}
	r := drift.Result{
		AccountID: "111111111111", ProviderARN: arn, URL: host + "/tenant/a", Outcome: outcome, Severity: drift.SeverityCritical,
		Transition: string(alert.TransitionNew), LiveThumbprints: []string{tpLive}, StoredThumbprints: []string{tp01}, NewThumbprints: list,
		ThumbprintEnforced: true, BreaksAssumeRole: true, FirstSeen: "2026-11-24T01:02:03Z",
		Detail:    iac.Revert{Wrote: list, WroteAt: time.Date(2026, 11, 24, 0, 2, 3, 0, time.UTC), SetTo: []string{tp01}, By: w}.Detail(),
		ManagedBy: string(tool), LastWriter: w, CodeFix: iac.CodeFix(tool, arn, list), Host: host, Mode: config.ModeRemediate,
	}
	return alert.Message{Transition: alert.TransitionNew, Outcome: outcome, Severity: drift.SeverityCritical, Host: host,
		LiveThumbprints: []string{tpLive}, Mode: config.ModeRemediate, CheckedAt: time.Date(2026, 11, 24, 1, 2, 3, 0, time.UTC), Results: []drift.Result{r}}
}

// TestOwnedByCodeGoldens: a reverted provider's message carries
// managed_by, last_writer (tool, principal, time: no user agent) and
// code_fix; the email shows the change to make in the code under the
// provider; the Chatbot notification's next steps name it.
func TestOwnedByCodeGoldens(t *testing.T) {
	m, err := alert.BuildSNS(reverted(iac.Terraform, drift.Reverted), config.FormatChatbot)
	if err != nil {
		t.Fatal(err)
	}
	textGolden(t, "message-reverted-email.golden.txt", m.Email)
	var n alert.Chatbot
	if err := json.Unmarshal([]byte(m.Default), &n); err != nil {
		t.Fatal(err)
	}
	var doc alert.Document
	if err := json.Unmarshal([]byte(n.Metadata.AdditionalContext["document"]), &doc); err != nil {
		t.Fatal(err)
	}
	golden(t, "message-reverted-document.golden.json", []byte(n.Metadata.AdditionalContext["document"]))
	r := doc.Results[0]
	if r.ManagedBy != "terraform" || r.LastWriter == nil || r.LastWriter.Tool != iac.Terraform || r.LastWriter.UserAgent != "" ||
		r.CodeFix != `thumbprint_list = ["`+tpLive+`", "`+tp01+`"]` || r.Fix == "" {
		t.Errorf("document result %+v", r)
	}
	steps := strings.Join(n.Content.NextSteps, "\n")
	if !strings.Contains(steps, "aws_iam_openid_connect_provider") || !strings.Contains(steps, r.CodeFix) {
		t.Errorf("next steps do not name the code change:\n%s", steps)
	}
	if !strings.Contains(m.Email, "change the code (terraform, aws_iam_openid_connect_provider)") || !strings.Contains(m.Email, "     "+r.CodeFix) {
		t.Errorf("email text lacks the code change:\n%s", m.Email)
	}

	// CloudFormation's change is YAML over several lines: each indented under the provider.
	cfn, err := alert.BuildSNS(reverted(iac.CloudFormation, drift.Drift), config.FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	if want := "     ThumbprintList:\n       - \"" + tpLive + "\"\n       - \"" + tp01 + "\"\n"; !strings.Contains(cfn.Email, want) {
		t.Errorf("email text lacks\n%s\nin\n%s", want, cfn.Email)
	}
}
