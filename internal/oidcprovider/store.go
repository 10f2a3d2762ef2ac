// Package oidcprovider reads IAM OpenID Connect providers and writes their
// thumbprint lists (one compare-and-swap, UpdateIfUnchanged, for every writer)
// through a small interface over the IAM client, and parses their ARNs.
package oidcprovider

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
)

// API is the part of the IAM client this package calls.
type API interface {
	ListOpenIDConnectProviders(ctx context.Context, in *iam.ListOpenIDConnectProvidersInput, optFns ...func(*iam.Options)) (*iam.ListOpenIDConnectProvidersOutput, error)
	GetOpenIDConnectProvider(ctx context.Context, in *iam.GetOpenIDConnectProviderInput, optFns ...func(*iam.Options)) (*iam.GetOpenIDConnectProviderOutput, error)
	UpdateOpenIDConnectProviderThumbprint(ctx context.Context, in *iam.UpdateOpenIDConnectProviderThumbprintInput, optFns ...func(*iam.Options)) (*iam.UpdateOpenIDConnectProviderThumbprintOutput, error)
}

var _ API = (*iam.Client)(nil)

// Errors callers branch on; returned errors wrap one of them and the IAM error.
var (
	// ErrNotFound: the provider does not exist (for example deleted since listing).
	ErrNotFound = errors.New("provider not found")
	// ErrAccessDenied: IAM refused the caller (the provider is of another
	// account, or the role lacks the permission).
	ErrAccessDenied = errors.New("access denied")
	// ErrInvalidInput: IAM refused the request's values.
	ErrInvalidInput = errors.New("invalid input")
	// ErrServiceFailure: IAM failed the request on its side.
	ErrServiceFailure = errors.New("IAM service failure")
	// ErrInvalidList: a thumbprint list was refused before it was sent.
	ErrInvalidList = errors.New("invalid thumbprint list")
)

// MaxThumbprints is the most entries IAM keeps in a provider's ThumbprintList.
const MaxThumbprints = 5

// Provider is one IAM OIDC provider as stored.
type Provider struct {
	ARN string
	// URL is the issuer without scheme, as IAM stores it.
	URL string
	// Thumbprints is the stored ThumbprintList, in stored order.
	Thumbprints []string
	// Tags are the provider's tags by key.
	Tags map[string]string
}

// Store lists, reads and updates providers.
type Store struct {
	api API
}

// New returns a Store calling api (an *iam.Client in production).
func New(api API) *Store { return &Store{api: api} }

// List returns the ARNs of the account's OIDC providers, sorted.
func (s *Store) List(ctx context.Context) ([]string, error) {
	out, err := s.api.ListOpenIDConnectProviders(ctx, &iam.ListOpenIDConnectProvidersInput{})
	if err != nil {
		return nil, fmt.Errorf("list OIDC providers: %w", classify(err))
	}
	arns := make([]string, 0, len(out.OpenIDConnectProviderList))
	for _, p := range out.OpenIDConnectProviderList {
		if arn := aws.ToString(p.Arn); arn != "" {
			arns = append(arns, arn)
		}
	}
	sort.Strings(arns)
	return arns, nil
}

