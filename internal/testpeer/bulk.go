package testpeer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
)

// Parallel runs do(i) for i in [0, n), at most limit at once, and returns the
// first error; after an error no further i is started. moto_server is one
// Python process: a few calls in flight keep it busy, more only queue.
func Parallel(ctx context.Context, n, limit int, do func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(limit, 1))
	for i := range n {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if gctx.Err() != nil {
				return nil // an error came while this call waited for its slot
			}
			return do(gctx, i)
		})
	}
	return cmp.Or(g.Wait(), ctx.Err())
}

// CreateOrganization makes moto's default account (AccountID) the management
// account of a new organisation with n ACTIVE member accounts, created
// parallel at a time, and returns the members' ids, sorted.
func (m *Moto) CreateOrganization(ctx context.Context, n, parallel int) ([]string, error) {
	oc := organizations.NewFromConfig(m.Config())
	if _, err := oc.CreateOrganization(ctx, &organizations.CreateOrganizationInput{FeatureSet: orgtypes.OrganizationFeatureSetAll}); err != nil {
		return nil, fmt.Errorf("create organization: %w", err)
	}
	ids := make([]string, n)
	err := Parallel(ctx, n, parallel, func(ctx context.Context, i int) error {
		out, err := oc.CreateAccount(ctx, &organizations.CreateAccountInput{
			AccountName: aws.String(fmt.Sprintf("member-%05d", i)),
			Email:       aws.String(fmt.Sprintf("member-%05d@example.com", i)),
		})
		if err != nil {
			return fmt.Errorf("create account member-%05d: %w", i, err)
		}
		ids[i] = aws.ToString(out.CreateAccountStatus.AccountId)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(ids)
	return ids, nil
}

// NewProvider is an IAM OIDC provider to create in an account.
type NewProvider struct {
	Account     string // 12 digits
	URL         string // as IAM stores it: host[:port][/path], no scheme
	Thumbprints []string
}

// CreateProviders creates the providers, each in its own account (moto's
// x-moto-account-id: no role is assumed), parallel calls at a time, and
// returns their ARNs in the same order.
func (m *Moto) CreateProviders(ctx context.Context, ps []NewProvider, parallel int) ([]string, error) {
	client := iam.NewFromConfig(m.Config())
	arns := make([]string, len(ps))
	err := Parallel(ctx, len(ps), parallel, func(ctx context.Context, i int) error {
		p := ps[i]
		outARN, err := CreateProvider(ctx, client, &iam.CreateOpenIDConnectProviderInput{
			Url:            aws.String("https://" + p.URL),
			ClientIDList:   []string{"sts.amazonaws.com"},
			ThumbprintList: p.Thumbprints,
		}, func(o *iam.Options) { o.APIOptions = append(o.APIOptions, AsAccount(p.Account)) })
		if err != nil {
			return fmt.Errorf("create provider %s in %s: %w", p.URL, p.Account, err)
		}
		arns[i] = outARN
		return nil
	})
	return arns, err
}

// ResetStateTable deletes the table name if it exists and creates it again
// empty (CreateStateTable), so a benchmark starts a run from empty state.
func (m *Moto) ResetStateTable(ctx context.Context, name string) error {
	_, err := dynamodb.NewFromConfig(m.Config()).DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	var missing *ddbtypes.ResourceNotFoundException
	if err != nil && !errors.As(err, &missing) {
		return fmt.Errorf("delete table %s: %w", name, err)
	}
	return CreateStateTable(ctx, m.Config(), name)
}
