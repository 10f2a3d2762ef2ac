package alert_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
)

var update = flag.Bool("update", false, "rewrite golden files")

const arn = "arn:aws:iam::123456789012:oidc-provider/idp.corp.example:8443/tenant/a"

func driftAlert() drift.Alert {
	return drift.Alert{
		CheckedAt: time.Date(2026, 11, 24, 1, 2, 3, 0, time.FixedZone("CET", 3600)),
		Result: drift.Result{
			ProviderARN:       arn,
			URL:               "idp.corp.example:8443/tenant/a",
			Outcome:           drift.Drift,
			Severity:          drift.SeverityCritical,
			LiveThumbprints:   []string{strings.Repeat("ab", 20)},
			StoredThumbprints: []string{strings.Repeat("01", 20), strings.Repeat("02", 20)},
			NewThumbprints:    []string{strings.Repeat("ab", 20), strings.Repeat("01", 20), strings.Repeat("02", 20)},
			PubliclyTrusted:   false,
			BreaksAssumeRole:  true,
			Detail:            "not applied: the served chain is not publicly trusted",
			Mode:              config.ModeRemediate,
		},
	}
}

// golden compares got (JSON) with testdata/name as JSON values.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		var v any
		if err := json.Unmarshal(got, &v); err != nil {
			t.Fatal(err)
		}
		pretty, _ := json.MarshalIndent(v, "", "  ")
		if err := os.WriteFile(path, append(pretty, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("golden %s is not JSON: %v", path, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s differs:\ngot  %s\nwant %s", path, got, want)
	}
}

func TestBuildDriftMessageGolden(t *testing.T) {
	m, err := alert.Build(driftAlert())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "drift-message.golden.json", []byte(m.Body))
	if m.Subject != "thumbprint-drift: drift idp.corp.example:8443" {
		t.Errorf("subject %q", m.Subject)
	}
	want := map[string]string{"outcome": "drift", "severity": "critical", "provider_arn": arn, "account_id": "123456789012"}
	if !reflect.DeepEqual(m.Attributes, want) {
		t.Errorf("attributes %v, want %v", m.Attributes, want)
	}
}

func TestBuildFields(t *testing.T) {
	tests := []struct {
		name    string
		outcome drift.Outcome
		url     string
		wantFix bool
		subject string
	}{
		{"updated has no fix", drift.Updated, "token.actions.githubusercontent.com", false, "thumbprint-drift: updated token.actions.githubusercontent.com"},
		{"probe-failed has no fix", drift.ProbeFailed, "oidc.eks.us-east-1.amazonaws.com/id/ABC", false, "thumbprint-drift: probe-failed oidc.eks.us-east-1.amazonaws.com"},
		{"drift has a fix", drift.Drift, "gitlab.example.com", true, "thumbprint-drift: drift gitlab.example.com"},
		{"long host cut to 100", drift.UpdateFailed, strings.Repeat("h", 150) + ".example.com/x", false, ("thumbprint-drift: update-failed " + strings.Repeat("h", 150))[:100]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := driftAlert()
			a.Result.Outcome, a.Result.URL = tt.outcome, tt.url
			m, err := alert.Build(a)
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]any
			if err := json.Unmarshal([]byte(m.Body), &body); err != nil {
				t.Fatal(err)
			}
			if _, ok := body["fix"]; ok != tt.wantFix {
				t.Errorf("fix present = %v, want %v", ok, tt.wantFix)
			}
			if m.Subject != tt.subject || len(m.Subject) > alert.MaxSubject {
				t.Errorf("subject %q (%d), want %q", m.Subject, len(m.Subject), tt.subject)
			}
			if body["checked_at"] != "2026-11-24T00:02:03Z" || body["account_id"] != "123456789012" || body["mode"] != "remediate" {
				t.Errorf("context fields %v", body)
			}
			for _, k := range []string{"provider_arn", "url", "outcome", "severity", "live_thumbprints", "stored_thumbprints", "new_thumbprints", "publicly_trusted", "breaks_assume_role", "detail"} {
				if _, ok := body[k]; !ok {
					t.Errorf("message lacks %q", k)
				}
			}
		})
	}
}

func TestBuildAccountFailed(t *testing.T) {
	m, err := alert.Build(drift.Alert{CheckedAt: time.Now(), Result: drift.Result{
		AccountID: "210987654321", Outcome: drift.AccountFailed, Severity: drift.SeverityCritical, Mode: config.ModeRemediate,
		Detail: "assume role arn:aws:iam::210987654321:role/x: AccessDenied"}})
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "thumbprint-drift: account-failed account 210987654321" {
		t.Errorf("subject %q", m.Subject)
	}
	want := map[string]string{"outcome": "account-failed", "severity": "critical", "account_id": "210987654321"}
	if !reflect.DeepEqual(m.Attributes, want) {
		t.Errorf("attributes %v, want %v (no empty provider_arn: SNS refuses empty values)", m.Attributes, want)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(m.Body), &body); err != nil || body["account_id"] != "210987654321" {
		t.Errorf("body %s: %v", m.Body, err)
	}
}

func TestFixCommandQuotesOddARNs(t *testing.T) {
	got := alert.FixCommand("arn:aws:iam::1:oidc-provider/h/a b", []string{"x"})
	if !strings.Contains(got, "'arn:aws:iam::1:oidc-provider/h/a b'") {
		t.Fatalf("FixCommand = %s", got)
	}
}

type fakeSNS struct {
	in  *sns.PublishInput
	err error
}

func (f *fakeSNS) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	f.in = in
	return &sns.PublishOutput{}, f.err
}

func TestNotifySendsStringAttributesAndWrapsErrors(t *testing.T) {
	f := &fakeSNS{}
	p := alert.NewPublisher(f, "arn:aws:sns:us-east-1:123456789012:t")
	if err := p.Notify(context.Background(), driftAlert()); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"outcome", "severity", "provider_arn"} {
		v, ok := f.in.MessageAttributes[k]
		if !ok || *v.DataType != "String" {
			t.Errorf("attribute %s = %+v", k, v)
		}
	}
	f.err = errors.New("boom")
	err := p.Notify(context.Background(), driftAlert())
	if !errors.Is(err, f.err) || !strings.Contains(err.Error(), "arn:aws:sns:us-east-1:123456789012:t") {
		t.Fatalf("error %v, want it wrapped with the topic", err)
	}
}
