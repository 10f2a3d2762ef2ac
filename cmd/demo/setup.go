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

	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
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

// scenario is one seeded IAM OIDC provider and the outcome the demo shows for it.
type scenario struct {
	n      int
	path   string // issuer path, naming the scenario in URLs
	story  string // one line for the setup section
	expect drift.Outcome

	url    string // provider Url as IAM stores it
	addr   string // host:port of its identity provider, "" when none listens
	arn    string
	before []string
	after  []string
}

// world is everything the demo runs against.
type world struct {
	dir       string // temporary directory: bootstrap, trust store, empty AWS config
	moto      *testpeer.Moto
	iam       *iam.Client
	alerts    *testpeer.AlertQueue
	certFile  string // SSL_CERT_FILE: the public root only
	certDir   string // SSL_CERT_DIR: empty, so the system's roots play no part
	scenarios []*scenario
}

// pkis are the demo's two certificate hierarchies: a "public" root, which the
// function trusts through SSL_CERT_FILE, and a private corporate root, which it
// does not trust. Each identity provider has its own intermediate CA; providers
// (2) and (3) still store the thumbprint of an intermediate retired since, as
// after an identity provider rotated its CA.
type pkis struct {
	publicRoot, privateRoot *testidp.CA
}

func newPKIs() (*pkis, error) {
	var p pkis
	var err error
	if p.publicRoot, err = testidp.NewRoot("Demo Public Root CA"); err != nil {
		return nil, err
	}
	if p.privateRoot, err = testidp.NewRoot("Demo Corp Private Root CA"); err != nil {
		return nil, err
	}
	return &p, nil
}

// chain is what an identity provider under ca serves: [leaf for 127.0.0.1, ca].
// Its thumbprint is ca's, the last certificate sent.
func chain(ca *testidp.CA) (tls.Certificate, error) {
	leaf, err := ca.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		return tls.Certificate{}, err
	}
	return testidp.Chain(leaf, ca), nil
}

// startWorld starts moto_server, the topic with its queue, the identity
// providers, and seeds the four providers in IAM. Everything it starts is
// registered in c, also when it fails half-way.
func startWorld(ctx context.Context, c *cleanups, dir string, p *pkis) (*world, error) {
	w := &world{dir: dir}

	m, err := testpeer.StartMoto(ctx)
	if errors.Is(err, testpeer.ErrMissing) {
		return nil, errors.New("moto_server not found on PATH: install it with pip install 'moto[server]'")
	}
	if err != nil {
		return nil, err
	}
	c.add(m.Close)
	w.moto = m
	cfg := m.Config()
	w.iam = iam.NewFromConfig(cfg)

	if w.alerts, err = testpeer.NewAlertQueue(ctx, cfg, "thumbprint-drift-demo"); err != nil {
		return nil, err
	}

	w.certFile = filepath.Join(dir, "public-root.pem")
	if err := os.WriteFile(w.certFile, p.publicRoot.PEM(), 0o600); err != nil {
		return nil, fmt.Errorf("write trust store: %w", err)
	}
	w.certDir = filepath.Join(dir, "no-system-roots")
	if err := os.Mkdir(w.certDir, 0o700); err != nil {
		return nil, fmt.Errorf("create empty certificate directory: %w", err)
	}

	type seed struct {
		path, story string
		expect      drift.Outcome
		root        *testidp.CA
		serve       string // intermediate the identity provider serves under; "" when nothing listens
		stored      string // intermediate whose thumbprint the stored list holds
	}
	seeds := []seed{
		{"/in-sync", "public chain; the stored list holds its thumbprint", drift.InSync,
			p.publicRoot, "Demo Public Intermediate A", "Demo Public Intermediate A"},
		{"/public-rotated", "public chain, intermediate rotated; the stored list holds the retired one", drift.Updated,
			p.publicRoot, "Demo Public Intermediate B2", "Demo Public Intermediate B1"},
		{"/private-rotated", "private chain, intermediate rotated; the stored list holds the retired one", drift.Drift,
			p.privateRoot, "Demo Corp Issuing CA 2", "Demo Corp Issuing CA 1"},
		{"/unreachable", "nothing listens on its port", drift.ProbeFailed,
			p.publicRoot, "", "Demo Public Intermediate D"},
	}
	for i, s := range seeds {
		sc := &scenario{n: i + 1, path: s.path, story: s.story, expect: s.expect}
		stored, err := s.root.Intermediate(s.stored)
		if err != nil {
			return nil, err
		}
		if s.serve != "" {
			ca := stored
			if s.serve != s.stored {
				if ca, err = s.root.Intermediate(s.serve); err != nil {
					return nil, err
				}
			}
			cert, err := chain(ca)
			if err != nil {
				return nil, err
			}
			srv, err := testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{cert}, Path: s.path})
			if err != nil {
				return nil, err
			}
			c.add(func() { _ = srv.Close() })
			sc.url, sc.addr = srv.URL(), srv.Host()
		} else {
			port, err := testpeer.FreePort()
			if err != nil {
				return nil, err
			}
			sc.url = fmt.Sprintf("127.0.0.1:%d%s", port, s.path)
		}
		if sc.arn, err = w.createProvider(ctx, sc.url, []string{testidp.Thumbprint(stored.DER)}); err != nil {
			return nil, err
		}
		if sc.before, err = w.thumbprints(ctx, sc.arn); err != nil {
			return nil, err
		}
		w.scenarios = append(w.scenarios, sc)
	}
	return w, nil
}

// createProvider creates an IAM OIDC provider through the real SDK.
func (w *world) createProvider(ctx context.Context, url string, thumbprints []string) (string, error) {
	out, err := w.iam.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
		Url:            aws.String("https://" + url),
		ClientIDList:   []string{"sts.amazonaws.com"},
		ThumbprintList: thumbprints,
	})
	if err != nil {
		return "", fmt.Errorf("create OIDC provider %s: %w", url, err)
	}
	return aws.ToString(out.OpenIDConnectProviderArn), nil
}

// thumbprints reads a provider's stored thumbprint list from IAM.
func (w *world) thumbprints(ctx context.Context, arn string) ([]string, error) {
	out, err := w.iam.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
	if err != nil {
		return nil, fmt.Errorf("get OIDC provider %s: %w", arn, err)
	}
	return out.ThumbprintList, nil
}

// readAfter records each provider's list after the run.
func (w *world) readAfter(ctx context.Context) error {
	for _, sc := range w.scenarios {
		var err error
		if sc.after, err = w.thumbprints(ctx, sc.arn); err != nil {
			return err
		}
	}
	return nil
}

// scenarioFor returns the scenario of a provider ARN, or nil.
func (w *world) scenarioFor(arn string) *scenario {
	for _, sc := range w.scenarios {
		if sc.arn == arn {
			return sc
		}
	}
	return nil
}
