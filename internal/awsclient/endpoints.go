package awsclient

import (
	"context"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithyendpoints "github.com/aws/smithy-go/endpoints"
)

// The SDK evaluates a service's endpoint rules on every call (10 to 20 us
// and 10 allocations each): an organisation run makes 13 calls per account
// with the same parameters. These resolvers remember the SDK's answer per
// distinct parameters, for every client of the service in the process (one
// IAM client per member account). Errors are not remembered.

// maxEndpoints bounds each memo: past it, answers are resolved, not kept.
// A run sees one set of parameters per service (region, FIPS, dual-stack,
// AWS_ENDPOINT_URL, DynamoDB's account).
const maxEndpoints = 64

var (
	iamEndpoints = newEndpointMemo(iam.NewDefaultEndpointResolverV2().ResolveEndpoint, func(p iam.EndpointParameters) string {
		return endpointKey([]*string{p.Region, p.Endpoint}, p.UseFIPS, p.UseDualStack)
	})
	stsEndpoints = newEndpointMemo(sts.NewDefaultEndpointResolverV2().ResolveEndpoint, func(p sts.EndpointParameters) string {
		return endpointKey([]*string{p.Region, p.Endpoint}, p.UseFIPS, p.UseDualStack, p.UseGlobalEndpoint)
	})
	dynamoDBEndpoints = newEndpointMemo(dynamodb.NewDefaultEndpointResolverV2().ResolveEndpoint, func(p dynamodb.EndpointParameters) string {
		list := strings.Join(p.ResourceArnList, "\x01")
		return endpointKey([]*string{p.Region, p.Endpoint, p.AccountId, p.AccountIdEndpointMode, p.ResourceArn, &list},
			p.UseFIPS, p.UseDualStack, p.IsSearchOperation)
	})
)

// IAMOptions makes an IAM client share the process's endpoint memo.
func IAMOptions(o *iam.Options) { o.EndpointResolverV2 = iamEndpoints }

// STSOptions makes an STS client share the process's endpoint memo.
func STSOptions(o *sts.Options) { o.EndpointResolverV2 = stsEndpoints }

// DynamoDBOptions makes a DynamoDB client share the process's endpoint memo.
func DynamoDBOptions(o *dynamodb.Options) { o.EndpointResolverV2 = dynamoDBEndpoints }

// endpointMemo is a service's endpoint resolver that remembers answers by
// key(parameters).
type endpointMemo[P any] struct {
	resolve func(context.Context, P) (smithyendpoints.Endpoint, error)
	key     func(P) string
	mu      sync.RWMutex
	known   map[string]smithyendpoints.Endpoint
}

func newEndpointMemo[P any](resolve func(context.Context, P) (smithyendpoints.Endpoint, error), key func(P) string) *endpointMemo[P] {
	return &endpointMemo[P]{resolve: resolve, key: key, known: make(map[string]smithyendpoints.Endpoint)}
}

// ResolveEndpoint answers as the SDK's resolver does, from memory when it can.
// Each answer is the caller's own copy (its headers too); the properties,
// which the SDK only reads, are shared.
func (m *endpointMemo[P]) ResolveEndpoint(ctx context.Context, params P) (smithyendpoints.Endpoint, error) {
	k := m.key(params)
	m.mu.RLock()
	e, ok := m.known[k]
	m.mu.RUnlock()
	if !ok {
		var err error
		if e, err = m.resolve(ctx, params); err != nil {
			return e, err
		}
		m.mu.Lock()
		if len(m.known) < maxEndpoints {
			m.known[k] = e
		}
		m.mu.Unlock()
	}
	e.Headers = e.Headers.Clone()
	return e, nil
}

// endpointKey is the parameters as one string: each string set or not and
// its value, each bool unset, false or true.
func endpointKey(strs []*string, bools ...*bool) string {
	var b strings.Builder
	for _, s := range strs {
		if s == nil {
			b.WriteString("-\x00")
			continue
		}
		b.WriteByte('=')
		b.WriteString(*s)
		b.WriteByte(0)
	}
	for _, v := range bools {
		switch {
		case v == nil:
			b.WriteByte('-')
		case *v:
			b.WriteByte('t')
		default:
			b.WriteByte('f')
		}
	}
	return b.String()
}
