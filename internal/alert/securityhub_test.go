package alert_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	shtypes "github.com/aws/aws-sdk-go-v2/service/securityhub/types"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

const shAccount = "123456789012"

func shMessage(tr alert.Transition, o drift.Outcome, sev drift.Severity, live string, arns ...string) alert.Message {
	m := alert.Message{Transition: tr, Outcome: o, Severity: sev, Host: "idp.example", LiveThumbprints: []string{live}, Mode: config.ModeAlert,
		CheckedAt: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), Findings: map[string]time.Time{}}
	for _, arn := range arns {
		m.Findings[arn] = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
		m.Results = append(m.Results, drift.Result{
			ProviderARN: arn, URL: strings.TrimPrefix(arn[strings.Index(arn, "oidc-provider/"):], "oidc-provider/"),
			Outcome: o, Severity: sev, Transition: string(tr), LiveThumbprints: []string{live},
			StoredThumbprints: []string{strings.Repeat("01", 20)}, NewThumbprints: []string{live, strings.Repeat("01", 20)},
			BreaksAssumeRole: sev == drift.SeverityCritical, ThumbprintEnforced: true,
			FirstSeen: "2026-11-26T10:00:00Z", Detail: "not applied: the served chain is not publicly trusted",
		})
	}
	return m
}

// ownAccount is the function's own account, where account-failed findings go.
func ownAccount(context.Context) (string, error) { return "999988887777", nil }

func providerARN(account string, i int) string {
	return fmt.Sprintf("arn:aws:iam::%s:oidc-provider/idp.example/t%03d", account, i)
}

// findings returns every finding Security Hub holds, by id.
func findings(t *testing.T, api *securityhub.Client) map[string]shtypes.AwsSecurityFinding {
	t.Helper()
	out := map[string]shtypes.AwsSecurityFinding{}
	var token *string
	for {
		page, err := api.GetFindings(context.Background(), &securityhub.GetFindingsInput{MaxResults: aws.Int32(100), NextToken: token})
		if err != nil {
			t.Fatalf("get findings: %v", err)
		}
		for _, f := range page.Findings {
			if _, dup := out[aws.ToString(f.Id)]; dup {
				t.Fatalf("finding %s listed twice", aws.ToString(f.Id))
			}
			out[aws.ToString(f.Id)] = f
		}
		if token = page.NextToken; token == nil || *token == "" {
			return out
		}
	}
}

// countingHub counts BatchImportFindings calls and their sizes.
type countingHub struct {
	alert.SecurityHubAPI
	mu    sync.Mutex
	sizes []int
	fail  bool
}

func (c *countingHub) BatchImportFindings(ctx context.Context, in *securityhub.BatchImportFindingsInput, opts ...func(*securityhub.Options)) (*securityhub.BatchImportFindingsOutput, error) {
	c.mu.Lock()
	c.sizes = append(c.sizes, len(in.Findings))
	fail := c.fail
	c.mu.Unlock()
	if fail {
		return &securityhub.BatchImportFindingsOutput{FailedCount: aws.Int32(1), SuccessCount: aws.Int32(int32(len(in.Findings) - 1)),
			FailedFindings: []shtypes.ImportFindingsError{{Id: in.Findings[0].Id, ErrorCode: aws.String("InvalidInput"), ErrorMessage: aws.String("refused")}}}, nil
	}
	return c.SecurityHubAPI.BatchImportFindings(ctx, in, opts...)
}