// Get reads one provider with its tags. A provider that no longer exists gives
// an error wrapping ErrNotFound.
func (s *Store) Get(ctx context.Context, arn string) (Provider, error) {
	out, err := s.api.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
	if err != nil {
		return Provider{}, fmt.Errorf("get provider %s: %w", arn, classify(err))
	}
	p := Provider{
		ARN:         arn,
		URL:         strings.TrimPrefix(aws.ToString(out.Url), "https://"),
		Thumbprints: append([]string(nil), out.ThumbprintList...),
		Tags:        make(map[string]string, len(out.Tags)),
	}
	for _, t := range out.Tags {
		p.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return p, nil
}

// update replaces the provider's ThumbprintList with list, after checking it
// (1 to 5 entries, each 40 hex characters): IAM would refuse anything else, and
// an empty list must never be written.
func (s *Store) update(ctx context.Context, arn string, list []string) error {
	if err := ValidateList(list); err != nil {
		return fmt.Errorf("update thumbprints of %s: %w", arn, err)
	}
	_, err := s.api.UpdateOpenIDConnectProviderThumbprint(ctx, &iam.UpdateOpenIDConnectProviderThumbprintInput{
		OpenIDConnectProviderArn: aws.String(arn),
		ThumbprintList:           append([]string(nil), list...),
	})
	if err != nil {
		return fmt.Errorf("update thumbprints of %s: %w", arn, classify(err))
	}
	return nil
}

// ErrChanged: the provider's list is no longer the one the caller decided
// on (another writer changed it); nothing was written.
var ErrChanged = errors.New("thumbprint list changed since it was read")

// UpdateIfUnchanged is the compare-and-swap of a provider's list, the one
// every writer uses: it reads the provider again just before writing and
// writes list only when the stored list is still expected (compared as
// SameList), so that no writer overwrites another's change. IAM has no
// conditional write; the read right before the write is the narrowest
// window there is. It returns the provider as read: when its list is no
// longer expected, with an error wrapping ErrChanged and nothing written;
// a provider deleted in between gives an error wrapping ErrNotFound.
func (s *Store) UpdateIfUnchanged(ctx context.Context, arn string, expected, list []string) (Provider, error) {
	cur, err := s.Get(ctx, arn)
	if err != nil {
		return Provider{}, fmt.Errorf("re-read before write: %w", err)
	}
	if !SameList(cur.Thumbprints, expected) {
		return cur, fmt.Errorf("update thumbprints of %s: %w: %q, not %q", arn, ErrChanged, cur.Thumbprints, expected)
	}
	return cur, s.update(ctx, arn, list)
}

// ValidThumbprint reports whether s is 40 hexadecimal characters (either case).
func ValidThumbprint(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// SameList reports whether a and b hold the same thumbprints in the same
// order, ignoring case.
func SameList(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !strings.EqualFold(a[i], b[i]) {
			return false
		}
	}
	return true
}

// ValidateList checks a list before it is sent: 1 to 5 entries, each 40 hex
// characters, no duplicates. The error wraps ErrInvalidList.
func ValidateList(list []string) error {
	if len(list) == 0 {
		return fmt.Errorf("%w: empty", ErrInvalidList)
	}
	if len(list) > MaxThumbprints {
		return fmt.Errorf("%w: %d entries, at most %d", ErrInvalidList, len(list), MaxThumbprints)
	}
	seen := make(map[string]bool, len(list))
	for _, t := range list {
		if !ValidThumbprint(t) {
			return fmt.Errorf("%w: entry %q is not 40 hex characters", ErrInvalidList, t)
		}
		k := strings.ToLower(t)
		if seen[k] {
			return fmt.Errorf("%w: entry %q repeated", ErrInvalidList, t)
		}
		seen[k] = true
	}
	return nil
}

// classify wraps err with the sentinel matching the IAM error, keeping err.
func classify(err error) error {
	var nse *types.NoSuchEntityException
	if errors.As(err, &nse) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	var inv *types.InvalidInputException
	if errors.As(err, &inv) {
		return fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	var sf *types.ServiceFailureException
	if errors.As(err, &sf) {
		return fmt.Errorf("%w: %w", ErrServiceFailure, err)
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NoSuchEntity":
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		case "AccessDenied", "AccessDeniedException":
			return fmt.Errorf("%w: %w", ErrAccessDenied, err)
		case "InvalidInput", "ValidationError":
			return fmt.Errorf("%w: %w", ErrInvalidInput, err)
		case "ServiceFailure":
			return fmt.Errorf("%w: %w", ErrServiceFailure, err)
		}
	}
	return err
}
