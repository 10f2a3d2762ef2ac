package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	shtypes "github.com/aws/aws-sdk-go-v2/service/securityhub/types"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

// Names of what the demo creates in moto.
const (
	demoName   = "thumbprint-drift-demo"
	stateTable = demoName + "-state"
	eventBus   = "default"
)

// cleanups stops what the demo started, last started first.
type cleanups []func()

func (c *cleanups) add(f func()) { *c = append(*c, f) }

func (c *cleanups) run() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
	*c = nil
}

// provider is one IAM OIDC provider of the demo, numbered as printed.
type provider struct {
	n      int
	story  string
	url    string // as IAM stores it: host:port/path
	arn    string // "" until created
	stored string // the thumbprint it is created with
}

// world is everything the demo runs against.
type world struct {
	moto      *testpeer.Moto
	iam       *iam.Client
	hub       *securityhub.Client
	alerts    *testpeer.AlertQueue
	events    *testpeer.EventQueue
	trust     []string // SSL_CERT_FILE and SSL_CERT_DIR of the function
	providers []*provider
}

// startWorld starts moto_server with the topic and its queue, the event rule,
// the state table and Security Hub, then the identity providers, and creates
// the providers in IAM. What it starts is registered in c, also on failure.
func startWorld(ctx context.Context, c *cleanups, dir string) (*world, error) {
	m, err := testpeer.StartMoto(ctx)
	if errors.Is(err, testpeer.ErrMissing) {
		return nil, errors.New("moto_server not found on PATH: install it with pip install 'moto[server]'")
	} else if err != nil {
		return nil, err
	}
	c.add(m.Close)
	cfg := m.Config()
	w := &world{moto: m, iam: iam.NewFromConfig(cfg), hub: securityhub.NewFromConfig(cfg)}
	if w.alerts, err = testpeer.NewAlertQueue(ctx, cfg, demoName); err != nil {
		return nil, err
	}
	if w.events, err = testpeer.NewEventQueue(ctx, cfg, eventBus, demoName, alert.EventSource); err != nil {
		return nil, err
	}
	if err := testpeer.CreateStateTable(ctx, cfg, stateTable); err != nil {
		return nil, err
	}
	if _, err := w.hub.EnableSecurityHub(ctx, &securityhub.EnableSecurityHubInput{}); err != nil {
		return nil, fmt.Errorf("enable Security Hub: %w", err)
	}

	// A "public" root, the function's only trusted root, and a private one.
	public, err := testidp.NewRoot("Demo Public Root CA")
	if err != nil {
		return nil, err
	}
	private, err := testidp.NewRoot("Demo Corp Private Root CA")
	if err != nil {
		return nil, err
	}
	file, empty := filepath.Join(dir, "public-root.pem"), filepath.Join(dir, "no-system-roots")
	if err := errors.Join(os.WriteFile(file, public.PEM(), 0o600), os.Mkdir(empty, 0o700)); err != nil {
		return nil, fmt.Errorf("trust store: %w", err)
	}
	w.trust = []string{"SSL_CERT_FILE=" + file, "SSL_CERT_DIR=" + empty}

	// Each host serves [leaf, intermediate] under its own intermediate CA;
	// its providers store the thumbprint of the intermediate named stored.
	const year, tenDays = 365 * 24 * time.Hour, 10 * 24 * time.Hour
	for _, h := range []struct {
		root           *testidp.CA
		serve, stored  string // "" serve: nothing listens
		valid          time.Duration
		caValid        time.Duration // of the stored intermediate; 0: ten years
		paths, stories []string
		createdLater   bool // in scene 5 or 6, not at start
	}{
		{root: public, serve: "Demo Public Intermediate A", stored: "Demo Public Intermediate A", valid: year,
			paths: []string{"/ci"}, stories: []string{"public chain; stores its thumbprint"}},
		{root: public, serve: "Demo Public Intermediate B2", stored: "Demo Public Intermediate B1", valid: year,
			paths: []string{"/sso"}, stories: []string{"public chain, intermediate rotated; stores the retired one"}},
		{root: private, serve: "Demo Corp Issuing CA 2", stored: "Demo Corp Issuing CA 1", valid: year, paths: []string{"/team-a", "/team-b"},
			stories: []string{"private chain, intermediate rotated; stores the retired one", "the same host and stale list (another team's provider)"}},
		{root: public, stored: "Demo Public Intermediate D", paths: []string{"/retired"}, stories: []string{"nothing listens on its port"}},
		{root: private, serve: "Demo Corp Issuing CA 3", stored: "Demo Corp Issuing CA 3", valid: year, caValid: tenDays, paths: []string{"/new-tenant"},
			stories: []string{"private chain, in sync, its issuing CA (the thumbprint) expires in 10 days (created in scene 5)"}, createdLater: true},
		{root: public, serve: "Demo Public Intermediate G2", stored: "Demo Public Intermediate G1", valid: year, paths: []string{"/infra"},
			stories: []string{"public chain, intermediate rotated; declared in Terraform (created in scene 6)"}, createdLater: true},
	} {
		stored, err := h.root.Intermediate(h.stored)
		if h.caValid > 0 {
			stored, err = h.root.IntermediateUntil(h.stored, time.Now().Add(h.caValid))
		}
		if err != nil {
			return nil, err
		}
		addr := ""
		if h.serve != "" {
			if addr, err = serve(c, h.root, stored, h.serve, h.valid, h.paths); err != nil {
				return nil, err
			}
		} else if port, err := testpeer.FreePort(); err != nil {
			return nil, err
		} else {
			addr = fmt.Sprintf("127.0.0.1:%d", port)
		}
		for i, path := range h.paths {
			p := &provider{n: len(w.providers) + 1, story: h.stories[i], url: addr + path, stored: testidp.Thumbprint(stored.DER)}
			if w.providers = append(w.providers, p); !h.createdLater {
				if err := w.create(ctx, p); err != nil {
					return nil, err
				}
			}
		}
	}
	return w, nil
}

