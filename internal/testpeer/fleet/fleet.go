// Package fleet builds the worlds benchmarks and tests run in: identity
// provider hosts, each with its own generated chain and behind a Latency
// forwarder, serving provider Urls, and those providers seeded in IAM
// (moto_server), in one account or in every member account of an organisation,
// some with a stale thumbprint. It then checks a report against that seed.
package fleet

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

// Spec is the shape of a fleet.
type Spec struct {
	Providers int // provider Urls, provider i served by host i mod Hosts
	Hosts     int
	// RTT is the round trip each host's forwarder adds.
	RTT time.Duration
	// Drifted says which providers are seeded with a stale thumbprint; nil: none.
	Drifted func(provider, host int) bool
	// HTTP1 makes the hosts speak HTTP/1.1 only; by default they offer h2
	// too, as most identity providers on the Internet do.
	HTTP1 bool
}

// EveryFifth drifts providers 4, 9, 14, ...
func EveryFifth(provider, _ int) bool { return provider%5 == 4 }

// LastHost drifts every provider of the fleet's last host, of n hosts.
func LastHost(n int) func(provider, host int) bool {
	return func(_, host int) bool { return host == n-1 }
}

// Host is one identity provider: a TLS server under its own intermediate CA,
// behind a forwarder whose address is the host's name.
type Host struct {
	IdP *testidp.Server
	Net *testpeer.Latency
	// Thumbprint is the intermediate's, the last certificate the host serves.
	Thumbprint string
}

// Addr is host:port as provider Urls name it.
func (h *Host) Addr() string { return h.Net.Addr() }

// Provider is one provider Url of the fleet.
type Provider struct {
	URL     string // as IAM stores it: host:port/path
	Host    *Host
	Drifted bool // seeded with a stale list
}

// Fleet is a set of hosts and the provider Urls they serve.
type Fleet struct {
	Spec      Spec
	Hosts     []*Host
	Providers []*Provider
	byURL     map[string]*Provider
}

// Start starts spec.Hosts identity providers under root, each with its own
// intermediate, serving spec.Providers provider Urls (/id/0000, /id/0001, ...)
// in turn. Nothing is created in IAM. On error what was started is stopped.
func Start(root *testidp.CA, spec Spec) (*Fleet, error) {
	if spec.Hosts < 1 || spec.Providers < spec.Hosts {
		return nil, fmt.Errorf("fleet: want 1 <= hosts <= providers, have %d hosts, %d providers", spec.Hosts, spec.Providers)
	}
	f := &Fleet{Spec: spec, byURL: map[string]*Provider{}}
	paths := make([][]string, spec.Hosts)
	pathOf := func(i int) string { return fmt.Sprintf("/id/%04X", i) }
	for i := range spec.Providers {
		paths[i%spec.Hosts] = append(paths[i%spec.Hosts], pathOf(i))
	}
	for i, p := range paths {
		h, err := startHost(root, i, p, spec.RTT, !spec.HTTP1)
		if err != nil {
			f.Close()
			return nil, err
		}
		f.Hosts = append(f.Hosts, h)
	}
	for i := range spec.Providers {
		h := f.Hosts[i%spec.Hosts]
		p := &Provider{URL: h.Addr() + pathOf(i), Host: h, Drifted: spec.Drifted != nil && spec.Drifted(i, i%spec.Hosts)}
		f.Providers = append(f.Providers, p)
		f.byURL[p.URL] = p
	}
	return f, nil
}

func startHost(root *testidp.CA, i int, paths []string, rtt time.Duration, h2 bool) (*Host, error) {
	ca, err := root.Intermediate(fmt.Sprintf("Fleet Issuing CA %03d", i))
	if err != nil {
		return nil, err
	}
	leaf, err := ca.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		return nil, err
	}
	idp, err := testidp.Start(testidp.ServerOptions{
		Chains: []tls.Certificate{testidp.Chain(leaf, ca)},
		Paths:  paths, // issuer from the request's Host: the forwarder's address
		HTTP2:  h2,
	})
	if err != nil {
		return nil, err
	}
	fwd, err := testpeer.StartLatency(idp.Host(), rtt)
	if err != nil {
		idp.Close()
		return nil, err
	}
	return &Host{IdP: idp, Net: fwd, Thumbprint: testidp.Thumbprint(ca.DER)}, nil
}

// URLs are the provider Urls, in order.
func (f *Fleet) URLs() []string {
	urls := make([]string, len(f.Providers))
	for i, p := range f.Providers {
		urls[i] = p.URL
	}
	return urls
}

// Close stops the identity providers and their forwarders.
func (f *Fleet) Close() {
	for _, h := range f.Hosts {
		h.Net.Close()
		h.IdP.Close()
	}
}

