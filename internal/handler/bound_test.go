package handler_test

import (
	"cmp"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/handler"
)

// orgReport is an organisation run's report: accounts accounts of
// perAccount providers each, every result built by result(account, i).
func orgReport(accounts, perAccount int, result func(acct string, i int) drift.Result) *drift.Report {
	rep := &drift.Report{Mode: config.ModeAlert, Counts: map[drift.Outcome]int{}}
	for _, o := range append(drift.Outcomes, drift.AccountFailed) {
		rep.Counts[o] = 0
	}
	for a := range accounts {
		acct := fmt.Sprintf("%012d", 100000000000+a)
		s := drift.AccountSummary{AccountID: acct, RoleARN: "arn:aws:iam::" + acct + ":role/thumbprint-drift-member", Counts: map[drift.Outcome]int{}}
		for i := range perAccount {
			r := result(acct, i)
			r.AccountID = acct
			rep.Results = append(rep.Results, r)
			rep.Counts[r.Outcome]++
			s.Counts[r.Outcome]++
			s.Checked++
		}
		rep.Accounts = append(rep.Accounts, s)
	}
	rep.Checked = len(rep.Results)
	return rep
}

const (
	liveTP  = "0123456789abcdef0123456789abcdef01234567"
	stale   = "ffffffffffffffffffffffffffffffffffffffff"
	ghHost  = "token.actions.githubusercontent.com"
	eksHost = "oidc.eks.us-east-1.amazonaws.com"
)

func providerResult(acct, host, path string, o drift.Outcome, sev drift.Severity, detail string) drift.Result {
	return drift.Result{ProviderARN: "arn:aws:iam::" + acct + ":oidc-provider/" + host + path, URL: host + path, Host: host,
		Outcome: o, Severity: sev, LiveThumbprints: []string{liveTP}, StoredThumbprints: []string{stale},
		NewThumbprints: []string{liveTP, stale}, ThumbprintEnforced: true, BreaksAssumeRole: sev == drift.SeverityCritical,
		Transition: "new", FirstSeen: "2026-12-07T03:00:00Z", Detail: detail}
}

// checkBounded: the response fits, every result is in results or omitted,
// counts and checked are untouched, omitted_groups holds exactly the
// results other than in-sync that left, and every account is in a section
// or accounts_omitted.
func checkBounded(t *testing.T, before, after *drift.Report, max int) {
	t.Helper()
	if n := handler.ResponseSize(after); n > max {
		t.Fatalf("response of %d bytes, over %d", n, max)
	}
	if len(after.Results)+after.ResultsOmitted != len(before.Results) {
		t.Errorf("%d results + %d omitted, want %d", len(after.Results), after.ResultsOmitted, len(before.Results))
	}
	if !reflect.DeepEqual(after.Counts, before.Counts) || after.Checked != before.Checked {
		t.Errorf("counts %v checked %d changed from %v %d", after.Counts, after.Checked, before.Counts, before.Checked)
	}
	kept := map[drift.Outcome]int{}
	for _, r := range after.Results {
		kept[r.Outcome]++
		if len(r.Detail) > alert.MaxDetailBytes {
			t.Errorf("detail of %d bytes", len(r.Detail))
		}
	}
	grouped := map[drift.Outcome]int{}
	for _, g := range after.OmittedGroups {
		if g.Outcome == drift.InSync || g.Count < 1 || g.Host == "" {
			t.Errorf("omitted group %+v", g)
		}
		grouped[g.Outcome] += g.Count
	}
	omittedInSync := after.ResultsOmitted
	for o, n := range before.Counts {
		if o == drift.InSync {
			continue
		}
		if kept[o]+grouped[o] != n {
			t.Errorf("%s: %d kept + %d in omitted_groups, want %d", o, kept[o], grouped[o], n)
		}
		omittedInSync -= grouped[o]
	}
	if kept[drift.InSync]+omittedInSync != before.Counts[drift.InSync] {
		t.Errorf("in-sync: %d kept + %d omitted, want %d", kept[drift.InSync], omittedInSync, before.Counts[drift.InSync])
	}
	if len(after.Accounts)+after.AccountsOmitted != len(before.Accounts) {
		t.Errorf("%d account sections + %d omitted, want %d", len(after.Accounts), after.AccountsOmitted, len(before.Accounts))
	}
}

