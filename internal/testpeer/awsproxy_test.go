package testpeer_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sns"
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

// TestAWSProxyRecords: once recording, the proxy names each call as an IAM
// policy does (service:Action and resource ARNs) and who signed it: a key it
// was taught, or one an AssumeRole it forwarded returned.
func TestAWSProxyRecords(t *testing.T) {
	ctx := context.Background()
	m := peertest.Moto(t)
	p, err := testpeer.StartAWSProxy(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cfg := m.Config()
	for _, table := range []string{"state", "other"} {
		if err := testpeer.CreateStateTable(ctx, cfg, table); err != nil {
			t.Fatal(err)
		}
	}
	topic, err := sns.NewFromConfig(cfg).CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("alerts")})
	if err != nil {
		t.Fatal(err)
	}
	const self = "arn:aws:iam::" + testpeer.AccountID + ":role/function"
	const member = "arn:aws:iam::210000000007:role/member"
	p.Learn(testpeer.AccessKey, self)
	p.Record()

	cfg.BaseEndpoint = aws.String(p.URL)
	if _, err := iam.NewFromConfig(cfg).ListOpenIDConnectProviders(ctx, &iam.ListOpenIDConnectProvidersInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := sns.NewFromConfig(cfg).Publish(ctx, &sns.PublishInput{TopicArn: topic.TopicArn, Message: aws.String("m")}); err != nil {
		t.Fatal(err)
	}
	if _, err := dynamodb.NewFromConfig(cfg).PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("state"),
		Item: map[string]dbtypes.AttributeValue{"pk": &dbtypes.AttributeValueMemberS{Value: "k"}}}); err != nil {
		t.Fatal(err)
	}
	// A transaction is authorised item action by item action: Updates by
	// UpdateItem on their tables; anything else is named as no policy allows.
	key := func(k string) map[string]dbtypes.AttributeValue {
		return map[string]dbtypes.AttributeValue{"pk": &dbtypes.AttributeValueMemberS{Value: k}}
	}
	update := func(table, k string) dbtypes.TransactWriteItem {
		return dbtypes.TransactWriteItem{Update: &dbtypes.Update{TableName: aws.String(table), Key: key(k), UpdateExpression: aws.String("SET #n = :n"),
			ExpressionAttributeNames: map[string]string{"#n": "n"}, ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":n": &dbtypes.AttributeValueMemberN{Value: "1"}}}}
	}
	for _, items := range [][]dbtypes.TransactWriteItem{
		{update("state", "a"), update("other", "b"), update("state", "c")},
		{update("state", "d"), {Put: &dbtypes.Put{TableName: aws.String("state"), Item: key("e")}}},
	} {
		if _, err := dynamodb.NewFromConfig(cfg).TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := eventbridge.NewFromConfig(cfg).PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{
		{Source: aws.String("s"), DetailType: aws.String("d"), Detail: aws.String("{}")}}}); err != nil {
		t.Fatal(err)
	}
	mcfg := cfg.Copy()
	mcfg.Credentials = accounts.Credentials(sts.NewFromConfig(cfg), member, "")
	if _, err := iam.NewFromConfig(mcfg).GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{
		OpenIDConnectProviderArn: aws.String("arn:aws:iam::210000000007:oidc-provider/idp.example.test")}); err == nil {
		t.Error("GetOpenIDConnectProvider of a provider that does not exist succeeded")
	}

	var got []string
	for _, c := range p.Calls() {
		got = append(got, fmt.Sprintf("%s %s %v %s", c.Principal, c.IAMAction(), c.Resources, c.Account))
	}
	want := []string{
		self + " iam:ListOpenIDConnectProviders [*] " + testpeer.AccountID,
		self + " sns:Publish [" + aws.ToString(topic.TopicArn) + "] " + testpeer.AccountID,
		self + " dynamodb:PutItem [arn:aws:dynamodb:us-east-1:" + testpeer.AccountID + ":table/state] " + testpeer.AccountID,
		self + " dynamodb:UpdateItem [arn:aws:dynamodb:us-east-1:" + testpeer.AccountID + ":table/state arn:aws:dynamodb:us-east-1:" + testpeer.AccountID + ":table/other] " + testpeer.AccountID,
		self + " dynamodb:unknown TransactWriteItems holding Put [] " + testpeer.AccountID,
		self + " events:PutEvents [arn:aws:events:us-east-1:" + testpeer.AccountID + ":event-bus/default] " + testpeer.AccountID,
		self + " sts:AssumeRole [" + member + "] " + testpeer.AccountID,
		member + " iam:GetOpenIDConnectProvider [arn:aws:iam::210000000007:oidc-provider/idp.example.test] 210000000007",
	}
	if !slices.Equal(got, want) {
		t.Errorf("calls\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if calls := p.Calls(); len(calls) > 0 && calls[0].Status != http.StatusOK || len(calls) > 0 && calls[len(calls)-1].Status < 400 {
		t.Errorf("statuses %d (first) and %d (last, failed): want 200 and an error", calls[0].Status, calls[len(calls)-1].Status)
	}
}
