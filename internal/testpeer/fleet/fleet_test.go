package fleet_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/oidcprovider"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/fleet"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
	"github.com/thumbprint-drift/thumbprint-drift/internal/thumbprint"
)

func TestFleet(t *testing.T) {
	root, err := testidp.NewRoot("Fleet Test Root")
	if err != nil {
		t.Fatal(err)
	}
	const rtt = 20 * time.Millisecond
	f, err := fleet.Start(root, fleet.Spec{Providers: 5, Hosts: 3, RTT: rtt, Drifted: fleet.LastHost(3)})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(f.Hosts) != 3 || len(f.Providers) != 5 {
		t.Fatalf("%d hosts, %d providers", len(f.Hosts), len(f.Providers))
	}
	if urls := f.URLs(); len(urls) != 5 || urls[4] != f.Providers[4].URL {
		t.Errorf("URLs %v", urls)
	}
	for i, p := range f.Providers {
		if p.Host != f.Hosts[i%3] || !strings.HasPrefix(p.URL, p.Host.Addr()+"/id/") || p.Drifted != (i%3 == 2) {
			t.Errorf("provider %d: %+v", i, p)
		}
	}

	// Each Url is a working issuer behind its host's forwarder, whose chain
	// ends in the host's intermediate.
	prober := thumbprint.New(thumbprint.Options{Handshakes: 1, Timeout: 5 * time.Second, RootCAs: root.Pool()})
	start := time.Now()
	res, err := prober.Probe(context.Background(), f.Providers[1].URL)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Thumbprints, []string{f.Providers[1].Host.Thumbprint}) || !res.PubliclyTrusted {
		t.Errorf("probe %v trusted %v, want [%s]", res.Thumbprints, res.PubliclyTrusted, f.Providers[1].Host.Thumbprint)
	}
	if d := time.Since(start); d < fleet.DiscoveryRTT*rtt {
		t.Errorf("probe took %v through the forwarder, want at least a discovery on a new connection (%v)", d, fleet.DiscoveryRTT*rtt)
	}
	if f.Handshakes() < 2 || f.Hosts[1].Net.Accepted() < 2 {
		t.Errorf("handshakes %d, connections %d", f.Handshakes(), f.Hosts[1].Net.Accepted())
	}

	if _, err := fleet.Start(root, fleet.Spec{Providers: 2, Hosts: 3}); err == nil {
		t.Error("more hosts than providers accepted")
	}
}

func TestSeed(t *testing.T) {
	ctx := context.Background()
	m := peertest.Moto(t)
	root, _ := testidp.NewRoot("Fleet Seed Root")
	f, err := fleet.Start(root, fleet.Spec{Providers: 4, Hosts: 2, Drifted: fleet.EveryFifth})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	members := []string{"210000000001", "210000000002"}
	arns, err := f.Seed(ctx, m, members, 3)
	if err != nil {
		t.Fatal(err)
	}
	for a, row := range arns {
		for i, arn := range row {
			if accounts.AccountOf(arn) != members[a] || !strings.HasSuffix(arn, f.Providers[i].URL) {
				t.Errorf("arns[%d][%d] = %s", a, i, arn)
			}
		}
	}

	// IAMFloor reads a member's providers through moto as the engine would.
	cfg := m.Config()
	cfg.APIOptions = append(cfg.APIOptions, testpeer.AsAccount(members[0]))
	store := oidcprovider.New(iam.NewFromConfig(cfg))
	list, alone, err := fleet.IAMFloor(ctx, store, arns[0], 2, 3)
	if err != nil || list <= 0 || alone < list {
		t.Errorf("IAMFloor = %v, %v, %v", list, alone, err)
	}
	if _, _, err := fleet.IAMFloor(ctx, store, append(arns[1], arns[0]...), 1, 1); err == nil {
		t.Error("IAMFloor over providers of another account: no error")
	}
}

// report is what an engine run over the fleet in members should return.
func report(f *fleet.Fleet, members []string) *drift.Report {
	rep := &drift.Report{Counts: map[drift.Outcome]int{}}
	rep.Accounts = append(rep.Accounts, drift.AccountSummary{AccountID: testpeer.AccountID})
	for _, id := range members {
		rep.Accounts = append(rep.Accounts, drift.AccountSummary{AccountID: id, Checked: len(f.Providers)})
		for _, p := range f.Providers {
			out := drift.InSync
			if p.Drifted {
				out = drift.Drift
			}
			rep.Counts[out]++
			rep.Results = append(rep.Results, drift.Result{AccountID: id, ProviderARN: "arn:aws:iam::" + id + ":oidc-provider/" + p.URL,
				URL: p.URL, Outcome: out, LiveThumbprints: []string{p.Host.Thumbprint}, PubliclyTrusted: true})
		}
	}
	rep.Checked = len(rep.Results)
	return rep
}

func TestCheckReport(t *testing.T) {
	root, _ := testidp.NewRoot("Fleet Check Root")
	f, err := fleet.Start(root, fleet.Spec{Providers: 3, Hosts: 1, Drifted: func(p, _ int) bool { return p == 1 }})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	members := []string{"210000000001", "210000000002"}
	if p := f.CheckReport(report(f, members), members); p != "" {
		t.Fatalf("good report: %s", p)
	}
	omitted := report(f, members)
	omitted.Results, omitted.ResultsOmitted = slices.DeleteFunc(omitted.Results, func(r drift.Result) bool { return r.Outcome == drift.InSync }), 4
	if p := f.CheckReport(omitted, members); p != "" {
		t.Errorf("in-sync results omitted: %s", p)
	}
	one := report(f, members[:1])
	one.Accounts = nil
	if p := f.CheckReport(one, nil); p != "" {
		t.Errorf("one account: %s", p)
	}

	bad := map[string]func(*drift.Report){
		"account failed":           func(r *drift.Report) { r.Accounts[2].Error, r.Accounts[2].Checked = "AccessDenied", 0 },
		"management has providers": func(r *drift.Report) { r.Accounts[0].Checked = 1 },
		"member missing":           func(r *drift.Report) { r.Accounts = r.Accounts[:2] },
		"result in the wrong":      func(r *drift.Report) { r.Results[0].AccountID = members[1] },
		"checked twice":            func(r *drift.Report) { r.Results[2] = r.Results[0] },
		"wrong outcome":            func(r *drift.Report) { r.Results[4].Outcome = drift.InSync },
		"wrong live":               func(r *drift.Report) { r.Results[3].LiveThumbprints = []string{strings.Repeat("0", 40)} },
		"not trusted":              func(r *drift.Report) { r.Results[3].PubliclyTrusted = false },
		"one missing":              func(r *drift.Report) { r.Results = r.Results[1:]; r.Checked-- },
		"result missing":           func(r *drift.Report) { r.Results = r.Results[1:] },
		"drift omitted":            func(r *drift.Report) { r.Results = r.Results[2:]; r.ResultsOmitted = 2; r.Counts[drift.InSync] = 1 },
	}
	for name, spoil := range bad {
		rep := report(f, members)
		spoil(rep)
		if p := f.CheckReport(rep, members); p == "" {
			t.Errorf("%s: no difference found", name)
		}
	}
}