func TestSecurityHubFindingLifecycle(t *testing.T) {
	m := peertest.Moto(t)
	api := securityhub.NewFromConfig(m.Config())
	ctx := context.Background()
	if _, err := api.EnableSecurityHub(ctx, &securityhub.EnableSecurityHubInput{}); err != nil {
		t.Fatalf("enable security hub: %v", err)
	}
	hub := &countingHub{SecurityHubAPI: api}
	var asked []string
	pub := alert.NewSecurityHub("us-east-1", ownAccount, func(_ context.Context, acct string) (alert.SecurityHubAPI, error) {
		asked = append(asked, acct)
		return hub, nil
	})
	a, b := strings.Repeat("aa", 20), strings.Repeat("bb", 20)
	p1 := providerARN(shAccount, 1)

	steps := []struct {
		name       string
		msg        alert.Message
		state      shtypes.RecordState
		compliance shtypes.ComplianceStatus
		severity   shtypes.SeverityLabel
		live       string
	}{
		{"new drift creates", shMessage(alert.TransitionNew, drift.Drift, drift.SeverityCritical, a, p1), shtypes.RecordStateActive, shtypes.ComplianceStatusFailed, shtypes.SeverityLabelCritical, a},
		{"changed updates in place", shMessage(alert.TransitionChanged, drift.Drift, drift.SeverityWarning, b, p1), shtypes.RecordStateActive, shtypes.ComplianceStatusFailed, shtypes.SeverityLabelMedium, b},
		{"reminder keeps one finding", shMessage(alert.TransitionReminder, drift.Drift, drift.SeverityWarning, b, p1), shtypes.RecordStateActive, shtypes.ComplianceStatusFailed, shtypes.SeverityLabelMedium, b},
		{"resolved closes", shMessage(alert.TransitionResolved, drift.InSync, drift.SeverityInfo, b, p1), shtypes.RecordStateArchived, shtypes.ComplianceStatusPassed, shtypes.SeverityLabelInformational, b},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := pub.Notify(ctx, st.msg); err != nil {
				t.Fatalf("publish: %v", err)
			}
			all := findings(t, api)
			if len(all) != 1 {
				t.Fatalf("%d findings, want exactly 1 (never duplicated): %v", len(all), all)
			}
			f, ok := all["thumbprint-drift/"+p1]
			if !ok {
				t.Fatalf("no finding with the provider's stable id; have %v", all)
			}
			if f.RecordState != st.state || f.Compliance == nil || f.Compliance.Status != st.compliance || f.Severity == nil || f.Severity.Label != st.severity {
				t.Fatalf("finding state %s compliance %+v severity %+v, want %s %s %s", f.RecordState, f.Compliance, f.Severity, st.state, st.compliance, st.severity)
			}
			if len(f.Resources) != 1 || aws.ToString(f.Resources[0].Id) != p1 {
				t.Fatalf("resources = %+v, want the provider", f.Resources)
			}
			if got := f.ProductFields["thumbprint-drift/live_thumbprints"]; got != st.live {
				t.Fatalf("live thumbprints field = %q, want %q", got, st.live)
			}
			if aws.ToString(f.CreatedAt) != "2026-11-26T10:00:00Z" {
				t.Fatalf("CreatedAt = %s, want first_seen (stable across updates)", aws.ToString(f.CreatedAt))
			}
			if st.state == shtypes.RecordStateActive && !strings.Contains(aws.ToString(f.Remediation.Recommendation.Text), "aws iam update-open-id-connect-provider-thumbprint") {
				t.Fatalf("remediation %q lacks the fix command", aws.ToString(f.Remediation.Recommendation.Text))
			}
		})
	}
	if len(asked) != len(steps) || asked[0] != shAccount {
		t.Fatalf("client asked for accounts %v, want %s once per publish", asked, shAccount)
	}
}

