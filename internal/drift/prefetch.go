package drift

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/thumbprint-drift/thumbprint-drift/internal/oidcprovider"
	"github.com/thumbprint-drift/thumbprint-drift/internal/thumbprint"
)

// urlOfARN is the provider Url in an OIDC provider ARN, "" when arn is not one.
func urlOfARN(arn string) string {
	a, _ := oidcprovider.ParseARN(arn)
	return a.URL
}

// alertHost is the host of a provider Url or host:port as alerts group by
// it: host[:port], the port left out when it is 443. A Url that does not
// parse is returned as given, without its path.
func alertHost(urlOrHost string) string {
	if urlOrHost == "" {
		return ""
	}
	host, err := thumbprint.IssuerHost(urlOrHost)
	if err != nil {
		host, _, _ = strings.Cut(urlOrHost, "/")
		return host
	}
	return strings.TrimSuffix(host, ":443")
}

// maxInFlight bounds the providers of one account being decided at once:
// most of them wait for their probe, which IAM calls do not wait for.
const maxInFlight = 512

// errNoIAMSlot: the run's deadline came while a provider waited for its turn
// to call IAM.
var errNoIAMSlot = errors.New("no IAM slot before the run's deadline")

// iamSlots makes at most n calls to the Providers at once (CONCURRENCY).
// The engine decides many providers at once, each waiting for its probe, so
// a provider holds a slot only while it reads or writes IAM: the IAM reads
// of all providers go on while their probes are in flight.
type iamSlots struct {
	Providers
	slots chan struct{}
}

func limitIAM(p Providers, n int) *iamSlots {
	return &iamSlots{Providers: p, slots: make(chan struct{}, max(n, 1))}
}

func (l *iamSlots) acquire(ctx context.Context) error {
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", errNoIAMSlot, ctx.Err())
	}
}

func (l *iamSlots) Get(ctx context.Context, arn string) (oidcprovider.Provider, error) {
	if err := l.acquire(ctx); err != nil {
		return oidcprovider.Provider{}, err
	}
	defer func() { <-l.slots }()
	return l.Providers.Get(ctx, arn)
}

func (l *iamSlots) UpdateIfUnchanged(ctx context.Context, arn string, expected, list []string) (oidcprovider.Provider, error) {
	if err := l.acquire(ctx); err != nil {
		return oidcprovider.Provider{}, err
	}
	defer func() { <-l.slots }()
	return l.Providers.UpdateIfUnchanged(ctx, arn, expected, list)
}
