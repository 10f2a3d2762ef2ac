package app_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

// TestAccountFailedAlertedOnce: organisation mode with SECURITY_HUB=true and
// one member whose role cannot be assumed. The account-failed finding is
// imported in the function's own account (AwsAccountId that account, the
// member as its resource), so delivery succeeds: one new account-failed
// message over three runs, then one resolved, and the finding archived,
// when the role works again.
func TestAccountFailedAlertedOnce(t *testing.T) {
	o := newOrg(t, 1)
	ctx := context.Background()
	member := o.members[0]
	denied := fmt.Sprintf("arn:aws:iam::%s:role/%s", member, roleName)
	var deny atomic.Bool
	deny.Store(true)
	proxy, err := testpeer.StartFaultProxy(o.moto.Endpoint, func(c testpeer.Call) testpeer.Fault {
		if c.Action == "AssumeRole" && c.Form.Get("RoleArn") == denied && deny.Load() {
			return testpeer.AccessDenied
		}
		return testpeer.Pass
	})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	hub := securityhub.NewFromConfig(o.base)
	if _, err := hub.EnableSecurityHub(ctx, &securityhub.EnableSecurityHubInput{}); err != nil {
		t.Fatal(err)
	}
	q, err := testpeer.NewAlertQueue(ctx, o.base, "failed")
	if err != nil {
		t.Fatal(err)
	}
	if err := testpeer.CreateStateTable(ctx, o.base, "failed-state"); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.OrgRoleName, cfg.Mode = roleName, config.ModeAlert
	cfg.TopicARN, cfg.StateTable, cfg.SecurityHub = q.TopicARN, "failed-state", true

	id := alert.FindingID(drift.Result{AccountID: member})
	for run, want := range []string{"new account-failed", "", "", "resolved in-sync"} {
		if run == 3 {
			deny.Store(false)
		}
		_, err := o.engine(cfg, proxy.URL).Run(ctx, drift.Request{})
		if errors.Is(err, alert.ErrNotDelivered) || (run < 3) != errors.Is(err, drift.ErrAccountFailed) {
			t.Fatalf("run %d: err = %v, want the account failed (runs 1-3) and every alert delivered", run+1, err)
		}
		msgs, err := q.Drain(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for _, m := range msgs {
			got += m.Attr("transition") + " " + m.Attr("outcome") + ";"
			if m.Attr("account_id") != member {
				t.Errorf("run %d: message about account %q, want %s", run+1, m.Attr("account_id"), member)
			}
		}
		if want != "" {
			want += ";"
		}
		if got != want {
			t.Errorf("run %d: sent %q, want %q", run+1, got, want)
		}
		out, err := hub.GetFindings(ctx, &securityhub.GetFindingsInput{})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Findings) != 1 || aws.ToString(out.Findings[0].Id) != id {
			t.Fatalf("run %d: %d findings in the function's account, want %s", run+1, len(out.Findings), id)
		}
		f := out.Findings[0]
		state := "ACTIVE"
		if run == 3 {
			state = "ARCHIVED"
		}
		if aws.ToString(f.AwsAccountId) != o.management || aws.ToString(f.Resources[0].Id) != "AWS::::Account:"+member || string(f.RecordState) != state {
			t.Errorf("run %d: finding in %s about %s, %s; want in %s about AWS::::Account:%s, %s", run+1,
				aws.ToString(f.AwsAccountId), aws.ToString(f.Resources[0].Id), f.RecordState, o.management, member, state)
		}
	}
}