// Handshakes is the number of TLS handshakes the hosts saw, discovery
// connections included.
func (f *Fleet) Handshakes() int {
	n := 0
	for _, h := range f.Hosts {
		n += h.IdP.Handshakes()
	}
	return n
}

// Connects is the TCP connections the hosts' forwarders have accepted so
// far: TLS handshakes and connections closed before any (Handshakes counts
// the former).
func (f *Fleet) Connects() int {
	n := 0
	for _, h := range f.Hosts {
		n += h.Net.Accepted()
	}
	return n
}

// Seed creates every provider of the fleet in each account through moto
// (parallel calls at a time), drifted ones with a random stale thumbprint,
// and returns their ARNs, arns[account][provider].
func (f *Fleet) Seed(ctx context.Context, m *testpeer.Moto, accountIDs []string, parallel int) ([][]string, error) {
	var ps []testpeer.NewProvider
	for _, a := range accountIDs {
		for _, p := range f.Providers {
			stored := p.Host.Thumbprint
			if p.Drifted {
				stored = randomThumbprint()
			}
			ps = append(ps, testpeer.NewProvider{Account: a, URL: p.URL, Thumbprints: []string{stored}})
		}
	}
	flat, err := m.CreateProviders(ctx, ps, parallel)
	if err != nil {
		return nil, err
	}
	arns := make([][]string, len(accountIDs))
	for i := range accountIDs {
		arns[i] = flat[i*len(f.Providers) : (i+1)*len(f.Providers)]
	}
	return arns, nil
}

func randomThumbprint() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// CheckResults compares results with the seed by provider Url (in any
// account): live thumbprint = its host's intermediate, publicly trusted,
// in-sync or drift as seeded. It returns the first difference, "" when none.
func (f *Fleet) CheckResults(results []drift.Result) string {
	for _, res := range results {
		p := f.byURL[res.URL]
		if p == nil {
			return fmt.Sprintf("%s: %s (%s)", res.ProviderARN, res.Outcome, firstLine(res.Detail))
		}
		want := drift.InSync
		if p.Drifted {
			want = drift.Drift
		}
		switch {
		case res.Outcome != want:
			return fmt.Sprintf("%s: %s, want %s (%s)", p.URL, res.Outcome, want, firstLine(res.Detail))
		case !slices.Equal(res.LiveThumbprints, []string{p.Host.Thumbprint}):
			return fmt.Sprintf("%s: live %v, want [%s]", p.URL, res.LiveThumbprints, p.Host.Thumbprint)
		case !res.PubliclyTrusted:
			return fmt.Sprintf("%s: chain not verified against the fleet's root", p.URL)
		}
	}
	return ""
}

// CheckReport compares a report with the seed in members (nil: one account,
// no sections): every provider of every member checked once and counted, any
// other account section (the management account's) empty, every result in
// its own account and as seeded. Results left out of the report
// (results_omitted) must be in-sync ones, or summarised in omitted_groups;
// account sections left out are counted in accounts_omitted. It returns the first difference, ""
// when none.
func (f *Fleet) CheckReport(rep *drift.Report, members []string) string {
	want := max(len(members), 1) * len(f.Providers)
	if rep.Checked != want {
		return fmt.Sprintf("checked %d of %d providers", rep.Checked, want)
	}
	if len(rep.Results)+rep.ResultsOmitted != want {
		return fmt.Sprintf("%d results and %d omitted, want %d", len(rep.Results), rep.ResultsOmitted, want)
	}
	grouped := 0
	for _, g := range rep.OmittedGroups {
		grouped += g.Count
	}
	if inSync := rep.ResultsOmitted - grouped; inSync > 0 && rep.Counts[drift.InSync] < inSync {
		return fmt.Sprintf("%d in-sync results omitted (results_omitted less omitted_groups), more than the %d in sync", inSync, rep.Counts[drift.InSync])
	}
	if members != nil {
		seen := 0
		for _, a := range rep.Accounts {
			_, isMember := slices.BinarySearch(members, a.AccountID)
			wantChecked := 0
			if isMember {
				wantChecked, seen = len(f.Providers), seen+1
			}
			if a.Error != "" || a.Checked != wantChecked {
				return fmt.Sprintf("account %s: checked %d, want %d; error %q", a.AccountID, a.Checked, wantChecked, firstLine(a.Error))
			}
		}
		if seen > len(members) || seen+rep.AccountsOmitted < len(members) {
			return fmt.Sprintf("%d member sections, want %d", seen, len(members))
		}
	}
	seen := map[string]bool{}
	for _, res := range rep.Results {
		if members != nil && accounts.AccountOf(res.ProviderARN) != res.AccountID || seen[res.ProviderARN] {
			return fmt.Sprintf("%s: in account %q, or twice", res.ProviderARN, res.AccountID)
		}
		seen[res.ProviderARN] = true
	}
	return f.CheckResults(rep.Results)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}
