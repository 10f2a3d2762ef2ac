package rehearsal

import (
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
)

// idps are the local identity providers every set's providers point at: a
// chain under a root the function trusts, and one under a private root.
type idps struct {
	trustedRoot *testidp.CA
	public      *testidp.Server // serves [leaf, Rehearsal Public Intermediate]
	private     *testidp.Server // serves [leaf, Rehearsal Private Intermediate]
	publicTP    string          // the thumbprint each serves
	privateTP   string
	retiredTP   string // a thumbprint neither serves (a rotated-out intermediate)
}

// provider is one IAM OIDC provider a set creates, and what the run must
// decide for it.
type provider struct {
	story    string
	url      string
	stored   string
	outcome  string // in remediate mode
	inMember bool
}

func startIDPs() (*idps, error) {
	w := &idps{}
	var err error
	if w.trustedRoot, err = testidp.NewRoot("Rehearsal Public Root CA"); err != nil {
		return nil, err
	}
	private, err := testidp.NewRoot("Rehearsal Private Root CA")
	if err != nil {
		return nil, err
	}
	retired, err := w.trustedRoot.Intermediate("Rehearsal Retired Intermediate")
	if err != nil {
		return nil, err
	}
	w.retiredTP = testidp.Thumbprint(retired.DER)
	serve := func(root *testidp.CA, cn string, paths ...string) (*testidp.Server, string, error) {
		ca, err := root.Intermediate(cn)
		if err != nil {
			return nil, "", err
		}
		leaf, err := ca.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(365*24*time.Hour))
		if err != nil {
			return nil, "", err
		}
		srv, err := testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf, ca)}, Path: paths[0], Paths: paths[1:]})
		if err != nil {
			return nil, "", fmt.Errorf("start identity provider %s: %w", cn, err)
		}
		return srv, testidp.Thumbprint(ca.DER), nil
	}
	if w.public, w.publicTP, err = serve(w.trustedRoot, "Rehearsal Public Intermediate", "/in-sync", "/rotated", "/member"); err != nil {
		return nil, err
	}
	if w.private, w.privateTP, err = serve(private, "Rehearsal Private Intermediate", "/corp", "/member-corp"); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

func (w *idps) close() {
	for _, s := range []*testidp.Server{w.public, w.private} {
		if s != nil {
			_ = s.Close()
		}
	}
}

// providers are the providers of a set: three in the stack's own account (in
// sync; drifted on a trusted chain, which remediate updates; drifted on a
// private chain, left as drift), and when the set has a member account two
// drifted there (one updated, one left as drift: a problem, so the member
// role imports its finding when SecurityHub is on).
func (w *idps) providers(member bool) []provider {
	ps := []provider{
		{story: "in sync", url: w.public.Host() + "/in-sync", stored: w.publicTP, outcome: "in-sync"},
		{story: "drifted, trusted chain", url: w.public.Host() + "/rotated", stored: w.retiredTP, outcome: "updated"},
		{story: "drifted, private chain", url: w.private.Host() + "/corp", stored: strings.Repeat("ab", 20), outcome: "drift"},
	}
	if member {
		ps = append(ps,
			provider{story: "member account, drifted, trusted chain", url: w.public.Host() + "/member", stored: w.retiredTP, outcome: "updated", inMember: true},
			provider{story: "member account, drifted, private chain", url: w.private.Host() + "/member-corp", stored: strings.Repeat("cd", 20), outcome: "drift", inMember: true})
	}
	return ps
}