func TestSecurityHubBatchesAndAccounts(t *testing.T) {
	m := peertest.Moto(t)
	api := securityhub.NewFromConfig(m.Config())
	ctx := context.Background()
	if _, err := api.EnableSecurityHub(ctx, &securityhub.EnableSecurityHubInput{}); err != nil {
		t.Fatal(err)
	}
	a := strings.Repeat("aa", 20)
	for _, tc := range []struct {
		n     int
		sizes []int
	}{{100, []int{100}}, {101, []int{100, 1}}, {250, []int{100, 100, 50}}} {
		t.Run(fmt.Sprintf("%d findings", tc.n), func(t *testing.T) {
			hub := &countingHub{SecurityHubAPI: api}
			pub := alert.NewSecurityHub("us-east-1", ownAccount, func(context.Context, string) (alert.SecurityHubAPI, error) { return hub, nil })
			var arns []string
			for i := range tc.n {
				arns = append(arns, providerARN(shAccount, i))
			}
			if err := pub.Notify(ctx, shMessage(alert.TransitionNew, drift.Drift, drift.SeverityWarning, a, arns...)); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(hub.sizes) != fmt.Sprint(tc.sizes) {
				t.Fatalf("import sizes %v, want %v (at most %d per call)", hub.sizes, tc.sizes, alert.MaxFindingsPerImport)
			}
			if got := len(findings(t, api)); got < tc.n {
				t.Fatalf("%d findings held, want at least %d", got, tc.n)
			}
		})
	}

	t.Run("each account through its own client", func(t *testing.T) {
		clients := map[string]*countingHub{"111111111111": {SecurityHubAPI: api}, "222222222222": {SecurityHubAPI: api}}
		pub := alert.NewSecurityHub("us-east-1", ownAccount, func(_ context.Context, acct string) (alert.SecurityHubAPI, error) {
			c, ok := clients[acct]
			if !ok {
				return nil, fmt.Errorf("no role for account %s", acct)
			}
			return c, nil
		})
		msg := shMessage(alert.TransitionNew, drift.Drift, drift.SeverityWarning, a, providerARN("111111111111", 1), providerARN("222222222222", 1), providerARN("222222222222", 2))
		if err := pub.Notify(ctx, msg); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(clients["111111111111"].sizes) != "[1]" || fmt.Sprint(clients["222222222222"].sizes) != "[2]" {
			t.Fatalf("imports per account: %v %v, want [1] [2]", clients["111111111111"].sizes, clients["222222222222"].sizes)
		}
		f := findings(t, api)["thumbprint-drift/"+providerARN("222222222222", 2)]
		if aws.ToString(f.AwsAccountId) != "222222222222" || !strings.Contains(aws.ToString(f.ProductArn), ":222222222222:product/222222222222/default") {
			t.Fatalf("finding account %s product %s, want the provider's own account", aws.ToString(f.AwsAccountId), aws.ToString(f.ProductArn))
		}
		msg = shMessage(alert.TransitionNew, drift.Drift, drift.SeverityWarning, a, providerARN("333333333333", 1))
		if err := pub.Notify(ctx, msg); err == nil || !strings.Contains(err.Error(), "333333333333") {
			t.Fatalf("publish to an account without a client: err = %v, want one naming the account", err)
		}
	})

	t.Run("a refused finding is an undelivered alert", func(t *testing.T) {
		hub := &countingHub{SecurityHubAPI: api, fail: true}
		pub := alert.NewSecurityHub("us-east-1", ownAccount, func(context.Context, string) (alert.SecurityHubAPI, error) { return hub, nil })
		err := pub.Notify(ctx, shMessage(alert.TransitionNew, drift.Drift, drift.SeverityWarning, a, providerARN(shAccount, 7)))
		if refused, ok := errors.AsType[*alert.Refused](err); !ok || len(refused.Keys) != 1 || refused.Keys[providerARN(shAccount, 7)].Code != "InvalidInput" {
			t.Fatalf("err = %v, want the refused count", err)
		}
	})
}

func TestFindingAccountFailedAndBounds(t *testing.T) {
	m := alert.Message{Transition: alert.TransitionNew, Outcome: drift.AccountFailed, Severity: drift.SeverityCritical, CheckedAt: time.Now(),
		Results: []drift.Result{{AccountID: "444444444444", Outcome: drift.AccountFailed, Severity: drift.SeverityCritical, Detail: strings.Repeat("é", 2000)}}}
	// Imported in the function's own account (Security Hub requires the
	// importing account as AwsAccountId), naming the failed member.
	f := alert.Finding(m, m.Results[0], "999988887777", "eu-west-1", time.Time{})
	if aws.ToString(f.Id) != "thumbprint-drift/account/444444444444" || aws.ToString(f.Resources[0].Type) != "AwsAccount" ||
		aws.ToString(f.Resources[0].Id) != "AWS::::Account:444444444444" || aws.ToString(f.AwsAccountId) != "999988887777" {
		t.Fatalf("id %s account %s resource %+v", aws.ToString(f.Id), aws.ToString(f.AwsAccountId), f.Resources[0])
	}
	// A failed organisation listing: the function's own account on both sides.
	org := alert.Finding(m, drift.Result{Outcome: drift.AccountFailed, Severity: drift.SeverityCritical}, "999988887777", "eu-west-1", time.Time{})
	if aws.ToString(org.Id) != "thumbprint-drift/organization" || aws.ToString(org.AwsAccountId) != "999988887777" || aws.ToString(org.Resources[0].Id) != "AWS::::Account:999988887777" {
		t.Fatalf("listing failure: id %s account %s resource %+v", aws.ToString(org.Id), aws.ToString(org.AwsAccountId), org.Resources[0])
	}
	if d := aws.ToString(f.Description); len(d) > 1024 || !strings.HasSuffix(d, "…") || !strings.HasPrefix(d, "Outcome account-failed") {
		t.Fatalf("description of %d bytes, want at most 1024 and marked cut: %q", len(d), d[:40])
	}
	if f.Severity.Label != shtypes.SeverityLabelCritical || aws.ToString(f.ProductArn) != "arn:aws:securityhub:eu-west-1:999988887777:product/999988887777/default" {
		t.Fatalf("severity %s product %s", f.Severity.Label, aws.ToString(f.ProductArn))
	}
}
