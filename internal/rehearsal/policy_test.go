package rehearsal

import (
	"slices"
	"testing"
)

func TestWildcard(t *testing.T) {
	tests := []struct {
		pattern, s string
		fold, want bool
	}{
		{"*", "arn:aws:sns:us-east-1:1:t", false, true},
		{"*", "*", false, true},
		{"arn:aws:iam::1:oidc-provider/*", "arn:aws:iam::1:oidc-provider/host:8443/path", false, true},
		{"arn:aws:iam::1:oidc-provider/*", "arn:aws:iam::2:oidc-provider/host", false, false},
		{"arn:aws:iam::*:role/member", "arn:aws:iam::210000000007:role/member", false, true},
		{"arn:aws:iam::*:role/member", "arn:aws:iam::210000000007:role/member2", false, false},
		{"arn:aws:iam::*:role/member", "*", false, false}, // an action without a resource needs "*"
		{"arn:aws:securityhub:*:1:product/1/default", "arn:aws:securityhub:eu-west-1:1:product/1/default", false, true},
		{"kms:GenerateDataKey*", "kms:GenerateDataKeyWithoutPlaintext", true, true},
		{"iam:getopenidconnectprovider", "iam:GetOpenIDConnectProvider", true, true},
		{"iam:getopenidconnectprovider", "iam:GetOpenIDConnectProvider", false, false},
		{"arn:aws:sns:us-east-1:1:Topic", "arn:aws:sns:us-east-1:1:topic", false, false}, // ARNs are case-sensitive
		{"a?c", "abc", false, true},
		{"a?c", "ac", false, false},
		{"a*b*c", "aXbYbZc", false, true},
		{"a*b*c", "aXbYbZ", false, false},
		{"", "", false, true},
		{"", "x", false, false},
	}
	for _, tc := range tests {
		if got := Wildcard(tc.pattern, tc.s, tc.fold); got != tc.want {
			t.Errorf("Wildcard(%q, %q, %v) = %v, want %v", tc.pattern, tc.s, tc.fold, got, tc.want)
		}
	}
}

func TestAllows(t *testing.T) {
	doc := map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{
			map[string]any{"Sid": "List", "Effect": "Allow", "Action": "iam:ListOpenIDConnectProviders", "Resource": "*"},
			map[string]any{"Sid": "Read", "Effect": "Allow", "Action": []any{"iam:GetOpenIDConnectProvider", "iam:ListOpenIDConnectProviderTags"}, "Resource": "arn:aws:iam::1:oidc-provider/*"},
			nil, // AWS::NoValue where a condition was false
			map[string]any{"Sid": "Publish", "Effect": "Allow", "Action": "sns:*", "Resource": []any{"arn:aws:sns:us-east-1:1:alerts"}},
			map[string]any{"Sid": "NoDelete", "Effect": "Deny", "Action": "sns:DeleteTopic", "Resource": "*"},
			map[string]any{"Sid": "AllButIAM", "Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:dynamodb:us-east-1:1:table/state"},
		},
	}
	stmts, err := ParsePolicy(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(stmts) != 5 {
		t.Fatalf("%d statements, want 5 (the null one left out)", len(stmts))
	}
	tests := []struct {
		action, resource string
		want             bool
		by               string
	}{
		{"iam:ListOpenIDConnectProviders", "*", true, "List"},
		{"iam:GetOpenIDConnectProvider", "arn:aws:iam::1:oidc-provider/h/p", true, "Read"},
		{"iam:GetOpenIDConnectProvider", "arn:aws:iam::2:oidc-provider/h/p", false, "no statement allows it"},
		{"iam:UpdateOpenIDConnectProviderThumbprint", "arn:aws:iam::1:oidc-provider/h/p", false, "no statement allows it"},
		{"sns:Publish", "arn:aws:sns:us-east-1:1:alerts", true, "Publish"},
		{"sns:Publish", "arn:aws:sns:us-east-1:1:other", false, "no statement allows it"},
		{"sns:DeleteTopic", "arn:aws:sns:us-east-1:1:alerts", false, "denied by NoDelete"},
		{"dynamodb:UpdateItem", "arn:aws:dynamodb:us-east-1:1:table/state", true, "AllButIAM"},
		{"iam:ListRoles", "arn:aws:dynamodb:us-east-1:1:table/state", false, "no statement allows it"},
	}
	for _, tc := range tests {
		got, by := Allows(stmts, tc.action, tc.resource)
		if got != tc.want || by != tc.by {
			t.Errorf("Allows(%s on %s) = %v (%s), want %v (%s)", tc.action, tc.resource, got, by, tc.want, tc.by)
		}
	}
}

func TestParsePolicyRefuses(t *testing.T) {
	for _, doc := range []any{
		"not json",
		[]any{},
		map[string]any{"Statement": []any{"x"}},
		map[string]any{"Statement": map[string]any{"Effect": "Maybe", "Action": "*", "Resource": "*"}},
	} {
		if _, err := ParsePolicy(doc); err == nil {
			t.Errorf("ParsePolicy(%#v) = nil error", doc)
		}
	}
}

func TestTrustsPrincipal(t *testing.T) {
	role := "arn:aws:iam::123456789012:role/stack-DriftCheckFunctionRole-X"
	trust := func(principal any, action string) []Statement {
		st, err := ParsePolicy(map[string]any{"Statement": map[string]any{"Effect": "Allow", "Principal": principal, "Action": action}})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	tests := []struct {
		name  string
		trust []Statement
		want  bool
	}{
		{"the role", trust(map[string]any{"AWS": role}, "sts:AssumeRole"), true},
		{"its account", trust(map[string]any{"AWS": "arn:aws:iam::123456789012:root"}, "sts:AssumeRole"), true},
		{"another role", trust(map[string]any{"AWS": "arn:aws:iam::123456789012:role/other"}, "sts:AssumeRole"), false},
		{"a service", trust(map[string]any{"Service": "lambda.amazonaws.com"}, "sts:AssumeRole"), false},
		{"another action", trust(map[string]any{"AWS": role}, "sts:TagSession"), false},
	}
	for _, tc := range tests {
		if got := trustsPrincipal(tc.trust, role); got != tc.want {
			t.Errorf("%s: trustsPrincipal = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestDocumentedOutputs(t *testing.T) {
	readme := []byte("## Deploy\n\nThe stack.\n\nOutputs: `A`, `BArn`,\n`C`, and with OrganizationId set, `D` (the bus).\n\n`E` is not one.\n")
	got := DocumentedOutputs(readme)
	if want := []string{"A", "BArn", "C", "D"}; !slices.Equal(got, want) {
		t.Errorf("DocumentedOutputs = %v, want %v", got, want)
	}
}
