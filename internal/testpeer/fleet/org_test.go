package fleet_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/app"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/fleet"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

// publicRoot is in this test process's system pool (TrustInSystemPool, before
// anything loads the pool), as SSL_CERT_FILE puts it in a function's.
var publicRoot *testidp.CA

func TestMain(m *testing.M) {
	os.Exit(func() int {
		var err error
		if publicRoot, err = testidp.NewRoot("Fleet Public Root"); err != nil {
			panic(err)
		}
		dir, err := os.MkdirTemp("", "fleet-test")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		restore, err := fleet.TrustInSystemPool(publicRoot, dir)
		if err != nil {
			panic(err)
		}
		restore()
		if _, err := fleet.TrustInSystemPool(publicRoot, dir); err != nil {
			panic("the pool loaded once stays: " + err.Error())
		}
		other, _ := testidp.NewRoot("Not Loaded")
		if _, err := fleet.TrustInSystemPool(other, dir); err == nil {
			panic("a root not in the loaded pool was accepted")
		}
		return m.Run()
	}())
}

// TestOrg runs the production wiring over a small organisation: every member
// checked through the forwarder, the drifted host alerted.
func TestOrg(t *testing.T) {
	ctx := context.Background()
	m := peertest.Moto(t)
	const latency = 20 * time.Millisecond
	o, err := fleet.StartOrg(ctx, m, publicRoot, fleet.OrgSpec{
		Members: 3, Fleet: fleet.Spec{Providers: 3, Hosts: 2, Drifted: fleet.LastHost(2)}, AWSLatency: latency, Parallel: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if len(o.Members) != 3 || len(o.ARNs) != 3 || len(o.ARNs[0]) != 3 {
		t.Fatalf("members %v, ARNs %v", o.Members, o.ARNs)
	}
	if env := o.Env(); len(env) != 2 {
		t.Errorf("Env %v", env)
	}

	meter := testpeer.NewCallMeter()
	cfg := config.Default()
	cfg.Mode, cfg.OrgRoleName, cfg.TopicARN = config.ModeAlert, "member", o.Alerts.TopicARN
	rep, err := app.NewFromAWS(ctx, o.AWSConfig(meter.APIOption), cfg, nil).Run(ctx, drift.Request{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if p := o.CheckReport(rep, o.Members); p != "" {
		t.Errorf("report: %s", p)
	}
	if rep.Counts[drift.Drift] != 3 || rep.Counts[drift.InSync] != 6 {
		t.Errorf("counts %v", rep.Counts)
	}
	get := meter.Calls()[testpeer.Op{Service: "IAM", Operation: "GetOpenIDConnectProvider"}]
	if get.N != 9 || get.Time < 9*latency {
		t.Errorf("Gets %+v, want 9 of at least %v each", get, latency)
	}
	msgs, err := o.Alerts.Drain(ctx)
	if err != nil || len(msgs) == 0 {
		t.Errorf("alerts: %d, %v", len(msgs), err)
	}
}
