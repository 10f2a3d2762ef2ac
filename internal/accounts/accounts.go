// Package accounts finds the AWS accounts a run checks (a list of role ARNs,
// or every active account of the organisation) and the credentials for each.
package accounts

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// SessionName is the role session name of every AssumeRole, so member
// accounts' CloudTrail shows who changed their providers.
const SessionName = "thumbprint-drift"

// STSAPI is the part of the STS client this package calls.
type STSAPI interface {
	AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleOutput, error)
	GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, optFns ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// OrgAPI is the part of the Organizations client this package calls.
type OrgAPI interface {
	organizations.ListAccountsAPIClient
	DescribeOrganization(ctx context.Context, in *organizations.DescribeOrganizationInput, optFns ...func(*organizations.Options)) (*organizations.DescribeOrganizationOutput, error)
}

var (
	_ STSAPI = (*sts.Client)(nil)
	_ OrgAPI = (*organizations.Client)(nil)
)

// Target is one account to check.
type Target struct {
	AccountID string
	// RoleARN is assumed to reach the account; empty means the caller's own
	// credentials (the function's own account), or nothing when Skip is set.
	RoleARN string
	// Skip, when not empty, says why the account is listed but not checked:
	// nothing is assumed there.
	Skip string
}

// FromRoles turns role ARNs into targets, in the order given.
func FromRoles(roleARNs []string) []Target {
	out := make([]Target, 0, len(roleARNs))
	for _, arn := range roleARNs {
		out = append(out, Target{AccountID: AccountOf(arn), RoleARN: arn})
	}
	return out
}

// Caller is who the function runs as.
type Caller struct {
	AccountID string
	Partition string
}

// WhoAmI asks STS for the caller's account and partition.
func WhoAmI(ctx context.Context, api STSAPI) (Caller, error) {
	out, err := api.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return Caller{}, fmt.Errorf("get caller identity: %w", err)
	}
	arn := aws.ToString(out.Arn)
	partition := "aws"
	if parts := strings.SplitN(arn, ":", 3); len(parts) == 3 && parts[1] != "" {
		partition = parts[1]
	}
	return Caller{AccountID: aws.ToString(out.Account), Partition: partition}, nil
}

// OrgOptions say how FromOrganization reaches the accounts.
type OrgOptions struct {
	// RoleName is the role assumed in every account but the caller's own.
	RoleName string
	// IncludeManagement checks the management account through RoleName when
	// the caller is not the management account (a delegated administrator).
	// Off, the management account is listed with Skip set, because
	// service-managed StackSets never deploy the member role there.
	IncludeManagement bool
}

// FromOrganization lists the organisation's accounts and returns a target for
// each ACTIVE one: the role assumed in members, the caller's own credentials
// in its own account. Run from a delegated administrator, the management
// account (learnt from DescribeOrganization) is a target with Skip set,
// unless opts.IncludeManagement. Suspended or closing accounts are left out.
// Sorted by account id.
func FromOrganization(ctx context.Context, api OrgAPI, caller Caller, opts OrgOptions) ([]Target, error) {
	management, err := ManagementAccount(ctx, api)
	if err != nil {
		return nil, err
	}
	var out []Target
	p := organizations.NewListAccountsPaginator(api, &organizations.ListAccountsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list organization accounts: %w", err)
		}
		for _, a := range page.Accounts {
			if !active(a) {
				continue
			}
			out = append(out, OrgTarget(aws.ToString(a.Id), caller, management, opts))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AccountID < out[j].AccountID })
	return out, nil
}

// ManagementAccount asks Organizations for the organisation's management account.
func ManagementAccount(ctx context.Context, api OrgAPI) (string, error) {
	org, err := api.DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{})
	if err != nil {
		return "", fmt.Errorf("describe organization (to learn its management account): %w", err)
	}
	var management string
	if org.Organization != nil {
		management = aws.ToString(org.Organization.MasterAccountId)
	}
	if management == "" {
		return "", fmt.Errorf("describe organization: no management account id in the answer")
	}
	return management, nil
}

// OrgTarget is how account id of the organisation whose management account
// is management is reached: the caller's own credentials in its own account,
// skipped in the management account seen from a delegated administrator
// (unless opts.IncludeManagement), else the role opts.RoleName.
func OrgTarget(id string, caller Caller, management string, opts OrgOptions) Target {
	t := Target{AccountID: id}
	switch {
	case id == caller.AccountID:
		// own credentials
	case id == management && !opts.IncludeManagement:
		t.Skip = managementSkipReason(id, caller.AccountID, opts.RoleName)
	default:
		t.RoleARN = fmt.Sprintf("arn:%s:iam::%s:role/%s", caller.Partition, id, opts.RoleName)
	}
	return t
}

// managementSkipReason is why the management account is not checked from a
// delegated administrator, and how to check it anyway.
func managementSkipReason(management, caller, roleName string) string {
	return fmt.Sprintf("management account of the organisation, not checked from delegated administrator %s "+
		"(service-managed StackSets never deploy the member role there); to check it, create role %s in account %s "+
		"and set ORG_INCLUDE_MANAGEMENT_ACCOUNT=true", caller, roleName, management)
}

func active(a orgtypes.Account) bool {
	if a.State != "" {
		return a.State == orgtypes.AccountStateActive
	}
	return a.Status == orgtypes.AccountStatusActive
}

// Credentials returns cached credentials for roleARN, assumed through api with
// the session name thumbprint-drift and externalID when set.
func Credentials(api STSAPI, roleARN, externalID string) aws.CredentialsProvider {
	return aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(api, roleARN, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = SessionName
		if externalID != "" {
			o.ExternalID = aws.String(externalID)
		}
	}))
}

// AccountOf returns the account field of an ARN ("" when it has none).
func AccountOf(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}
