package drift_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

// idpVersions starts an identity provider at path serving chain, accepting
// TLS from minVersion (0: any the server supports).
func (w *world) idpVersions(path string, minVersion uint16, chain tls.Certificate) *testidp.Server {
	w.t.Helper()
	s, err := testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{chain}, Path: path, MinVersion: minVersion})
	if err != nil {
		w.t.Fatalf("start idp: %v", err)
	}
	w.t.Cleanup(func() { s.Close() })
	return s
}

// chainUntil is a chain [leaf, ca] for 127.0.0.1 whose leaf expires at notAfter.
func (w *world) chainUntil(ca *testidp.CA, notAfter time.Time) (tls.Certificate, *testidp.Leaf) {
	w.t.Helper()
	leaf, err := ca.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), notAfter)
	if err != nil {
		w.t.Fatal(err)
	}
	return testidp.Chain(leaf, ca), leaf
}

// TestTLS13OnlyEnforcesThumbprint: AWS checks the thumbprint of a host that
// requires TLS 1.3 even when its chain is publicly trusted, so a drift there
// breaks AssumeRoleWithWebIdentity; remediate may still write it (the chain
// verified), and once written nothing breaks.
func TestTLS13OnlyEnforcesThumbprint(t *testing.T) {
	w := newWorld(t)
	tests := []struct {
		name       string
		minVersion uint16
		mode       config.Mode
		outcome    drift.Outcome
		severity   drift.Severity
		enforced   bool
		breaks     bool
		written    bool
	}{
		{"TLS 1.3 only, alert", tls.VersionTLS13, config.ModeAlert, drift.Drift, drift.SeverityCritical, true, true, false},
		{"TLS 1.3 only, remediate", tls.VersionTLS13, config.ModeRemediate, drift.Updated, drift.SeverityInfo, true, false, true},
		{"TLS 1.2 accepted, alert", 0, config.ModeAlert, drift.Drift, drift.SeverityWarning, false, false, false},
		{"TLS 1.2 accepted, remediate", 0, config.ModeRemediate, drift.Updated, drift.SeverityInfo, false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, tp := w.publicChain()
			s := w.idpVersions("/"+strings.ReplaceAll(tt.name, " ", "-"), tt.minVersion, c)
			arn := w.provider(s.URL(), []string{old1}, nil)
			rep, err := w.engine(withMode(tt.mode)).Run(context.Background(), drift.Request{Providers: []string{arn}})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			r := resultFor(t, rep, arn)
			if r.Outcome != tt.outcome || r.Severity != tt.severity || !r.PubliclyTrusted || r.ThumbprintEnforced != tt.enforced || r.BreaksAssumeRole != tt.breaks {
				t.Errorf("outcome %s severity %s trusted %v enforced %v breaks %v (%s); want %s %s true %v %v",
					r.Outcome, r.Severity, r.PubliclyTrusted, r.ThumbprintEnforced, r.BreaksAssumeRole, r.Detail, tt.outcome, tt.severity, tt.enforced, tt.breaks)
			}
			if r.Host != s.Host() {
				t.Errorf("host %q, want the jwks_uri host %q", r.Host, s.Host())
			}
			want := old1
			if tt.written {
				want = list(tp, old1)
			}
			if got := list(w.stored(arn)...); got != want {
				t.Errorf("stored %s, want %s", got, want)
			}
			msgs := w.messages()
			if len(msgs) != 1 || msgs[0].Attr("outcome") != string(tt.outcome) || msgs[0].Attr("severity") != string(tt.severity) {
				t.Errorf("messages %+v, want one %s %s", msgs, tt.outcome, tt.severity)
			}
		})
	}
}

