package app_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/app"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

// TestStateAndSecurityHubWiring: with STATE_TABLE, SNS_TOPIC_ARN and
// SECURITY_HUB in organisation mode (ACCOUNT_ROLE_ARNS), a member's problem
// is sent once, as a grouped SNS message and as a finding in the member's own
// account (imported through its role); the start-up log names the table.
func TestStateAndSecurityHubWiring(t *testing.T) {
	o := newOrg(t, 1)
	ctx := context.Background()
	member := o.members[0]
	role := fmt.Sprintf("arn:aws:iam::%s:role/%s", member, roleName)
	root, _ := testidp.NewRoot("Wiring Private Root")
	leaf, _ := root.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	s, err := testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf, root)}, Path: "/w"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	arn := o.provider(member, s.URL(), strings.Repeat("0e", 20))

	memberCfg := o.base.Copy()
	memberCfg.Credentials = accounts.Credentials(sts.NewFromConfig(o.base), role, "")
	hub := securityhub.NewFromConfig(memberCfg)
	if _, err := hub.EnableSecurityHub(ctx, &securityhub.EnableSecurityHubInput{}); err != nil {
		t.Fatal(err)
	}
	q, err := testpeer.NewAlertQueue(ctx, o.base, "wiring")
	if err != nil {
		t.Fatal(err)
	}
	if err := testpeer.CreateStateTable(ctx, o.base, "wiring-state"); err != nil {
		t.Fatal(err)
	}

	cfg := config.Default()
	cfg.AccountRoleARNs, cfg.Mode = []string{role}, config.ModeAlert
	cfg.TopicARN, cfg.StateTable, cfg.SecurityHub = q.TopicARN, "wiring-state", true
	var logs bytes.Buffer
	awsCfg := aws.Config{
		Region:       testpeer.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(testpeer.AccessKey, testpeer.SecretKey, ""),
		BaseEndpoint: aws.String(o.moto.Endpoint),
	}
	e := app.NewFromAWS(ctx, awsCfg, cfg, slog.New(slog.NewJSONHandler(&logs, nil)))
	if !strings.Contains(logs.String(), "alert state in DynamoDB table wiring-state") {
		t.Errorf("start-up log does not name the state table:\n%s", logs.String())
	}

	for i, want := range []int{1, 0} {
		rep, err := e.Run(ctx, drift.Request{})
		if err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
		msgs, err := q.Drain(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != want {
			t.Errorf("run %d: %d messages, want %d", i+1, len(msgs), want)
		}
		if i == 0 && (rep.Results[0].Transition != "new" || len(msgs) == 1 && msgs[0].Attr("account_id") != member) {
			t.Errorf("run 1: result %+v", rep.Results[0])
		}
	}
	out, err := hub.GetFindings(ctx, &securityhub.GetFindingsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range out.Findings {
		ids = append(ids, aws.ToString(f.Id)+"@"+aws.ToString(f.AwsAccountId))
	}
	if want := alert.FindingID(drift.Result{ProviderARN: arn}) + "@" + member; len(ids) != 1 || ids[0] != want {
		t.Errorf("findings in the member account %v, want [%s]", ids, want)
	}
}

func TestStatelessStartUpSaysSo(t *testing.T) {
	var logs bytes.Buffer
	app.NewFromAWS(context.Background(), aws.Config{Region: testpeer.Region}, config.Default(), slog.New(slog.NewJSONHandler(&logs, nil)))
	if !strings.Contains(logs.String(), "STATE_TABLE is empty") || !strings.Contains(logs.String(), "every problem as new") {
		t.Errorf("start-up log:\n%s", logs.String())
	}
}
