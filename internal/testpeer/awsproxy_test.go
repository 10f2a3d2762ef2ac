package testpeer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

// TestAWSProxy: IAM calls through the proxy take its latency, STS calls do
// not; an assumed role's calls land in its account, with the account told to
// moto by the proxy, and its own calls in moto's default account.
func TestAWSProxy(t *testing.T) {
	ctx := context.Background()
	m := peertest.Moto(t)
	const latency = 40 * time.Millisecond
	p, err := testpeer.StartAWSProxy(m, map[string]time.Duration{"iam": latency})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if env := p.Env(); len(env) != 1 || env[0] != "AWS_ENDPOINT_URL="+p.URL {
		t.Errorf("Env %v", env)
	}
	const member = "210000000007"
	if _, err := m.CreateProviders(ctx, []testpeer.NewProvider{{Account: member, URL: "idp.example.test/m", Thumbprints: []string{strings.Repeat("0b", 20)}}}, 1); err != nil {
		t.Fatal(err)
	}

	cfg := m.Config()
	cfg.BaseEndpoint = aws.String(p.URL)
	stsc := sts.NewFromConfig(cfg)
	start := time.Now()
	if _, err := stsc.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d >= latency {
		t.Logf("STS call took %v (moto's first call); want no added latency", d)
	}
	mcfg := cfg.Copy()
	mcfg.Credentials = accounts.Credentials(stsc, "arn:aws:iam::"+member+":role/r", "")
	if _, err := mcfg.Credentials.Retrieve(ctx); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	out, err := iam.NewFromConfig(mcfg).ListOpenIDConnectProviders(ctx, &iam.ListOpenIDConnectProvidersInput{})
	if err != nil || len(out.OpenIDConnectProviderList) != 1 || accounts.AccountOf(aws.ToString(out.OpenIDConnectProviderList[0].Arn)) != member {
		t.Fatalf("the member lists %v, %v; want its one provider", out, err)
	}
	if d := time.Since(start); d < latency {
		t.Errorf("IAM call took %v, want at least %v", d, latency)
	}
	own, err := iam.NewFromConfig(cfg).ListOpenIDConnectProviders(ctx, &iam.ListOpenIDConnectProvidersInput{})
	if err != nil || len(own.OpenIDConnectProviderList) != 0 {
		t.Errorf("the default account lists %v, %v; want none", own, err)
	}
}
