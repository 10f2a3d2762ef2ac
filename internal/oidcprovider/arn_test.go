package oidcprovider_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/thumbprint-drift/thumbprint-drift/internal/oidcprovider"
)

// TestParseARN: the partitions, ports and paths IAM uses are accepted and
// their account returned; anything else is refused, quoted.
func TestParseARN(t *testing.T) {
	tests := []struct {
		arn, account string // account "": refused
	}{
		{"arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com", "123456789012"},
		{"arn:aws-us-gov:iam::123456789012:oidc-provider/oidc.eks.us-gov-west-1.amazonaws.com/id/ABC", "123456789012"},
		{"arn:aws-cn:iam::210987654321:oidc-provider/127.0.0.1:8443/tenant/v2.0", "210987654321"},
		{"arn:aws-iso-b:iam::123456789012:oidc-provider/idp.example", "123456789012"},
		{"token.actions.githubusercontent.com", ""},
		{"arn:aws:iam::12345678901:oidc-provider/idp.example", ""},
		{"arn:aws:iam::123456789012:saml-provider/idp", ""},
		{"arn:aws:iam::123456789012:oidc-provider/https://idp.example", ""},
		{"arn:aws:iam::123456789012:oidc-provider/idp.example/a b", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.arn, func(t *testing.T) {
			a, err := oidcprovider.ParseARN(tt.arn)
			account := a.Account
			if tt.account == "" {
				if !errors.Is(err, oidcprovider.ErrNotARN) || !strings.Contains(err.Error(), `"`+tt.arn+`"`) {
					t.Errorf("ParseARN = %q, %v; want ErrNotARN quoting it", account, err)
				}
				return
			}
			if err != nil || account != tt.account || "arn:"+a.Partition+":iam::"+a.Account+":oidc-provider/"+a.URL != tt.arn {
				t.Errorf("ParseARN = %+v, %v; want account %s and the parts of %s", a, err, tt.account, tt.arn)
			}
		})
	}
}
