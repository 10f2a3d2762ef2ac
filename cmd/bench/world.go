package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
)

// load is one row group of the benchmark: how many accounts, providers per
// account and distinct identity provider hosts.
type load struct {
	Accounts  int // more than 1: organisation mode, the same provider Urls in every account
	Providers int // per account
	Hosts     int
}

// Name is the load as the table shows it.
func (l load) Name() string { return describeShape(l.Accounts, l.Providers, l.Hosts) }

// host is one identity provider: a TLS server under its own intermediate CA
// behind a latency-injecting forwarder, whose address is the host's name.
type host struct {
	idp        *testidp.Server
	fwd        *forwarder
	thumbprint string // of the intermediate, the last certificate served
}

// Addr is host:port as provider Urls name it.
func (h *host) Addr() string { return h.fwd.Addr() }

// provider is one seeded IAM OIDC provider.
type provider struct {
	URL     string // as IAM stores it: host:port/path
	ARN     string
	Host    *host
	Drifted bool // seeded with a stale list
}

// world is one load's identity providers and IAM providers.
type world struct {
	hosts     []*host
	providers []*provider
	byURL     map[string]*provider
}

// startHosts starts n identity providers under root, each serving paths[i],
// behind forwarders adding rtt. On error what was started is closed.
func startHosts(root *testidp.CA, paths [][]string, rtt time.Duration) ([]*host, error) {
	var hosts []*host
	fail := func(err error) ([]*host, error) {
		closeHosts(hosts)
		return nil, err
	}
	for i, p := range paths {
		ca, err := root.Intermediate(fmt.Sprintf("Bench Issuing CA %03d", i))
		if err != nil {
			return fail(err)
		}
		leaf, err := ca.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
		if err != nil {
			return fail(err)
		}
		idp, err := testidp.Start(testidp.ServerOptions{
			Chains: []tls.Certificate{testidp.Chain(leaf, ca)},
			Paths:  p, // issuer from the request's Host: the forwarder's address
		})
		if err != nil {
			return fail(err)
		}
		fwd, err := startForwarder(idp.Host(), rtt)
		if err != nil {
			idp.Close()
			return fail(err)
		}
		hosts = append(hosts, &host{idp: idp, fwd: fwd, thumbprint: testidp.Thumbprint(ca.DER)})
	}
	return hosts, nil
}

func closeHosts(hosts []*host) {
	for _, h := range hosts {
		h.fwd.Close()
		h.idp.Close()
	}
}

// Handshakes is the number of TLS handshakes the identity providers saw,
// discovery connections included.
func (w *world) Handshakes() int {
	n := 0
	for _, h := range w.hosts {
		n += h.idp.Handshakes()
	}
	return n
}

// Close stops the identity providers and forwarders.
func (w *world) Close() { closeHosts(w.hosts) }

// newWorld starts l.Hosts identity providers serving l.Providers provider Urls
// spread over them in turn (provider i on host i mod H), every fifth one to be
// seeded drifted (a stale thumbprint), the others in sync. Nothing is created
// in IAM.
func newWorld(root *testidp.CA, l load, rtt time.Duration) (*world, error) {
	paths := make([][]string, l.Hosts)
	pathOf := func(i int) string { return fmt.Sprintf("/id/%04X", i) }
	for i := range l.Providers {
		paths[i%l.Hosts] = append(paths[i%l.Hosts], pathOf(i))
	}
	hosts, err := startHosts(root, paths, rtt)
	if err != nil {
		return nil, err
	}
	w := &world{hosts: hosts, byURL: map[string]*provider{}}
	for i := range l.Providers {
		h := hosts[i%l.Hosts]
		p := &provider{URL: h.Addr() + pathOf(i), Host: h, Drifted: i%5 == 4}
		w.providers = append(w.providers, p)
		w.byURL[p.URL] = p
	}
	return w, nil
}

// buildWorld is newWorld with the providers created in IAM through client,
// which must be empty of providers.
func buildWorld(ctx context.Context, client *iam.Client, root *testidp.CA, l load, rtt time.Duration) (*world, error) {
	w, err := newWorld(root, l, rtt)
	if err != nil {
		return nil, err
	}
	arns, err := createProviders(ctx, []*iam.Client{client}, w.providers, 4)
	if err != nil {
		w.Close()
		return nil, err
	}
	for i, p := range w.providers {
		p.ARN = arns[0][i]
	}
	return w, nil
}

// createProviders creates the providers in IAM through each client (one per
// account) with the real SDK, parallel calls at a time, and returns their
// ARNs, arns[client][provider].
func createProviders(ctx context.Context, clients []*iam.Client, ps []*provider, parallel int) ([][]string, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, parallel)
		arns  = make([][]string, len(clients))
	)
	for c, client := range clients {
		arns[c] = make([]string, len(ps))
		for i, p := range ps {
			stored := []string{p.Host.thumbprint}
			if p.Drifted {
				stored = []string{randomThumbprint()}
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				out, err := client.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
					Url:            aws.String("https://" + p.URL),
					ClientIDList:   []string{"sts.amazonaws.com"},
					ThumbprintList: stored,
				})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if first == nil {
						first = fmt.Errorf("create provider %s: %w", p.URL, err)
					}
					return
				}
				arns[c][i] = aws.ToString(out.OpenIDConnectProviderArn)
			}()
		}
	}
	wg.Wait()
	return arns, first
}

func randomThumbprint() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
