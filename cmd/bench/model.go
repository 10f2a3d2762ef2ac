package main

import (
	"slices"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/fleet"
)

const (
	lambdaMBPerVCPU = 1769                  // Lambda's CPU follows memory: one vCPU at 1,769 MB
	ddbLatency      = 10 * time.Millisecond // per DynamoDB call, same region (moto answers faster)
	// ddbWritesAtOnce is state write calls in flight: internal/alert's
	// writeConcurrency of single UpdateItem calls, the model's first form.
	// Writes now go grouped in TransactWriteItems (state.WriteAll, at most 4
	// in flight), about 0.06 calls per account, so the term stays small.
	ddbWritesAtOnce = 16
	orgListPage     = 20 // accounts per ListAccounts page, at most (its MaxResults)
)

// orgModel predicts an organisation run from the measured one, per account:
// its IAM/STS calls in sequence x latency, ACCOUNT_CONCURRENCY accounts at
// once; plus the shared probe, the account listing and DynamoDB; bounded
// below by the CPU the function needs at its memory's share of a vCPU.
type orgModel struct {
	Providers int
	Setting   orgSetting
	Latency   time.Duration // per IAM and STS call
	// ListLatency is per Organizations ListAccounts page (0 in the bench's
	// limit: moto answers Organizations directly).
	ListLatency time.Duration
	Probe       time.Duration // the shared hosts' probe: the network limit
	// DDBReads and DDBWrites are DynamoDB calls per account: batched reads in
	// sequence, writes ddbWritesAtOnce at a time.
	DDBReads, DDBWrites float64
	// CPUPerAccount is the function's CPU per account, measured.
	CPUPerAccount time.Duration
	// RSSBaseMiB is the peak RSS of a one-account run; RSSPerAccountMiB the
	// growth per account the organisation run added to it.
	RSSBaseMiB, RSSPerAccountMiB float64
}

// chain is one account's calls one after another: AssumeRole, List, then
// ceil(P/C) rounds of Gets.
func (m orgModel) chain() int {
	return 2 + fleet.CeilDiv(m.Providers, min(m.Setting.Conc, max(m.Providers, 1)))
}

// Network is the time the calls take for accounts, with no CPU limit.
func (m orgModel) Network(accounts int) time.Duration {
	list := time.Duration(fleet.CeilDiv(accounts, orgListPage)) * m.ListLatency
	ddb := time.Duration((m.DDBReads+m.DDBWrites/ddbWritesAtOnce)*float64(accounts)) * ddbLatency
	return m.Probe + list + m.IAM(accounts) + ddb
}

// IAM is the accounts' IAM and STS calls: ACCOUNT_CONCURRENCY accounts at a
// time, each its chain of calls one after another.
func (m orgModel) IAM(accounts int) time.Duration {
	return time.Duration(fleet.CeilDiv(accounts, m.Setting.AccountConc)*m.chain()) * m.Latency
}

// CPU is the wall time the function's CPU work takes at memoryMB.
func (m orgModel) CPU(accounts, memoryMB int) time.Duration {
	return time.Duration(float64(m.CPUPerAccount) * float64(accounts) * lambdaMBPerVCPU / float64(memoryMB))
}

// Wall is the predicted run: the slower of the network and the CPU.
func (m orgModel) Wall(accounts, memoryMB int) time.Duration {
	return max(m.Network(accounts), m.CPU(accounts, memoryMB))
}

// RSSMiB is the predicted peak RSS.
func (m orgModel) RSSMiB(accounts int) float64 {
	return m.RSSBaseMiB + m.RSSPerAccountMiB*float64(accounts)
}

// model builds the model from the organisation's runs: latency and the
// probe from the bench's settings, calls from the first in-process run, CPU
// and RSS from the bootstrap's (the whole bench process's CPU without it).
func (r *results) model() (orgModel, bool) {
	o := r.org
	if o == nil || len(o.Runs) == 0 {
		return orgModel{}, false
	}
	a := float64(o.Load.Accounts)
	first := o.Runs[0]
	m := first.Limit
	m.ListLatency = m.Latency
	m.DDBReads, m.DDBWrites = float64(first.DDBReads)/a, float64(first.Calls["DynamoDB"].N-first.DDBReads)/a
	m.CPUPerAccount = time.Duration(float64(first.CPU) / a)
	if fn := o.run("bootstrap"); fn != nil {
		m.Setting, m.Probe = fn.Setting, fn.Limit.Probe
		m.CPUPerAccount = time.Duration(float64(fn.CPU) / a)
		m.RSSBaseMiB = float64(r.fn.MaxRSSKiB()) / 1024
		m.RSSPerAccountMiB = max(float64(fn.HWMKiB)/1024-m.RSSBaseMiB, 0) / a
	}
	return m, true
}

// run is the organisation run named name, nil when none.
func (o *orgResults) run(name string) *orgRun {
	if i := slices.IndexFunc(o.Runs, func(r orgRun) bool { return r.Name == name }); i >= 0 {
		return &o.Runs[i]
	}
	return nil
}
