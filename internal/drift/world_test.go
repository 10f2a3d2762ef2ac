package drift_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/app"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/oidcprovider"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
	"github.com/thumbprint-drift/thumbprint-drift/internal/thumbprint"
)

// world is one test's real peers: moto_server (IAM, SNS, SQS), an SNS topic with
// an SQS queue subscribed, and two CAs: "public" (trusted by the probe) and
// "private" (not).
type world struct {
	t        *testing.T
	moto     *testpeer.Moto
	iam      *iam.Client
	sns      *sns.Client
	alerts   *testpeer.AlertQueue
	topicARN string
	api      *faultyIAM

	public, private *testidp.CA
	publicInt       *testidp.CA
	roots           *x509.CertPool
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	m := peertest.Moto(t)
	cfg := m.Config()
	w := &world{t: t, moto: m, iam: iam.NewFromConfig(cfg), sns: sns.NewFromConfig(cfg)}
	w.api = &faultyIAM{API: w.iam}

	q, err := testpeer.NewAlertQueue(ctx, cfg, "drift")
	if err != nil {
		t.Fatal(err)
	}
	w.alerts, w.topicARN = q, q.TopicARN

	if w.public, err = testidp.NewRoot("Public Test Root"); err != nil {
		t.Fatal(err)
	}
	if w.publicInt, err = w.public.Intermediate("Public Test Intermediate"); err != nil {
		t.Fatal(err)
	}
	if w.private, err = testidp.NewRoot("Private Corp Root"); err != nil {
		t.Fatal(err)
	}
	w.roots = x509.NewCertPool()
	w.roots.AddCert(w.public.Cert)
	return w
}

// chain returns a served chain [leaf, issuer] for 127.0.0.1 under ca and its
// expected thumbprint (the last certificate sent).
func (w *world) chain(ca *testidp.CA) (tls.Certificate, string) {
	w.t.Helper()
	leaf, err := ca.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		w.t.Fatal(err)
	}
	return testidp.Chain(leaf, ca), testidp.Thumbprint(ca.DER)
}

// publicChain is a chain the probe trusts: [leaf, public intermediate].
func (w *world) publicChain() (tls.Certificate, string) { return w.chain(w.publicInt) }

// privateChain is a chain from a CA the probe does not trust.
func (w *world) privateChain() (tls.Certificate, string) { return w.chain(w.private) }

// idp starts an identity provider at path serving chains.
func (w *world) idp(path string, chains ...tls.Certificate) *testidp.Server {
	w.t.Helper()
	s, err := testidp.Start(testidp.ServerOptions{Chains: chains, Path: path})
	if err != nil {
		w.t.Fatalf("start idp: %v", err)
	}
	w.t.Cleanup(func() { s.Close() })
	return s
}

