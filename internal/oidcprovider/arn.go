package oidcprovider

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrNotARN: a string is not an IAM OIDC provider ARN.
var ErrNotARN = errors.New("not an IAM OIDC provider ARN; want arn:<partition>:iam::<12-digit account>:oidc-provider/<url>, " +
	"like arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com")

// arnPattern is an IAM OIDC provider ARN: partition, 12-digit account, and
// the provider Url as IAM stores it (host[:port][/path], no scheme).
var arnPattern = regexp.MustCompile(`^arn:(aws(?:-[a-z]+)*):iam::([0-9]{12}):oidc-provider/([A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[^\s]*)?)$`)

// ARN is an IAM OIDC provider ARN's parts.
type ARN struct {
	Partition string
	Account   string
	// URL is the provider Url as IAM stores it: host[:port][/path], no scheme.
	URL string
}

// Host is the URL's host[:port].
func (a ARN) Host() string {
	host, _, _ := strings.Cut(a.URL, "/")
	return host
}

// ParseARN is the one parser of IAM OIDC provider ARNs: every input of one
// (CLI flags, manual payloads, CloudTrail events) and every reader of its
// parts (the engine's work order and grouping host, the findings'
// partition) goes through it. The error wraps ErrNotARN and quotes arn.
func ParseARN(arn string) (ARN, error) {
	m := arnPattern.FindStringSubmatch(arn)
	if m == nil {
		return ARN{}, fmt.Errorf("%q: %w", arn, ErrNotARN)
	}
	return ARN{Partition: m[1], Account: m[2], URL: m[3]}, nil
}
