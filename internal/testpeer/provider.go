package testpeer

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// ProviderCreator is the part of the IAM client CreateProvider calls.
type ProviderCreator interface {
	CreateOpenIDConnectProvider(ctx context.Context, in *iam.CreateOpenIDConnectProviderInput, optFns ...func(*iam.Options)) (*iam.CreateOpenIDConnectProviderOutput, error)
	ListOpenIDConnectProviders(ctx context.Context, in *iam.ListOpenIDConnectProvidersInput, optFns ...func(*iam.Options)) (*iam.ListOpenIDConnectProvidersOutput, error)
}

var _ ProviderCreator = (*iam.Client)(nil)

// CreateProvider creates an IAM OIDC provider and returns its ARN. A create
// that the SDK retried after its first attempt landed (moto under load can
// reset a kept-alive connection) answers EntityAlreadyExists: the provider is
// there as asked, so its ARN is looked up and returned.
func CreateProvider(ctx context.Context, api ProviderCreator, in *iam.CreateOpenIDConnectProviderInput, optFns ...func(*iam.Options)) (string, error) {
	out, err := api.CreateOpenIDConnectProvider(ctx, in, optFns...)
	if err == nil {
		return aws.ToString(out.OpenIDConnectProviderArn), nil
	}
	var exists *iamtypes.EntityAlreadyExistsException
	if !errors.As(err, &exists) {
		return "", fmt.Errorf("create provider %s: %w", aws.ToString(in.Url), err)
	}
	url := strings.TrimPrefix(aws.ToString(in.Url), "https://")
	list, lerr := api.ListOpenIDConnectProviders(ctx, &iam.ListOpenIDConnectProvidersInput{}, optFns...)
	if lerr != nil {
		return "", fmt.Errorf("create provider %s: %w; then listing: %w", url, err, lerr)
	}
	for _, p := range list.OpenIDConnectProviderList {
		if arn := aws.ToString(p.Arn); strings.HasSuffix(arn, ":oidc-provider/"+url) {
			return arn, nil
		}
	}
	return "", fmt.Errorf("create provider %s: %w, and no such provider is listed", url, err)
}
