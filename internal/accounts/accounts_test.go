package accounts_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
)

func TestAccountOf(t *testing.T) {
	for arn, want := range map[string]string{
		"arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com": "123456789012",
		"arn:aws-us-gov:iam::210987654321:role/x":                                     "210987654321",
		"arn:aws:iam::123456789012:oidc-provider/h:8443/a:b":                          "123456789012",
		"not-an-arn": "",
	} {
		if got := accounts.AccountOf(arn); got != want {
			t.Errorf("AccountOf(%q) = %q, want %q", arn, got, want)
		}
	}
}

type fakeSTS struct {
	accounts.STSAPI
	arn, account string
	err          error
}

func (f fakeSTS) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	return &sts.GetCallerIdentityOutput{Arn: aws.String(f.arn), Account: aws.String(f.account)}, f.err
}

func TestWhoAmIPartition(t *testing.T) {
	for _, tt := range []struct{ arn, partition string }{
		{"arn:aws:sts::111111111111:assumed-role/drift/fn", "aws"},
		{"arn:aws-cn:sts::111111111111:assumed-role/drift/fn", "aws-cn"},
		{"arn:aws-us-gov:iam::111111111111:user/bob", "aws-us-gov"},
	} {
		c, err := accounts.WhoAmI(context.Background(), fakeSTS{arn: tt.arn, account: "111111111111"})
		if err != nil || c.Partition != tt.partition || c.AccountID != "111111111111" {
			t.Errorf("WhoAmI(%s) = %+v, %v; want partition %s", tt.arn, c, err, tt.partition)
		}
	}
	boom := errors.New("expired token")
	if _, err := accounts.WhoAmI(context.Background(), fakeSTS{err: boom}); !errors.Is(err, boom) {
		t.Errorf("error %v not wrapped", err)
	}
}

// fakeOrg is the Organizations API as a delegated administrator sees it
// (moto's ListAccounts answers only the management account).
type fakeOrg struct {
	management  string
	describeErr error
	pages       [][]orgtypes.Account
}

func (f *fakeOrg) DescribeOrganization(context.Context, *organizations.DescribeOrganizationInput, ...func(*organizations.Options)) (*organizations.DescribeOrganizationOutput, error) {
	if f.describeErr != nil {
		return nil, f.describeErr
	}
	return &organizations.DescribeOrganizationOutput{Organization: &orgtypes.Organization{MasterAccountId: aws.String(f.management)}}, nil
}

func (f *fakeOrg) ListAccounts(_ context.Context, in *organizations.ListAccountsInput, _ ...func(*organizations.Options)) (*organizations.ListAccountsOutput, error) {
	i := 0
	if in.NextToken != nil {
		i = int((*in.NextToken)[0] - '0')
	}
	out := &organizations.ListAccountsOutput{Accounts: f.pages[i]}
	if i+1 < len(f.pages) {
		out.NextToken = aws.String(string(rune('0' + i + 1)))
	}
	return out, nil
}

func TestFromOrganization(t *testing.T) {
	acct := func(id string, state orgtypes.AccountState, status orgtypes.AccountStatus) orgtypes.Account {
		return orgtypes.Account{Id: aws.String(id), State: state, Status: status}
	}
	pages := [][]orgtypes.Account{
		{acct("333333333333", orgtypes.AccountStateActive, ""), acct("111111111111", orgtypes.AccountStateActive, ""), acct("222222222222", orgtypes.AccountStateActive, "")},
		{acct("444444444444", orgtypes.AccountStateSuspended, orgtypes.AccountStatusSuspended), acct("555555555555", "", orgtypes.AccountStatusActive), acct("666666666666", orgtypes.AccountStatePendingClosure, "")},
	}
	members := []accounts.Target{
		{AccountID: "333333333333", RoleARN: "arn:aws-cn:iam::333333333333:role/member"},
		{AccountID: "555555555555", RoleARN: "arn:aws-cn:iam::555555555555:role/member"}, // Status only (older API)
	}
	tests := []struct {
		name              string
		management        string
		includeManagement bool
		want              []accounts.Target // after 111111111111 and 222222222222
		skip              string
	}{
		{
			name:       "run in the management account",
			management: "111111111111",
			want:       []accounts.Target{{AccountID: "111111111111"}, {AccountID: "222222222222", RoleARN: "arn:aws-cn:iam::222222222222:role/member"}},
		},
		{
			name:       "run in a delegated administrator",
			management: "222222222222",
			want:       []accounts.Target{{AccountID: "111111111111"}, {AccountID: "222222222222"}},
			skip:       "222222222222",
		},
		{
			name:              "delegated administrator, management account opted in",
			management:        "222222222222",
			includeManagement: true,
			want:              []accounts.Target{{AccountID: "111111111111"}, {AccountID: "222222222222", RoleARN: "arn:aws-cn:iam::222222222222:role/member"}},
		},
		{
			name:              "opt-in run in the management account",
			management:        "111111111111",
			includeManagement: true,
			want:              []accounts.Target{{AccountID: "111111111111"}, {AccountID: "222222222222", RoleARN: "arn:aws-cn:iam::222222222222:role/member"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			org := &fakeOrg{management: tt.management, pages: pages}
			got, err := accounts.FromOrganization(context.Background(), org, accounts.Caller{AccountID: "111111111111", Partition: "aws-cn"},
				accounts.OrgOptions{RoleName: "member", IncludeManagement: tt.includeManagement})
			if err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if got[i].AccountID == tt.skip {
					for _, want := range []string{"management account", "delegated administrator 111111111111", "ORG_INCLUDE_MANAGEMENT_ACCOUNT=true", "role member"} {
						if !strings.Contains(got[i].Skip, want) {
							t.Errorf("skip reason %q lacks %q", got[i].Skip, want)
						}
					}
					got[i].Skip = ""
				} else if got[i].Skip != "" {
					t.Errorf("account %s skipped: %s", got[i].AccountID, got[i].Skip)
				}
			}
			want := append(tt.want, members...)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("FromOrganization = %+v\nwant %+v", got, want)
			}
		})
	}
	t.Run("describe organization fails", func(t *testing.T) {
		boom := errors.New("AccessDeniedException: not authorized to perform organizations:DescribeOrganization")
		_, err := accounts.FromOrganization(context.Background(), &fakeOrg{describeErr: boom, pages: pages}, accounts.Caller{AccountID: "111111111111"}, accounts.OrgOptions{RoleName: "member"})
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "describe organization") {
			t.Errorf("error %v, want the DescribeOrganization failure wrapped", err)
		}
	})
}

func TestFromRoles(t *testing.T) {
	got := accounts.FromRoles([]string{"arn:aws:iam::222222222222:role/a", "arn:aws:iam::111111111111:role/path/b"})
	want := []accounts.Target{{AccountID: "222222222222", RoleARN: "arn:aws:iam::222222222222:role/a"}, {AccountID: "111111111111", RoleARN: "arn:aws:iam::111111111111:role/path/b"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("FromRoles = %+v", got)
	}
}
