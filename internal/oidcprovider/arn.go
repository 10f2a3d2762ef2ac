package oidcprovider

import (
	"errors"
	"fmt"
	"regexp"
)

// ErrNotARN: a string is not an IAM OIDC provider ARN.
var ErrNotARN = errors.New("not an IAM OIDC provider ARN; want arn:<partition>:iam::<12-digit account>:oidc-provider/<url>, " +
	"like arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com")

// arnPattern is an IAM OIDC provider ARN: partition, 12-digit account, and
// the provider Url as IAM stores it (host[:port][/path], no scheme).
var arnPattern = regexp.MustCompile(`^arn:aws(?:-[a-z]+)*:iam::([0-9]{12}):oidc-provider/[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[^\s]*)?$`)

// ParseARN checks an IAM OIDC provider ARN, the one parser every input of
// one (CLI flags, manual payloads, CloudTrail events) goes through, and
// returns its account. The error wraps ErrNotARN and quotes arn.
func ParseARN(arn string) (account string, err error) {
	m := arnPattern.FindStringSubmatch(arn)
	if m == nil {
		return "", fmt.Errorf("%q: %w", arn, ErrNotARN)
	}
	return m[1], nil
}
