package app_test

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

// TestProviderOfAnotherAccountIsSkipped: a single-account deployment asked
// (manual payload, CloudTrail event) for a provider of another account is
// told by IAM AccessDenied (real IAM: the role grants its own account only)
// or NoSuchEntity (moto); either way the provider is skipped with the reason,
// naming both accounts, and nothing is alerted. A provider of its own account
// that IAM denies stays a problem: a missing permission is not hidden.
func TestProviderOfAnotherAccountIsSkipped(t *testing.T) {
	m := peertest.Moto(t)
	ctx := context.Background()
	o := &org{t: t, moto: m, base: m.Config(), management: testpeer.AccountID}
	root, _ := testidp.NewRoot("Outside Test Root")
	leaf, _ := root.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	s, err := testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf, root)}, Path: "/own", Paths: []string{"/denied"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old := strings.Repeat("0d", 20)
	own := o.provider(testpeer.AccountID, s.URL(), old)
	ownDenied := o.provider(testpeer.AccountID, s.Host()+"/denied", old)
	const other = "999999999999"
	deniedARN := "arn:aws:iam::" + other + ":oidc-provider/idp.other.example/denied"
	missingARN := "arn:aws:iam::" + other + ":oidc-provider/idp.other.example/missing"

	proxy, err := testpeer.StartFaultProxy(m.Endpoint, func(c testpeer.Call) testpeer.Fault {
		if c.Action == "GetOpenIDConnectProvider" {
			switch c.Form.Get("OpenIDConnectProviderArn") {
			case deniedARN, ownDenied:
				return testpeer.AccessDenied
			}
		}
		return testpeer.Pass
	})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	q, err := testpeer.NewAlertQueue(ctx, o.base, "outside")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Mode, cfg.TopicARN = config.ModeAlert, q.TopicARN
	rep, err := o.engine(cfg, proxy.URL).Run(ctx, drift.Request{Providers: []string{own, deniedARN, missingARN, ownDenied}})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := map[string]string{
		own:        "drift",
		deniedARN:  "skipped account " + other + " is not in this run (it checks account " + testpeer.AccountID + " only; IAM answered AccessDenied)",
		missingARN: "skipped account " + other + " is not in this run (it checks account " + testpeer.AccountID + " only; IAM answered NoSuchEntity)",
		ownDenied:  "probe-failed get provider " + ownDenied,
	}
	for _, r := range rep.Results {
		if got := string(r.Outcome) + " " + r.Detail; !strings.HasPrefix(got, want[r.ProviderARN]) {
			t.Errorf("%s: %q, want %q...", r.ProviderARN, got, want[r.ProviderARN])
		}
	}
	if len(rep.Results) != len(want) {
		t.Errorf("%d results, want %d", len(rep.Results), len(want))
	}
	msgs, err := q.Drain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, msg := range msgs {
		for _, r := range msg.Results() {
			arn, _ := r["provider_arn"].(string)
			got[arn] = true
		}
	}
	if got[deniedARN] || got[missingARN] || !got[own] || !got[ownDenied] || len(got) != 2 {
		t.Errorf("alerted %v, want the own providers only", got)
	}
}