func (w *world) provider(url string, thumbprints []string, tags map[string]string) string {
	w.t.Helper()
	in := &iam.CreateOpenIDConnectProviderInput{Url: aws.String("https://" + url), ThumbprintList: thumbprints, ClientIDList: []string{"sts.amazonaws.com"}}
	for k, v := range tags {
		in.Tags = append(in.Tags, iamtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	arn, err := testpeer.CreateProvider(context.Background(), w.iam, in)
	if err != nil {
		w.t.Fatal(err)
	}
	return arn
}

func (w *world) stored(arn string) []string {
	w.t.Helper()
	out, err := w.iam.GetOpenIDConnectProvider(context.Background(), &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
	if err != nil {
		w.t.Fatalf("get %s: %v", arn, err)
	}
	return out.ThumbprintList
}

// noDNSDial dials loopback addresses and answers every name as unresolvable,
// so tests never send DNS queries.
func noDNSDial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if net.ParseIP(host) == nil {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// setup is what a test's service is built from: the engine's options and
// the notify pipeline's.
type setup struct {
	drift.Options
	pipe alert.Options
}

type engineOpt func(*setup)

func withMode(m config.Mode) engineOpt { return func(o *setup) { o.Mode = m } }

// withProbeTimeout probes with a time limit of d per connection (PROBE_TIMEOUT).
func (w *world) withProbeTimeout(d time.Duration) engineOpt {
	return func(o *setup) {
		prober := thumbprint.New(thumbprint.Options{Handshakes: 2, Timeout: d, RootCAs: w.roots, DialContext: noDNSDial})
		o.NewProbe = drift.ProbeRuns(prober)
	}
}

// probeWatch counts what an engine run does with its probe run: probes
// made, probes in flight when it ended the probe run, and its ends.
type probeWatch struct {
	probes, inFlight, inFlightAtDone, done atomic.Int64
}

// opt wraps the engine's probe runs to count.
func (pw *probeWatch) opt(o *setup) {
	newProbe := o.NewProbe
	o.NewProbe = func() (drift.ProbeFunc, func()) {
		probe, done := newProbe()
		return func(ctx context.Context, providerURL string) (*thumbprint.Result, error) {
				pw.probes.Add(1)
				pw.inFlight.Add(1)
				defer pw.inFlight.Add(-1)
				return probe(ctx, providerURL)
			}, func() {
				pw.inFlightAtDone.Add(pw.inFlight.Load())
				pw.done.Add(1)
				done()
			}
	}
}

// engine builds the engine on the real clients, through the fault-injecting
// IAM wrapper, with the world's trusted roots, and the notify pipeline to
// the world's topic: a run is one invocation's.
func (w *world) engine(opts ...engineOpt) *app.Service {
	prober := thumbprint.New(thumbprint.Options{Handshakes: 2, Timeout: 5 * time.Second, RootCAs: w.roots, DialContext: noDNSDial})
	o := setup{Options: drift.Options{
		Providers:   oidcprovider.New(w.api),
		NewProbe:    drift.ProbeRuns(prober),
		Mode:        config.ModeRemediate,
		Concurrency: 4,
	}, pipe: alert.Options{Integrations: []alert.Integration{alert.NewSNSPublisher(w.sns, w.topicARN)}}}
	for _, f := range opts {
		f(&o)
	}
	if o.pipe.Now == nil {
		o.pipe.Now = o.Now
	}
	return &app.Service{Engine: drift.New(o.Options), Pipeline: alert.New(o.pipe)}
}

// messages drains the alert queue.
func (w *world) messages() []testpeer.Delivered {
	w.t.Helper()
	msgs, err := w.alerts.Drain(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return msgs
}

// faultyIAM wraps the real IAM client: it counts updates and runs hooks that
// inject what moto cannot produce (failures, a concurrent writer, a deletion
// between list and get).
type faultyIAM struct {
	oidcprovider.API
	updates   atomic.Int64
	mu        sync.Mutex
	onGet     func(arn string, n int) error // n counts Gets of arn, from 1
	onUpdate  func(arn string) error
	getCounts map[string]int
}

func (f *faultyIAM) GetOpenIDConnectProvider(ctx context.Context, in *iam.GetOpenIDConnectProviderInput, optFns ...func(*iam.Options)) (*iam.GetOpenIDConnectProviderOutput, error) {
	arn := aws.ToString(in.OpenIDConnectProviderArn)
	f.mu.Lock()
	if f.getCounts == nil {
		f.getCounts = map[string]int{}
	}
	f.getCounts[arn]++
	n, hook := f.getCounts[arn], f.onGet
	f.mu.Unlock()
	if hook != nil {
		if err := hook(arn, n); err != nil {
			return nil, err
		}
	}
	return f.API.GetOpenIDConnectProvider(ctx, in, optFns...)
}

func (f *faultyIAM) UpdateOpenIDConnectProviderThumbprint(ctx context.Context, in *iam.UpdateOpenIDConnectProviderThumbprintInput, optFns ...func(*iam.Options)) (*iam.UpdateOpenIDConnectProviderThumbprintOutput, error) {
	f.mu.Lock()
	hook := f.onUpdate
	f.mu.Unlock()
	if hook != nil {
		if err := hook(aws.ToString(in.OpenIDConnectProviderArn)); err != nil {
			return nil, err
		}
	}
	f.updates.Add(1)
	return f.API.UpdateOpenIDConnectProviderThumbprint(ctx, in, optFns...)
}

func resultFor(t *testing.T, rep *drift.Report, arn string) drift.Result {
	t.Helper()
	for _, r := range rep.Results {
		if r.ProviderARN == arn {
			return r
		}
	}
	t.Fatalf("no result for %s in %+v", arn, rep.Results)
	return drift.Result{}
}

func list(s ...string) string { return strings.Join(s, ",") }

// sent is one result of a delivered (grouped) message.
type sent struct {
	Transition, Outcome string
	// Result is the result's object in the message's results list.
	Result map[string]any
	// Message is the message that listed it.
	Message testpeer.Delivered
}

// sentResults drains the alert queue and flattens its grouped messages
// into their results, in delivery order.
func (w *world) sentResults() []sent {
	w.t.Helper()
	var out []sent
	for _, m := range w.messages() {
		for _, r := range m.Results() {
			out = append(out, sent{Transition: m.Attr("transition"), Outcome: m.Attr("outcome"), Result: r, Message: m})
		}
	}
	return out
}

// sentByProvider is sentResults by provider ARN.
func (w *world) sentByProvider() map[string][]sent {
	w.t.Helper()
	out := map[string][]sent{}
	for _, s := range w.sentResults() {
		arn, _ := s.Result["provider_arn"].(string)
		out[arn] = append(out[arn], s)
	}
	return out
}
