package testpeer_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

func TestParallel(t *testing.T) {
	var inFlight, peak, done atomic.Int32
	err := testpeer.Parallel(context.Background(), 40, 4, func(ctx context.Context, i int) error {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		inFlight.Add(-1)
		done.Add(1)
		return nil
	})
	if err != nil || done.Load() != 40 || peak.Load() > 4 {
		t.Errorf("Parallel: err %v, %d done, peak %d in flight; want nil, 40, at most 4", err, done.Load(), peak.Load())
	}

	// The first error is returned and nothing new starts after it. The
	// calls after the failing one hold their slot until the error has
	// cancelled the context, so however late the failing call runs, at most
	// one starts beside it: 0 to 3, and 4.
	boom := errors.New("boom")
	var started atomic.Int32
	err = testpeer.Parallel(context.Background(), 1000, 2, func(ctx context.Context, i int) error {
		started.Add(1)
		switch {
		case i == 3:
			return boom
		case i > 3:
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
				t.Errorf("call %d: the context was not cancelled after the error", i)
			}
		}
		return nil
	})
	if !errors.Is(err, boom) || started.Load() > 5 {
		t.Errorf("after an error: err %v, %d started; want boom, at most 5", err, started.Load())
	}
}

// TestOrganizationAndProviders builds a small organisation in moto, creates
// providers in its members without assuming roles, and checks they are where
// an engine assuming the members' roles finds them.
func TestOrganizationAndProviders(t *testing.T) {
	ctx := context.Background()
	m := peertest.Moto(t)
	ids, err := m.CreateOrganization(ctx, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 5 || !slices.IsSorted(ids) || slices.Contains(ids, testpeer.AccountID) {
		t.Fatalf("members %v", ids)
	}
	listed, err := organizations.NewFromConfig(m.Config()).ListAccounts(ctx, &organizations.ListAccountsInput{})
	if err != nil || len(listed.Accounts) != 6 {
		t.Fatalf("ListAccounts: %d accounts, %v; want the management account and 5 members", len(listed.Accounts), err)
	}

	var ps []testpeer.NewProvider
	for _, id := range ids {
		for _, path := range []string{"/a", "/b"} {
			ps = append(ps, testpeer.NewProvider{Account: id, URL: "idp.example.test" + path, Thumbprints: []string{strings.Repeat("0a", 20)}})
		}
	}
	arns, err := m.CreateProviders(ctx, ps, 4)
	if err != nil {
		t.Fatal(err)
	}
	for i, arn := range arns {
		if accounts.AccountOf(arn) != ps[i].Account || !strings.HasSuffix(arn, ps[i].URL) {
			t.Errorf("provider %+v created as %s", ps[i], arn)
		}
	}

	// Through an assumed role, as the engine reaches a member.
	cfg := m.Config()
	cfg.Credentials = accounts.Credentials(sts.NewFromConfig(m.Config()), "arn:aws:iam::"+ids[2]+":role/member", "")
	out, err := iam.NewFromConfig(cfg).ListOpenIDConnectProviders(ctx, &iam.ListOpenIDConnectProvidersInput{})
	if err != nil || len(out.OpenIDConnectProviderList) != 2 {
		t.Fatalf("member %s lists %d providers, %v; want 2", ids[2], len(out.OpenIDConnectProviderList), err)
	}
	for _, p := range out.OpenIDConnectProviderList {
		if accounts.AccountOf(aws.ToString(p.Arn)) != ids[2] {
			t.Errorf("member %s lists %s", ids[2], aws.ToString(p.Arn))
		}
	}
	own, err := iam.NewFromConfig(m.Config()).ListOpenIDConnectProviders(ctx, &iam.ListOpenIDConnectProvidersInput{})
	if err != nil || len(own.OpenIDConnectProviderList) != 0 {
		t.Errorf("the management account lists %d providers, %v; want none", len(own.OpenIDConnectProviderList), err)
	}
}

func TestResetStateTable(t *testing.T) {
	ctx := context.Background()
	m := peertest.Moto(t)
	for range 2 { // the second call replaces the table
		if err := m.ResetStateTable(ctx, "state"); err != nil {
			t.Fatal(err)
		}
	}
	db := dynamodb.NewFromConfig(m.Config())
	d, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("state")})
	if err != nil || aws.ToString(d.Table.KeySchema[0].AttributeName) != "pk" {
		t.Fatalf("DescribeTable: %v, %v", d, err)
	}
	ttl, err := db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String("state")})
	if err != nil || aws.ToString(ttl.TimeToLiveDescription.AttributeName) != "expires_at" {
		t.Errorf("DescribeTimeToLive: %v, %v", ttl, err)
	}
}

// TestCallMeter meters IAM calls slowed by an AWSProxy and STS calls that
// are not.
func TestCallMeter(t *testing.T) {
	ctx := context.Background()
	m := peertest.Moto(t)
	const latency = 30 * time.Millisecond
	slow, err := testpeer.StartAWSProxy(m, map[string]time.Duration{"iam": latency})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()

	meter := testpeer.NewCallMeter()
	cfg := m.Config()
	cfg.BaseEndpoint = aws.String(slow.URL)
	cfg.APIOptions = append(cfg.APIOptions, meter.APIOption)
	ic, sc := iam.NewFromConfig(cfg), sts.NewFromConfig(cfg)
	if _, err := sc.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatal(err)
	}
	const member = "210000000001"
	if _, err := sc.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::" + member + ":role/r"), RoleSessionName: aws.String("s")}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := ic.ListOpenIDConnectProviders(ctx, &iam.ListOpenIDConnectProvidersInput{}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = ic.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String("arn:aws:iam::" + member + ":oidc-provider/h/x")})
	if err == nil {
		t.Fatal("Get of a missing provider succeeded")
	}

	calls := meter.Calls()
	if got := calls[testpeer.Op{Service: "IAM", Operation: "ListOpenIDConnectProviders"}]; got.N != 3 || got.Errors != 0 || got.Time < 3*latency {
		t.Errorf("IAM List: %+v, want 3 calls of at least %v each", got, latency)
	}
	if got := calls[testpeer.Op{Service: "IAM", Operation: "GetOpenIDConnectProvider"}]; got.N != 1 || got.Errors != 1 {
		t.Errorf("IAM Get: %+v, want 1 failed call", got)
	}
	if got := meter.ByService()["STS"]; got.N != 2 || got.Errors != 0 {
		t.Errorf("STS: %+v, want 2 calls", got)
	}
	if got := meter.Total(); got.N != 6 {
		t.Errorf("total %+v, want 6 calls", got)
	}
	// The member's calls: its AssumeRole, then (after three Lists) its Get.
	if span := meter.AccountSpan(); span < 3*latency {
		t.Errorf("account span %v, want at least the three Lists between its calls", span)
	}
	meter.Reset()
	if meter.Total().N != 0 || meter.AccountSpan() != 0 {
		t.Error("Reset left calls")
	}
}
