package awsclient

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithyendpoints "github.com/aws/smithy-go/endpoints"
)

// TestEndpointMemos: each memo answers as the SDK's resolver does, for the
// parameter sets a run meets and their neighbours (FIPS, dual-stack,
// AWS_ENDPOINT_URL, another region or account), and the answer is the
// caller's own to change.
func TestEndpointMemos(t *testing.T) {
	ctx := context.Background()
	yes, no := aws.Bool(true), aws.Bool(false)
	local := aws.String("http://127.0.0.1:5000")
	for _, region := range []string{"us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1"} {
		r := aws.String(region)
		for _, p := range []iam.EndpointParameters{{Region: r}, {Region: r, UseFIPS: yes}, {Region: r, UseDualStack: yes, UseFIPS: no}, {Region: r, Endpoint: local}} {
			same(t, "iam", p, iamEndpoints.ResolveEndpoint, iam.NewDefaultEndpointResolverV2().ResolveEndpoint)
		}
		for _, p := range []sts.EndpointParameters{{Region: r}, {Region: r, UseGlobalEndpoint: yes}, {Region: r, UseFIPS: yes}, {Region: r, Endpoint: local}} {
			same(t, "sts", p, stsEndpoints.ResolveEndpoint, sts.NewDefaultEndpointResolverV2().ResolveEndpoint)
		}
		for _, p := range []dynamodb.EndpointParameters{
			{Region: r}, {Region: r, AccountId: aws.String("111111111111"), AccountIdEndpointMode: aws.String("preferred")},
			{Region: r, AccountId: aws.String("222222222222"), AccountIdEndpointMode: aws.String("preferred")},
			{Region: r, UseFIPS: yes}, {Region: r, Endpoint: local},
		} {
			same(t, "dynamodb", p, dynamoDBEndpoints.ResolveEndpoint, dynamodb.NewDefaultEndpointResolverV2().ResolveEndpoint)
		}
	}
	// The answer is a copy: changing it changes no later answer.
	p := iam.EndpointParameters{Region: aws.String("us-east-1")}
	e, _ := iamEndpoints.ResolveEndpoint(ctx, p)
	e.URI.Host, e.URI.RawPath = "mutated", "/mutated"
	e.Headers = map[string][]string{"X": {"y"}}
	if again, _ := iamEndpoints.ResolveEndpoint(ctx, p); again.URI.Host == "mutated" || again.URI.RawPath != "" || len(again.Headers) != 0 {
		t.Errorf("a changed answer leaked into the next: %+v", again)
	}
}

// same resolves p through memo twice and through the SDK's resolver, and
// compares the answers.
func same[P any](t *testing.T, service string, p P, memo, sdk func(context.Context, P) (smithyendpoints.Endpoint, error)) {
	t.Helper()
	want, wantErr := sdk(context.Background(), p)
	for range 2 {
		got, err := memo(context.Background(), p)
		if (err != nil) != (wantErr != nil) || got.URI.String() != want.URI.String() || len(got.Headers) != len(want.Headers) {
			t.Errorf("%s %+v: %s (%v), want %s (%v)", service, p, got.URI.String(), err, want.URI.String(), wantErr)
		}
	}
}

// TestEndpointMemoCountsAndBounds: the rules run once per distinct
// parameters, an error is never remembered, and past maxEndpoints answers
// are still right but not kept.
func TestEndpointMemoCountsAndBounds(t *testing.T) {
	calls := 0
	fail := errors.New("no endpoint")
	m := newEndpointMemo(func(_ context.Context, p string) (smithyendpoints.Endpoint, error) {
		calls++
		if p == "bad" {
			return smithyendpoints.Endpoint{}, fail
		}
		e := smithyendpoints.Endpoint{}
		e.URI.Host = p
		return e, nil
	}, func(p string) string { return p })
	ctx := context.Background()
	for range 3 {
		if e, err := m.ResolveEndpoint(ctx, "a"); err != nil || e.URI.Host != "a" {
			t.Fatalf("a: %+v %v", e, err)
		}
		if _, err := m.ResolveEndpoint(ctx, "bad"); !errors.Is(err, fail) {
			t.Fatalf("bad: %v", err)
		}
	}
	if calls != 4 {
		t.Errorf("%d resolutions, want 4: a once, bad each time", calls)
	}
	for i := range maxEndpoints + 10 {
		key := string(rune('b' + i))
		if e, _ := m.ResolveEndpoint(ctx, key); e.URI.Host != key {
			t.Fatalf("%s resolved to %s", key, e.URI.Host)
		}
	}
	if len(m.known) != maxEndpoints {
		t.Errorf("%d answers kept, want the bound %d", len(m.known), maxEndpoints)
	}
}

// TestEndpointKey: unset, empty and set values differ.
func TestEndpointKey(t *testing.T) {
	yes, no, empty, a := aws.Bool(true), aws.Bool(false), aws.String(""), aws.String("a")
	keys := map[string]string{}
	for name, k := range map[string]string{
		"nothing":     endpointKey([]*string{nil}, nil),
		"empty":       endpointKey([]*string{empty}, nil),
		"a":           endpointKey([]*string{a}, nil),
		"a, false":    endpointKey([]*string{a}, no),
		"a, true":     endpointKey([]*string{a}, yes),
		"a then none": endpointKey([]*string{a, nil}, nil),
		"none then a": endpointKey([]*string{nil, a}, nil),
	} {
		if other, dup := keys[k]; dup {
			t.Errorf("%s and %s share the key %q", name, other, k)
		}
		keys[k] = name
	}
}
