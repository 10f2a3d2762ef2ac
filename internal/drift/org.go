package drift

import (
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
)

// accounts checks every account of the run, AccountConcurrency at once, each
// with its own provider concurrency, all sharing one probe run. Requested
// provider ARNs that no account of the run holds are skipped results saying so.
func (r *run) accounts() (*Report, error) {
	accts, err := r.e.opts.Accounts(r.work)
	if err != nil {
		r.listErrors = append(r.listErrors, fmt.Errorf("%w: %w", ErrListFailed, err))
		return r.finish([]Result{accountFailed(Account{}, r.mode, err.Error())}, []AccountSummary{{Error: err.Error()}})
	}
	r.reach("")
	perAccount := make([][]Result, len(accts))
	var g errgroup.Group
	g.SetLimit(r.e.opts.AccountConcurrency)
	for i, a := range accts {
		g.Go(func() error {
			perAccount[i] = r.oneAccount(a)
			return nil
		})
	}
	_ = g.Wait() // an account's failure is its result

	n := 0
	for _, rs := range perAccount {
		n += len(rs)
	}
	results := make([]Result, 0, n+len(r.req.Providers))
	summaries := make([]AccountSummary, len(accts))
	inRun := make(map[string]bool, len(accts))
	for i, a := range accts {
		inRun[a.ID] = true
		s := AccountSummary{AccountID: a.ID, RoleARN: a.RoleARN, Counts: map[Outcome]int{}, Skipped: a.Skip}
		for _, res := range perAccount[i] {
			if res.ProviderARN == "" { // the account's own result: failed or skipped
				if res.Outcome == AccountFailed {
					s.Error = res.Detail
				}
				continue
			}
			s.Checked++
			s.Counts[res.Outcome]++
		}
		summaries[i] = s
		results = append(results, perAccount[i]...)
	}
	for _, arn := range dedupe(r.req.Providers) {
		if acct := accounts.AccountOf(arn); !inRun[acct] {
			results = append(results, notInRun(arn, acct, r.mode))
		}
	}
	return r.finish(results, summaries)
}

// notInRun is the result of a requested provider ARN that no account of the
// run holds: it is reported, never silently dropped.
func notInRun(arn, acct string, mode config.Mode) Result {
	detail := fmt.Sprintf("account %s is not in this run (not an active account of the organisation, or not among the listed role ARNs); nothing checked", acct)
	if acct == "" {
		detail = "not an IAM OIDC provider ARN: no account of this run holds it; nothing checked"
	}
	return Result{AccountID: acct, ProviderARN: arn, Outcome: Skipped, Mode: mode, Detail: detail}
}

// oneAccount opens an account (assuming its role) and checks it; an account
// that cannot be opened or listed is one account-failed result. A skipped
// account is never opened: it is one skipped result with its reason, or, when
// the request names providers in it, one skipped result per provider.
func (r *run) oneAccount(a Account) []Result {
	var requested []string
	if len(r.req.Providers) > 0 {
		for _, arn := range dedupe(r.req.Providers) {
			if accounts.AccountOf(arn) == a.ID {
				requested = append(requested, arn)
			}
		}
		if len(requested) == 0 {
			return nil // the request names nothing in this account
		}
	}
	if a.Skip != "" {
		if len(requested) == 0 {
			return []Result{{AccountID: a.ID, Outcome: Skipped, Mode: r.mode, Detail: a.Skip}}
		}
		out := make([]Result, 0, len(requested))
		for _, arn := range requested {
			out = append(out, Result{AccountID: a.ID, ProviderARN: arn, Outcome: Skipped, Mode: r.mode,
				Detail: fmt.Sprintf("account %s is not in this run: %s; nothing checked", a.ID, a.Skip)})
		}
		return out
	}
	if r.work.Err() != nil {
		return []Result{accountFailed(a, r.mode, "deadline: account not reached before the run's deadline; nothing written")}
	}
	providers, err := a.Open(r.work)
	if err != nil {
		return []Result{accountFailed(a, r.mode, deadlineDetail(r.work, err.Error()))}
	}
	results, err := r.account(providers, requested)
	if err != nil {
		return []Result{accountFailed(a, r.mode, deadlineDetail(r.work, err.Error()))}
	}
	for i := range results {
		results[i].AccountID = a.ID
	}
	r.reach(a.ID)
	return results
}

// reach notes that account id was opened and listed.
func (r *run) reach(id string) {
	r.mu.Lock()
	r.reached = append(r.reached, id)
	r.mu.Unlock()
}

func accountFailed(a Account, mode config.Mode, detail string) Result {
	return Result{AccountID: a.ID, Outcome: AccountFailed, Mode: mode, Detail: detail}
}
