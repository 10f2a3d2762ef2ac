package drift_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/oidcprovider"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

// TestAccountsSkipAndNotInRun: a skipped account is never opened and is one
// skipped result with its reason; requested providers that no account of the
// run holds are skipped results saying why, never dropped; neither fails the
// run.
func TestAccountsSkipAndNotInRun(t *testing.T) {
	w := newWorld(t)
	c, _ := w.publicChain()
	own := w.provider(w.idp("/own", c).URL(), []string{old1}, nil)
	const skipped, reason = "222222222222", "management account of the organisation, not checked from a delegated administrator"
	inSkipped := "arn:aws:iam::" + skipped + ":oidc-provider/skipped.example"
	elsewhere := "arn:aws:iam::333333333333:oidc-provider/elsewhere.example"
	malformed := "arn:aws:iam:::oidc-provider/no-account.example"
	accts := func(context.Context) ([]drift.Account, error) {
		return []drift.Account{
			{ID: testpeer.AccountID, Open: func(context.Context) (drift.Providers, error) { return oidcprovider.New(w.api), nil }},
			{ID: skipped, Skip: reason, Open: func(context.Context) (drift.Providers, error) {
				t.Error("a skipped account was opened")
				return nil, errors.New("opened")
			}},
		}, nil
	}

	tests := []struct {
		name    string
		request []string
		want    map[string]string // provider ARN ("" for the account's own result) to outcome and detail
	}{
		{
			name: "every provider",
			want: map[string]string{own: "drift", "": "skipped " + reason},
		},
		{
			name:    "requested providers",
			request: []string{own, inSkipped, elsewhere, malformed, elsewhere},
			want: map[string]string{
				own:       "drift",
				inSkipped: "skipped account " + skipped + " is not in this run: " + reason,
				elsewhere: "skipped account 333333333333 is not in this run",
				malformed: "skipped not an IAM OIDC provider ARN",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := w.engine(func(o *setup) { o.Accounts = accts })
			rep, err := e.Run(context.Background(), drift.Request{Mode: config.ModeReport, Providers: tt.request})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if len(rep.Results) != len(tt.want) {
				t.Errorf("%d results, want %d: %+v", len(rep.Results), len(tt.want), rep.Results)
			}
			for _, r := range rep.Results {
				want, ok := tt.want[r.ProviderARN]
				if got := string(r.Outcome) + " " + r.Detail; !ok || !strings.HasPrefix(got, want) {
					t.Errorf("%q: %q, want %q", r.ProviderARN, got, want)
				}
				if r.Outcome == drift.Skipped && (r.Severity != drift.SeverityNone || r.Transition != "") {
					t.Errorf("%q: skipped with severity %q transition %q", r.ProviderARN, r.Severity, r.Transition)
				}
			}
			if len(rep.Accounts) != 2 || rep.Accounts[1].Skipped != reason || rep.Accounts[1].Error != "" {
				t.Errorf("account sections %+v, want the second skipped with its reason", rep.Accounts)
			}
		})
	}
	if msgs := w.messages(); len(msgs) != 0 {
		t.Errorf("report mode published %d messages", len(msgs))
	}

	t.Run("listing providers fails", func(t *testing.T) {
		e := w.engine(w.via(closedEndpoint(t), w.moto.Endpoint, 20*time.Millisecond))
		_, err := e.Run(context.Background(), drift.Request{Mode: config.ModeReport})
		if !errors.Is(err, drift.ErrListFailed) || !strings.Contains(err.Error(), "list OIDC providers") {
			t.Errorf("Run error %v, want ErrListFailed wrapping the IAM failure", err)
		}
	})
	t.Run("listing accounts fails", func(t *testing.T) {
		boom := errors.New("AccessDeniedException: organizations:ListAccounts")
		e := w.engine(func(o *setup) {
			o.Accounts = func(context.Context) ([]drift.Account, error) { return nil, boom }
		})
		_, err := e.Run(context.Background(), drift.Request{Mode: config.ModeReport})
		if !errors.Is(err, drift.ErrListFailed) || !errors.Is(err, boom) {
			t.Errorf("Run error %v, want ErrListFailed wrapping the cause", err)
		}
	})
}
