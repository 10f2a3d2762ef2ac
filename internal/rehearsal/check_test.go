package rehearsal

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

// TestCheckNamesACallThePoliciesDoNotAllow: the rehearsal's verdict on
// recorded calls, against roles as moto's IAM holds them: an allowed call
// passes naming its statement, a call on a resource the policy does not name,
// an action it does not name, an unknown signer and an AssumeRole of a role
// whose trust policy does not admit the caller each fail with the reason.
func TestCheckNamesACallThePoliciesDoNotAllow(t *testing.T) {
	ctx := context.Background()
	m := peertest.Moto(t)
	c := iam.NewFromConfig(m.Config())
	root, err := testpeer.ModuleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	trust := func(principal string) *string {
		return aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + principal + `"},"Action":"sts:AssumeRole"}]}`)
	}
	const fn = "arn:aws:iam::" + testpeer.AccountID + ":role/fn"
	for name, principal := range map[string]string{"fn": "arn:aws:iam::" + testpeer.AccountID + ":root", "trusts-fn": fn, "trusts-other": "arn:aws:iam::" + testpeer.AccountID + ":role/other"} {
		if _, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: trust(principal)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("fn"), PolicyName: aws.String("p"), PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[
		{"Sid":"List","Effect":"Allow","Action":"iam:ListOpenIDConnectProviders","Resource":"*"},
		{"Sid":"Update","Effect":"Allow","Action":"iam:UpdateOpenIDConnectProviderThumbprint","Resource":"arn:aws:iam::123456789012:oidc-provider/*"},
		{"Sid":"Assume","Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::123456789012:role/trusts-*"}]}`)}); err != nil {
		t.Fatal(err)
	}
	call := func(principal, action string, resources ...string) testpeer.AWSCall {
		service, act, _ := strings.Cut(action, ":")
		return testpeer.AWSCall{Principal: principal, Service: service, Action: act, Resources: resources}
	}
	tests := []struct {
		call    testpeer.AWSCall
		allowed bool
		why     string
	}{
		{call(fn, "iam:ListOpenIDConnectProviders", "*"), true, "List"},
		{call(fn, "iam:UpdateOpenIDConnectProviderThumbprint", "arn:aws:iam::123456789012:oidc-provider/h/p"), true, "Update"},
		{call(fn, "iam:UpdateOpenIDConnectProviderThumbprint", "arn:aws:iam::210000000007:oidc-provider/h/p"), false, "no statement allows it"},
		{call(fn, "sns:Publish", "arn:aws:sns:us-east-1:123456789012:t"), false, "no statement allows it"},
		{call(fn, "sts:GetCallerIdentity", "*"), true, "no permission is required"},
		{call("", "iam:ListOpenIDConnectProviders", "*"), false, "no known role"},
		{call(fn, "sts:AssumeRole", "arn:aws:iam::123456789012:role/trusts-fn"), true, "Assume"},
		{call(fn, "sts:AssumeRole", "arn:aws:iam::123456789012:role/trusts-other"), false, "trust policy does not admit " + fn},
	}
	r := &rehearsal{opts: Options{Root: root}, moto: m}
	var calls []testpeer.AWSCall
	for _, tc := range tests {
		calls = append(calls, tc.call)
	}
	res := &Result{Policies: map[string][]Statement{}}
	got, err := r.check(ctx, res, calls, fn)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range tests {
		if got[i].Allowed != tc.allowed || !strings.Contains(got[i].Why, tc.why) {
			t.Errorf("%s on %v as %q: allowed %v (%s), want %v (%s)", tc.call.IAMAction(), tc.call.Resources, tc.call.Principal, got[i].Allowed, got[i].Why, tc.allowed, tc.why)
		}
	}
	if len(res.Policies["function"]) != 3 {
		t.Errorf("the function role's statements read: %d, want 3", len(res.Policies["function"]))
	}
}