// TestBoundAtOrganisationScale: 10,000 accounts' worth of results, built
// here, as the two cases (one IdP's rotation across 6,000 accounts,
// one host down across 10,000) and a quiet organisation: the response
// always fits Lambda's 6 MB, problems past the bound leave summarised in
// omitted_groups, the account sections are bounded the same way, and the
// results kept are the most severe, in their order.
func TestBoundAtOrganisationScale(t *testing.T) {
	detail := "discovery: GET https://" + ghHost + "/.well-known/openid-configuration: 503 Service Unavailable; " + strings.Repeat("upstream reason ", 20)
	tests := []struct {
		name       string
		accounts   int
		result     func(acct string, i int) drift.Result
		wantGroups []drift.OmittedGroup // Count 0: any count
		wantKept   drift.Outcome        // the outcome of every result kept; "": none kept
		perAccount int                  // 0: 5
	}{
		{
			name: "one host down across 10,000 accounts", accounts: 10_000,
			result: func(acct string, i int) drift.Result {
				if i == 0 {
					return providerResult(acct, ghHost, "", drift.ProbeFailed, drift.SeverityWarning, detail)
				}
				return providerResult(acct, eksHost, fmt.Sprintf("/id/%s%d", acct, i), drift.InSync, drift.SeverityNone, "")
			},
			wantGroups: []drift.OmittedGroup{{Outcome: drift.ProbeFailed, Host: ghHost}},
			wantKept:   drift.ProbeFailed,
		},
		{
			name: "one IdP's rotation across 6,000 accounts", accounts: 6_000,
			result: func(acct string, i int) drift.Result {
				if i == 0 {
					return providerResult(acct, ghHost, "", drift.Drift, drift.SeverityCritical, "mode alert: not applied")
				}
				return providerResult(acct, "idp.corp.example", fmt.Sprintf("/tenant-%d", i), drift.Drift, drift.SeverityCritical, "mode alert: not applied")
			},
			wantGroups: []drift.OmittedGroup{{Outcome: drift.Drift, Host: "idp.corp.example"}, {Outcome: drift.Drift, Host: ghHost}},
			wantKept:   drift.Drift,
		},
		{
			name: "10,000 quiet accounts", accounts: 10_000,
			result: func(acct string, i int) drift.Result {
				return providerResult(acct, eksHost, fmt.Sprintf("/id/%s%d", acct, i), drift.InSync, drift.SeverityNone, "")
			},
			wantKept: drift.InSync,
		},
		{
			name: "60,000 quiet accounts: the account sections leave too", accounts: 60_000, perAccount: 1,
			result: func(acct string, i int) drift.Result {
				return providerResult(acct, eksHost, "/id/"+acct, drift.InSync, drift.SeverityNone, "")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			per := cmp.Or(tt.perAccount, 5)
			before := orgReport(tt.accounts, per, tt.result)
			rep := orgReport(tt.accounts, per, tt.result)
			t.Logf("%d results, %d bytes", len(rep.Results), handler.ResponseSize(rep))
			handler.Bound(rep, handler.MaxResponseBytes)
			checkBounded(t, before, rep, handler.MaxResponseBytes)
			t.Logf("bounded: %d bytes, %d results kept, %d omitted, groups %v, %d account sections kept, %d omitted",
				handler.ResponseSize(rep), len(rep.Results), rep.ResultsOmitted, rep.OmittedGroups, len(rep.Accounts), rep.AccountsOmitted)
			if len(rep.OmittedGroups) != len(tt.wantGroups) {
				t.Fatalf("omitted_groups %v, want %v", rep.OmittedGroups, tt.wantGroups)
			}
			for _, g := range tt.wantGroups {
				found := false
				for _, got := range rep.OmittedGroups {
					found = found || got.Outcome == g.Outcome && got.Host == g.Host && (g.Count == 0 || got.Count == g.Count)
				}
				if !found {
					t.Errorf("omitted_groups %v, want %+v among them", rep.OmittedGroups, g)
				}
			}
			if tt.wantKept == "" {
				if len(rep.Results) != 0 || rep.AccountsOmitted == 0 {
					t.Errorf("%d results kept, %d account sections omitted; want none kept and sections omitted", len(rep.Results), rep.AccountsOmitted)
				}
				return
			}
			if len(rep.Results) == 0 {
				t.Fatal("no result kept")
			}
			for i, r := range rep.Results {
				if r.Outcome != tt.wantKept {
					t.Fatalf("result %d kept is %s, want only %s (the most severe)", i, r.Outcome, tt.wantKept)
				}
			}
			// The first problems stay, in their order.
			if first := rep.Results[0]; first.AccountID != before.Accounts[0].AccountID {
				t.Errorf("first result kept of account %s, want the first account's", first.AccountID)
			}
		})
	}
}