// serve starts an identity provider at paths serving a leaf valid for valid
// under root's intermediate cn (stored when so named); it returns its address.
func serve(c *cleanups, root, stored *testidp.CA, cn string, valid time.Duration, paths []string) (string, error) {
	ca := stored
	if stored.Cert.Subject.CommonName != cn {
		var err error
		if ca, err = root.Intermediate(cn); err != nil {
			return "", err
		}
	}
	leaf, err := ca.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(valid))
	if err != nil {
		return "", err
	}
	srv, err := testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf, ca)}, Path: paths[0], Paths: paths[1:]})
	if err != nil {
		return "", err
	}
	c.add(func() { _ = srv.Close() })
	return srv.Host(), nil
}

// create creates p in IAM with its thumbprint, as an operator would.
func (w *world) create(ctx context.Context, p *provider) error {
	outARN, err := testpeer.CreateProvider(ctx, w.iam, &iam.CreateOpenIDConnectProviderInput{
		Url: aws.String("https://" + p.url), ClientIDList: []string{"sts.amazonaws.com"}, ThumbprintList: []string{p.stored}})
	if err != nil {
		return fmt.Errorf("create OIDC provider %s: %w", p.url, err)
	}
	p.arn = outARN
	return nil
}

// setThumbprints writes p's list with the IAM API, as an operator would.
func (w *world) setThumbprints(ctx context.Context, p *provider, list []string) error {
	_, err := w.iam.UpdateOpenIDConnectProviderThumbprint(ctx, &iam.UpdateOpenIDConnectProviderThumbprintInput{
		OpenIDConnectProviderArn: aws.String(p.arn), ThumbprintList: list})
	if err != nil {
		return fmt.Errorf("update thumbprints of %s: %w", p.arn, err)
	}
	return nil
}

// findings reads the Security Hub findings back by id (fewer than a page).
func (w *world) findings(ctx context.Context) (map[string]shtypes.AwsSecurityFinding, error) {
	page, err := w.hub.GetFindings(ctx, &securityhub.GetFindingsInput{MaxResults: aws.Int32(100)})
	if err != nil {
		return nil, fmt.Errorf("get Security Hub findings: %w", err)
	}
	out := map[string]shtypes.AwsSecurityFinding{}
	for _, f := range page.Findings {
		out[aws.ToString(f.Id)] = f
	}
	return out, nil
}

// stored is p's thumbprint list as IAM holds it; nil when it cannot be read.
func (w *world) stored(ctx context.Context, p *provider) []string {
	out, err := w.iam.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(p.arn)})
	if err != nil {
		return nil
	}
	return out.ThumbprintList
}