// TestExpiring: an in-sync provider whose thumbprint AWS enforces warns when
// a certificate whose thumbprint is live (the last certificate served)
// expires within EXPIRY_WARNING, naming it and when; never for a leaf that
// expires soon under a long-lived CA (renewed, it keeps the thumbprint), not
// outside the horizon, not where the thumbprint is not enforced, never with
// the warning off, and never instead of a drift.
func TestExpiring(t *testing.T) {
	w := newWorld(t)
	const day = 24 * time.Hour
	soon := time.Now().Add(10 * day).Truncate(time.Second)
	tests := []struct {
		name       string
		ca         *testidp.CA
		caSoon     bool // the CA served last expires soon; else only the leaf does
		minVersion uint16
		warning    time.Duration
		drifted    bool
		want       drift.Outcome
	}{
		{name: "private CA, within the horizon", ca: w.private, caSoon: true, warning: 30 * day, want: drift.Expiring},
		{name: "private chain, only the leaf within the horizon", ca: w.private, warning: 30 * day, want: drift.InSync},
		{name: "private CA, outside the horizon", ca: w.private, caSoon: true, warning: 5 * day, want: drift.InSync},
		{name: "private CA, warning off", ca: w.private, caSoon: true, warning: 0, want: drift.InSync},
		{name: "public chain: thumbprint not enforced", ca: w.public, caSoon: true, warning: 30 * day, want: drift.InSync},
		{name: "public chain, TLS 1.3 only: enforced", ca: w.public, caSoon: true, minVersion: tls.VersionTLS13, warning: 30 * day, want: drift.Expiring},
		{name: "drifted: a drift, not a warning", ca: w.private, caSoon: true, warning: 30 * day, drifted: true, want: drift.Drift},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			caNotAfter := time.Now().Add(3650 * day)
			if tt.caSoon {
				caNotAfter = soon
			}
			last, err := tt.ca.IntermediateUntil("Issuing CA "+tt.name, caNotAfter)
			if err != nil {
				t.Fatal(err)
			}
			c, _ := w.chainUntil(last, soon)
			tp := testidp.Thumbprint(last.DER)
			s := w.idpVersions("/"+strings.NewReplacer(" ", "-", ",", "", ":", "").Replace(tt.name), tt.minVersion, c)
			stored := []string{tp}
			if tt.drifted {
				stored = []string{old1}
			}
			arn := w.provider(s.URL(), stored, nil)
			e := w.engine(withMode(config.ModeAlert), func(o *setup) { o.ExpiryWarning = tt.warning })
			rep, err := e.Run(context.Background(), drift.Request{Providers: []string{arn}})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			r := resultFor(t, rep, arn)
			t.Log(r.Detail)
			if r.Outcome != tt.want {
				t.Fatalf("outcome %s (%s), want %s", r.Outcome, r.Detail, tt.want)
			}
			msgs := w.messages()
			if tt.want != drift.Expiring {
				if strings.Contains(r.Detail, "expires") {
					t.Errorf("detail %q warns of an expiry", r.Detail)
				}
				return
			}
			if r.Severity != drift.SeverityWarning || r.BreaksAssumeRole || !r.ThumbprintEnforced {
				t.Errorf("severity %s breaks %v enforced %v, want warning, false, true", r.Severity, r.BreaksAssumeRole, r.ThumbprintEnforced)
			}
			for _, want := range []string{`"` + last.Cert.Subject.CommonName + `"`, tp, s.Host(), "2 of 2", last.Cert.NotAfter.UTC().Format(time.RFC3339)} {
				if !strings.Contains(r.Detail, want) {
					t.Errorf("detail %q does not name %q", r.Detail, want)
				}
			}
			if len(msgs) != 1 || msgs[0].Attr("outcome") != "expiring" || msgs[0].Attr("severity") != "warning" {
				t.Errorf("messages %+v, want one expiring warning", msgs)
			}
			if got := list(w.stored(arn)...); got != tp {
				t.Errorf("stored %s written; want %s untouched", got, tp)
			}
		})
	}
}

// TestProbeFailedHostAndEnforcement: a failed probe could not retrieve the
// certificate, so the thumbprint is taken as enforced; its alerts group under
// the issuer host when discovery failed, the jwks_uri host when a handshake did.
func TestProbeFailedHostAndEnforcement(t *testing.T) {
	w := newWorld(t)
	port, err := testpeer.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	closed := fmt.Sprintf("127.0.0.1:%d", port)
	c, _ := w.publicChain()
	s, err := testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{c}, Path: "/jwks-refused", JWKSURI: "https://" + closed + "/keys"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	tests := []struct {
		name, url, host, detailHas string
	}{
		{"discovery refused", closed + "/id/X", closed, "discovery"},
		{"jwks_uri host refused", s.URL(), closed, "handshake"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			arn := w.provider(tt.url, []string{old1}, nil)
			rep, err := w.engine(withMode(config.ModeAlert)).Run(context.Background(), drift.Request{Providers: []string{arn}})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			r := resultFor(t, rep, arn)
			if r.Outcome != drift.ProbeFailed || !r.ThumbprintEnforced || r.BreaksAssumeRole || r.Host != tt.host || !strings.Contains(r.Detail, tt.detailHas) {
				t.Errorf("outcome %s enforced %v breaks %v host %q (%s); want probe-failed, true, false, %q, a detail naming %s",
					r.Outcome, r.ThumbprintEnforced, r.BreaksAssumeRole, r.Host, r.Detail, tt.host, tt.detailHas)
			}
			w.messages()
		})
	}
}
