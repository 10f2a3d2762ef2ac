package iac

import (
	"strings"
)

// Resource names the resource that declares a provider in tool's code; empty
// when the tool has none the function knows of.
func Resource(tool Tool) string {
	switch tool {
	case Terraform:
		return "aws_iam_openid_connect_provider"
	case CloudFormation:
		return "AWS::IAM::OIDCProvider"
	case Pulumi:
		return "aws.iam.OpenIdConnectProvider"
	}
	return ""
}

// CodeFix is the change to make in the code that owns a provider so that it
// declares list, in that order (Terraform compares thumbprint_list in order):
// Terraform's thumbprint_list, CloudFormation's ThumbprintList (also CDK's
// native CfnOIDCProvider), Pulumi's thumbprintLists; for eksctl, other and
// unknown code, the AWS CLI command that writes the list (FixCommand). Empty
// when list is.
func CodeFix(tool Tool, arn string, list []string) string {
	if len(list) == 0 {
		return ""
	}
	switch tool {
	case Terraform:
		return "thumbprint_list = [" + quoted(list, ", ") + "]"
	case CloudFormation:
		var b strings.Builder
		b.WriteString("ThumbprintList:")
		for _, t := range list {
			b.WriteString("\n  - \"" + t + "\"")
		}
		return b.String()
	case Pulumi:
		return "thumbprintLists: [" + quoted(list, ", ") + "]"
	}
	return FixCommand(arn, list)
}

// quoted is list's entries in double quotes, joined by sep (thumbprints are
// hex: nothing to escape).
func quoted(list []string, sep string) string {
	q := make([]string, len(list))
	for i, t := range list {
		q[i] = `"` + t + `"`
	}
	return strings.Join(q, sep)
}

// FixCommand is the AWS CLI command that writes list to the provider arn.
func FixCommand(arn string, list []string) string {
	return "aws iam update-open-id-connect-provider-thumbprint --open-id-connect-provider-arn " +
		ShellQuote(arn) + " --thumbprint-list " + strings.Join(list, " ")
}

// ShellQuote quotes s for a POSIX shell unless it is made only of characters
// a shell leaves alone.
func ShellQuote(s string) string {
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(":/._-=+@,%", r)) {
			safe = false
			break
		}
	}
	if safe && s != "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
