package fleet

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go/middleware"

	"github.com/thumbprint-drift/thumbprint-drift/internal/awsclient"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

// OrgSpec is an organisation world.
type OrgSpec struct {
	// Members is the number of member accounts, each holding every provider
	// of Fleet (the same Urls: GitHub Actions, GitLab, EKS appear in most
	// accounts of an organisation).
	Members int
	Fleet   Spec
	// AWSLatency is added to every IAM and STS call.
	AWSLatency time.Duration
	// Parallel is how many creates are in flight (moto answers one at a time).
	Parallel int
}

// Org is a moto organisation over a fleet: moto's default account manages
// it; its members hold the fleet's providers; AWS is reached through an
// AWSProxy adding the latency to IAM and STS; alerts go to an SNS topic read
// back through SQS.
type Org struct {
	*Fleet
	// Members are the member account ids, sorted.
	Members []string
	// ARNs are the providers, ARNs[member][provider].
	ARNs [][]string
	// AWS is the proxy in front of moto.
	AWS    *testpeer.AWSProxy
	Alerts *testpeer.AlertQueue
	moto   *testpeer.Moto
}

// StartOrg builds the organisation in m, which should be empty. On error
// what was started is stopped.
func StartOrg(ctx context.Context, m *testpeer.Moto, root *testidp.CA, spec OrgSpec) (*Org, error) {
	f, err := Start(root, spec.Fleet)
	if err != nil {
		return nil, err
	}
	o := &Org{Fleet: f, moto: m}
	if err := o.build(ctx, spec); err != nil {
		o.Close()
		return nil, err
	}
	return o, nil
}

func (o *Org) build(ctx context.Context, spec OrgSpec) error {
	var err error
	if o.Members, err = o.moto.CreateOrganization(ctx, spec.Members, spec.Parallel); err != nil {
		return err
	}
	if o.ARNs, err = o.Seed(ctx, o.moto, o.Members, spec.Parallel); err != nil {
		return err
	}
	if o.AWS, err = testpeer.StartAWSProxy(o.moto, map[string]time.Duration{"iam": spec.AWSLatency, "sts": spec.AWSLatency}); err != nil {
		return err
	}
	o.Alerts, err = testpeer.NewAlertQueue(ctx, o.moto.Config(), "thumbprint-drift-org")
	return err
}

// Close stops the hosts and the proxy.
func (o *Org) Close() {
	if o.AWS != nil {
		o.AWS.Close()
	}
	o.Fleet.Close()
}

// AWSConfig is an SDK configuration as the function's, for in-process runs:
// every service through the proxy, the production retryer and shared HTTP
// client (as awsclient.Load gives), then apiOptions (a testpeer.CallMeter's).
func (o *Org) AWSConfig(apiOptions ...func(*middleware.Stack) error) aws.Config {
	cfg := o.moto.Config()
	cfg.BaseEndpoint, cfg.HTTPClient = aws.String(o.AWS.URL), awsclient.NewHTTPClient()
	cfg.Retryer, cfg.RetryMaxAttempts = awsclient.NewRetryer, 0
	cfg.APIOptions = append(slices.Clone(cfg.APIOptions), apiOptions...)
	return cfg
}

// Env is the same for a function process (after testpeer.FunctionEnv's, so
// its endpoint wins): every service through the proxy, and the topic.
func (o *Org) Env() []string {
	return append(o.AWS.Env(), "SNS_TOPIC_ARN="+o.Alerts.TopicARN)
}

// TrustInSystemPool makes root Go's system pool for this process, as
// SSL_CERT_FILE makes it for a function process: the production wiring's
// prober verifies against the system pool. It writes root into dir and points
// SSL_CERT_FILE at it. Go reads SSL_CERT_FILE once, when the pool is first
// needed, so call it before anything in the process needs it; it fails when
// root is not in the pool it loads. restore puts the variable back, so
// processes started later see the environment as before; the loaded pool stays.
func TrustInSystemPool(root *testidp.CA, dir string) (restore func(), err error) {
	file := filepath.Join(dir, "system-pool-root.pem")
	if err := os.WriteFile(file, root.PEM(), 0o600); err != nil {
		return nil, err
	}
	old, had := os.LookupEnv("SSL_CERT_FILE")
	restore = func() {
		if had {
			os.Setenv("SSL_CERT_FILE", old)
		} else {
			os.Unsetenv("SSL_CERT_FILE")
		}
	}
	if err := os.Setenv("SSL_CERT_FILE", file); err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err == nil {
		_, err = root.Cert.Verify(x509.VerifyOptions{Roots: pool})
	}
	if err != nil {
		restore()
		return nil, fmt.Errorf("%s is not in Go's system pool (loaded before SSL_CERT_FILE was set?): %w", root.Cert.Subject.CommonName, err)
	}
	return restore, nil
}
