package main

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go/middleware"

	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
)

func TestParseOrg(t *testing.T) {
	l, err := parseOrgLoad("20x100x20")
	if err != nil || l != (load{Accounts: 20, Providers: 100, Hosts: 20}) || l.Name() != "20x100p/20h" {
		t.Errorf("parseOrgLoad = %+v %q, %v", l, l.Name(), err)
	}
	for _, none := range []string{"", "none", " none "} {
		if l, err := parseOrgLoad(none); err != nil || l.Accounts != 0 {
			t.Errorf("parseOrgLoad(%q) = %+v, %v; want no load", none, l, err)
		}
	}
	for _, bad := range []string{"20x100", "1x100x20", "20x100x200", "20x0x0", "axbxc", "101x10x10", "20x100x20x1"} {
		if _, err := parseOrgLoad(bad); err == nil {
			t.Errorf("parseOrgLoad(%q): no error", bad)
		}
	}
	s, err := parseOrgSettings("4/8, 20/8")
	if err != nil || !slices.Equal(s, []orgSetting{{4, 8}, {20, 8}}) || s[0].String() != "4/8" {
		t.Errorf("parseOrgSettings = %v, %v", s, err)
	}
	for _, bad := range []string{"", "4", "0/8", "33/8", "4/65", "4/8,", "a/b"} {
		if _, err := parseOrgSettings(bad); err == nil {
			t.Errorf("parseOrgSettings(%q): no error", bad)
		}
	}
}

func TestParseFlagsOrg(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil || o.org.Name() != "20x100p/20h" || !slices.Equal(o.orgSettings, []orgSetting{{4, 8}, {20, 8}}) {
		t.Errorf("defaults: %+v %v, %v", o.org, o.orgSettings, err)
	}
	if o, err := parseFlags([]string{"-quick"}, io.Discard); err != nil || !slices.Equal(o.orgSettings, []orgSetting{{4, 8}}) {
		t.Errorf("-quick: %v, %v", o.orgSettings, err)
	}
	if o, err := parseFlags([]string{"-org", "none"}, io.Discard); err != nil || o.org.Accounts != 0 {
		t.Errorf("-org none: %+v, %v", o.org, err)
	}
}

func TestOrgAccounts(t *testing.T) {
	ids, roles := orgAccounts(3)
	if !slices.Equal(ids, []string{"210000000001", "210000000002", "210000000003"}) {
		t.Errorf("ids %v", ids)
	}
	for i, r := range roles {
		if accounts.AccountOf(r) != ids[i] || !strings.HasSuffix(r, ":role/"+orgRoleName) {
			t.Errorf("role %s for account %s", r, ids[i])
		}
	}
}

func TestOrgIAMLimit(t *testing.T) {
	lone := loneLatency{AssumeRole: 3 * time.Millisecond, List: 5 * time.Millisecond, Get: 2 * time.Millisecond}
	tests := []struct {
		accounts, providers int
		s                   orgSetting
		want                time.Duration
	}{
		// 5 waves of 4 accounts, each 3 + 5 + 13 Gets x 2 ms
		{20, 100, orgSetting{4, 8}, 5 * 34 * time.Millisecond},
		// all accounts at once: one wave
		{20, 100, orgSetting{20, 8}, 34 * time.Millisecond},
		// more slots than accounts or providers
		{2, 3, orgSetting{32, 64}, (3 + 5 + 2) * time.Millisecond},
		// one account at a time, one provider at a time
		{3, 10, orgSetting{1, 1}, 3 * (3 + 5 + 20) * time.Millisecond},
	}
	for _, tt := range tests {
		if got := orgIAMLimit(tt.accounts, tt.providers, tt.s, lone); got != tt.want {
			t.Errorf("orgIAMLimit(%d, %d, %s) = %v, want %v", tt.accounts, tt.providers, tt.s, got, tt.want)
		}
	}
}

// cannedIAM answers every request with a GetOpenIDConnectProvider response.
type cannedIAM struct{}

func (cannedIAM) Do(req *http.Request) (*http.Response, error) {
	body := `<GetOpenIDConnectProviderResponse><GetOpenIDConnectProviderResult><Url>h/a</Url></GetOpenIDConnectProviderResult></GetOpenIDConnectProviderResponse>`
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/xml"}}, Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
}