// TestBoundOrderAndDetails: details are cut to 1 KiB whatever the size;
// in-sync results leave before account sections without a problem, those
// before problems, the least severe problems first, account sections with a
// problem last; and when the groups themselves do not fit they are merged
// per outcome, so even a tiny bound holds.
func TestBoundOrderAndDetails(t *testing.T) {
	huge := strings.Repeat("x", 60_000) // a 60 KB HTTP reason phrase
	mk := func() *drift.Report {
		rep := orgReport(4, 4, func(acct string, i int) drift.Result {
			switch {
			case acct == "100000000000" && i == 0:
				return providerResult(acct, "a.example", "", drift.Drift, drift.SeverityCritical, "probe: "+huge)
			case acct == "100000000001" && i == 0:
				return providerResult(acct, "b.example", "", drift.ProbeFailed, drift.SeverityWarning, "probe: "+huge)
			case acct == "100000000001" && i == 1:
				return providerResult(acct, "c.example", "", drift.Skipped, drift.SeverityNone, "tagged ignore")
			}
			return providerResult(acct, "d.example", fmt.Sprintf("/%d", i), drift.InSync, drift.SeverityNone, "")
		})
		rep.Accounts[2].Error = "assume role: " + huge
		return rep
	}
	cut := mk()
	handler.Bound(cut, handler.MaxResponseBytes)
	if cut.ResultsOmitted != 0 || cut.AccountsOmitted != 0 || len(cut.OmittedGroups) != 0 {
		t.Errorf("a small report lost results: %d, %d, %v", cut.ResultsOmitted, cut.AccountsOmitted, cut.OmittedGroups)
	}
	for _, r := range cut.Results {
		if len(r.Detail) > alert.MaxDetailBytes {
			t.Errorf("report detail of %d bytes, over %d", len(r.Detail), alert.MaxDetailBytes)
		}
	}
	if e := cut.Accounts[2].Error; len(e) > alert.MaxDetailBytes || !strings.HasSuffix(e, alert.DetailCutMarker) {
		t.Errorf("account error of %d bytes, not cut", len(e))
	}
	full := handler.ResponseSize(cut)

	// shape is the size of the report keeping the results of the outcomes
	// keep and the account sections with a problem (or all of them), with the
	// omitted fields as the bound would set them, plus 50 bytes of slack
	// (less than any result or section).
	shape := func(keep map[drift.Outcome]bool, allAccounts bool, groups []drift.OmittedGroup) int {
		r := *cut
		r.Results, r.Accounts = []drift.Result{}, nil
		for _, res := range cut.Results {
			if keep[res.Outcome] {
				r.Results = append(r.Results, res)
			} else {
				r.ResultsOmitted++
			}
		}
		for i, a := range cut.Accounts {
			if allAccounts || i < 3 {
				r.Accounts = append(r.Accounts, a)
			} else {
				r.AccountsOmitted++
			}
		}
		r.OmittedGroups = groups
		return handler.ResponseSize(&r) + 50
	}
	problems := map[drift.Outcome]bool{drift.Drift: true, drift.ProbeFailed: true, drift.Skipped: true}
	skippedGone := []drift.OmittedGroup{{Outcome: drift.Skipped, Host: "c.example", Count: 1}}
	warningGone := append([]drift.OmittedGroup{{Outcome: drift.ProbeFailed, Host: "b.example", Count: 1}}, skippedGone...)
	tests := []struct {
		name         string
		max          int
		wantResults  []drift.Outcome // kept, in order
		wantAccounts int
		wantGroups   int
	}{
		{name: "at the bound", max: full, wantResults: nil, wantAccounts: 4},
		{name: "in-sync results leave first", max: shape(problems, true, nil),
			wantResults: []drift.Outcome{drift.Drift, drift.ProbeFailed, drift.Skipped}, wantAccounts: 4},
		{name: "then quiet account sections", max: shape(problems, false, nil),
			wantResults: []drift.Outcome{drift.Drift, drift.ProbeFailed, drift.Skipped}, wantAccounts: 3},
		{name: "then skipped", max: shape(map[drift.Outcome]bool{drift.Drift: true, drift.ProbeFailed: true}, false, skippedGone),
			wantResults: []drift.Outcome{drift.Drift, drift.ProbeFailed}, wantAccounts: 3, wantGroups: 1},
		{name: "then warnings; critical last", max: shape(map[drift.Outcome]bool{drift.Drift: true}, false, warningGone),
			wantResults: []drift.Outcome{drift.Drift}, wantAccounts: 3, wantGroups: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := mk()
			handler.Bound(before, 1<<30) // details cut, nothing else
			rep := mk()
			handler.Bound(rep, tt.max)
			checkBounded(t, before, rep, tt.max)
			if tt.wantResults != nil {
				var got []drift.Outcome
				for _, r := range rep.Results {
					got = append(got, r.Outcome)
				}
				if !reflect.DeepEqual(got, tt.wantResults) {
					t.Errorf("results kept %v, want %v", got, tt.wantResults)
				}
			}
			if len(rep.Accounts) != tt.wantAccounts {
				t.Errorf("%d account sections kept, want %d", len(rep.Accounts), tt.wantAccounts)
			}
			for _, a := range rep.Accounts {
				if tt.wantAccounts < 4 && a.Error == "" && a.Counts[drift.Drift]+a.Counts[drift.ProbeFailed] == 0 {
					t.Errorf("a quiet account section %s kept", a.AccountID)
				}
			}
			if len(rep.OmittedGroups) != tt.wantGroups {
				t.Errorf("omitted_groups %v, want %d", rep.OmittedGroups, tt.wantGroups)
			}
		})
	}
}