func TestIAMMeter(t *testing.T) {
	m := newIAMMeter()
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("a", "b", ""),
		HTTPClient:  cannedIAM{},
		APIOptions:  []func(*middleware.Stack) error{m.apiOption},
	}
	client := iam.NewFromConfig(cfg)
	start := time.Now()
	for _, acct := range []string{"210000000001", "210000000002", "210000000002"} {
		arn := "arn:aws:iam::" + acct + ":oidc-provider/h/a"
		if _, err := client.GetOpenIDConnectProvider(context.Background(), &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)}); err != nil {
			t.Fatal(err)
		}
	}
	gets := time.Since(start) // every Get started and ended within it
	m.record("AssumeRole", "210000000001", start.Add(-time.Second), start.Add(-time.Second+10*time.Millisecond), nil)
	m.record("List", "", start, start.Add(20*time.Millisecond), nil)

	per, calls, getMean, errs := m.summary(2)
	if calls != 5 || per.Calls != 2 || errs != 0 || getMean <= 0 {
		t.Errorf("summary: per %+v, calls %d, Get mean %v, errors %d", per, calls, getMean, errs)
	}
	// Account 1 spans from its AssumeRole, a second before its Get, to its
	// Get's end; account 2 only its Gets: the mean is half a second, plus at
	// most the time the Gets took (bounds from the clock readings, not from
	// how fast the machine is).
	if lo, hi := 500*time.Millisecond, 500*time.Millisecond+gets; per.Wall < lo || per.Wall > hi {
		t.Errorf("per-account wall %v, want %v to %v", per.Wall, lo, hi)
	}
	m.reset()
	if _, calls, _, _ := m.summary(2); calls != 0 {
		t.Errorf("after reset: %d calls", calls)
	}
}

func TestCheckOrgReport(t *testing.T) {
	h := &host{thumbprint: strings.Repeat("ab", 20)}
	ps := []*provider{{URL: "h/a", Host: h}, {URL: "h/b", Host: h, Drifted: true}}
	ow := &orgWorld{world: &world{providers: ps, byURL: map[string]*provider{"h/a": ps[0], "h/b": ps[1]}}, load: load{Accounts: 2, Providers: 2, Hosts: 1}}
	ow.ids, ow.roles = orgAccounts(2)
	good := func() *drift.Report {
		rep := &drift.Report{}
		for _, id := range ow.ids {
			rep.Accounts = append(rep.Accounts, drift.AccountSummary{AccountID: id, Checked: 2})
			for _, p := range ps {
				out := drift.InSync
				if p.Drifted {
					out = drift.Drift
				}
				rep.Results = append(rep.Results, drift.Result{AccountID: id, ProviderARN: "arn:aws:iam::" + id + ":oidc-provider/" + p.URL,
					URL: p.URL, Outcome: out, LiveThumbprints: []string{h.thumbprint}, PubliclyTrusted: true})
			}
		}
		rep.Checked = len(rep.Results)
		return rep
	}
	if p := ow.checkOrgReport(good()); p != "" {
		t.Fatalf("good report: %s", p)
	}
	bad := map[string]func(*drift.Report){
		"account failed":      func(r *drift.Report) { r.Accounts[1].Error, r.Accounts[1].Checked = "AccessDenied", 0 },
		"result in the wrong": func(r *drift.Report) { r.Results[0].AccountID = ow.ids[1] },
		"checked twice":       func(r *drift.Report) { r.Results[1] = r.Results[0] },
		"wrong outcome":       func(r *drift.Report) { r.Results[3].Outcome = drift.InSync },
		"not trusted":         func(r *drift.Report) { r.Results[2].PubliclyTrusted = false },
		"one missing":         func(r *drift.Report) { r.Results = r.Results[1:]; r.Checked-- },
	}
	for name, spoil := range bad {
		rep := good()
		spoil(rep)
		if p := ow.checkOrgReport(rep); p == "" {
			t.Errorf("%s: no difference found", name)
		}
	}
}