// TestBoundMergesGroupsThatDoNotFit: a problem on each of 2,000 hosts under a
// bound that holds none of them, nor a group per host: the groups are merged
// per outcome under OtherHosts, and the response still fits.
func TestBoundMergesGroupsThatDoNotFit(t *testing.T) {
	mk := func() *drift.Report {
		return orgReport(1, 2_000, func(acct string, i int) drift.Result {
			o, sev := drift.ProbeFailed, drift.SeverityWarning
			if i%2 == 0 {
				o, sev = drift.Drift, drift.SeverityCritical
			}
			return providerResult(acct, fmt.Sprintf("idp-%04d.example", i), "", o, sev, "down")
		})
	}
	before, rep := mk(), mk()
	const max = 4_000
	handler.Bound(rep, max)
	checkBounded(t, before, rep, max)
	want := []drift.OmittedGroup{{Outcome: drift.Drift, Host: handler.OtherHosts, Count: 1_000}, {Outcome: drift.ProbeFailed, Host: handler.OtherHosts, Count: 1_000}}
	if !reflect.DeepEqual(rep.OmittedGroups, want) || len(rep.Results) != 0 {
		t.Errorf("omitted_groups %v with %d results kept, want %v and none", rep.OmittedGroups, len(rep.Results), want)
	}
}
