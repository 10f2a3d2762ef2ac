package handler

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/oidcprovider"
	"github.com/thumbprint-drift/thumbprint-drift/internal/sorted"
)

// MaxResponseBytes is Lambda's limit on a synchronous invocation's response
// payload (6 MB: 6,291,556 bytes). The report is bounded to it as the
// runtime sends it (ResponseSize).
const MaxResponseBytes = 6_291_556

// OtherHosts is the host of an omitted group that merges the groups of one
// outcome when the groups themselves do not fit.
const OtherHosts = "(other hosts)"

// ResponseSize is the size of v as the runtime posts it: aws-lambda-go's JSON
// encoder (HTML not escaped), newline included.
func ResponseSize(v any) int {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return 0
	}
	return b.Len()
}

// Bound keeps the report's response within max bytes (MaxResponseBytes), so
// that no organisation is too large for an invocation to answer:
//
//   - every detail (and an account section's error or reason) is cut to
//     alert.MaxDetailBytes, as in messages;
//   - past the bound, in-sync results leave Results first, then the account
//     sections of accounts without a problem, then the other results (least
//     severe first, the last ones of a severity first), then the remaining
//     account sections; Counts keeps every result, ResultsOmitted and
//     AccountsOmitted say how many left, and OmittedGroups summarises the
//     results other than in-sync that left, by outcome and host;
//   - when even the groups do not fit, they are merged per outcome under
//     OtherHosts, so the response always fits.
func Bound(rep *drift.Report, max int) {
	alert.CutDetails(rep)
	size := ResponseSize(rep)
	if size <= max {
		return
	}
	b := newBounder(rep)
	for _, item := range b.order() {
		if size <= max {
			break
		}
		size -= b.drop(item)
		if size <= max {
			// The estimate is conservative; measure what it would return.
			size = ResponseSize(b.report())
		}
	}
	out := b.report()
	if ResponseSize(out) > max {
		out.OmittedGroups = mergeGroups(out.OmittedGroups)
	}
	*rep = *out
}

// item is a result (account false) or an account section to leave out.
type item struct {
	account bool
	i       int
}

type bounder struct {
	rep         *drift.Report
	resultLen   []int
	accountLen  []int
	keptResult  []bool
	keptAccount []bool
	omitted     int
	accounts    int
	groups      map[drift.OmittedGroup]int // by outcome and host; Count unused
	groupOrder  []drift.OmittedGroup
}

func newBounder(rep *drift.Report) *bounder {
	b := &bounder{rep: rep, groups: map[drift.OmittedGroup]int{},
		resultLen: make([]int, len(rep.Results)), keptResult: make([]bool, len(rep.Results)),
		accountLen: make([]int, len(rep.Accounts)), keptAccount: make([]bool, len(rep.Accounts))}
	for i, r := range rep.Results {
		b.resultLen[i], b.keptResult[i] = ResponseSize(r), true // the newline stands for the comma
	}
	for i, a := range rep.Accounts {
		b.accountLen[i], b.keptAccount[i] = ResponseSize(a), true
	}
	return b
}

// order is the order in which results and account sections leave.
func (b *bounder) order() []item {
	var results []int
	for i := range b.rep.Results {
		results = append(results, i)
	}
	// Least severe first; of one rank, the last first.
	slices.SortStableFunc(results, func(x, y int) int {
		if d := rank(b.rep.Results[x]) - rank(b.rep.Results[y]); d != 0 {
			return d
		}
		return y - x
	})
	var out []item
	inSync := 0
	for _, i := range results {
		if b.rep.Results[i].Outcome == drift.InSync {
			out = append(out, item{i: i})
			inSync++
		}
	}
	var clean, troubled []item
	for i := len(b.rep.Accounts) - 1; i >= 0; i-- {
		if quiet(b.rep.Accounts[i]) {
			clean = append(clean, item{account: true, i: i})
		} else {
			troubled = append(troubled, item{account: true, i: i})
		}
	}
	out = append(out, clean...)
	for _, i := range results[inSync:] {
		out = append(out, item{i: i})
	}
	return append(out, troubled...)
}

// rank orders results by what they tell: in-sync, then no severity
// (skipped), info, warning, critical.
func rank(r drift.Result) int {
	if r.Outcome == drift.InSync {
		return 0
	}
	switch r.Severity {
	case drift.SeverityInfo:
		return 2
	case drift.SeverityWarning:
		return 3
	case drift.SeverityCritical:
		return 4
	}
	return 1
}

// quiet reports whether an account section shows nothing but in-sync or
// skipped providers.
func quiet(a drift.AccountSummary) bool {
	if a.Error != "" || a.Skipped != "" {
		return false
	}
	for o, n := range a.Counts {
		if n > 0 && o != drift.InSync && o != drift.Skipped {
			return false
		}
	}
	return true
}

// drop leaves it out and returns an upper bound of the bytes it saves: its
// own length less what the omitted fields and its group may add.
func (b *bounder) drop(it item) int {
	if it.account {
		b.keptAccount[it.i] = false
		b.accounts++
		saved := b.accountLen[it.i]
		if b.accounts == 1 {
			saved -= len(`,"accounts_omitted":`) + 10
		}
		return saved
	}
	b.keptResult[it.i] = false
	b.omitted++
	saved := b.resultLen[it.i]
	if b.omitted == 1 {
		saved -= len(`,"results_omitted":`) + 10
	}
	r := b.rep.Results[it.i]
	if r.Outcome == drift.InSync {
		return saved
	}
	g := drift.OmittedGroup{Outcome: r.Outcome, Host: hostOf(r)}
	if _, ok := b.groups[g]; !ok {
		b.groupOrder = append(b.groupOrder, g)
		saved -= ResponseSize(drift.OmittedGroup{Outcome: g.Outcome, Host: g.Host, Count: 1 << 30})
		if len(b.groupOrder) == 1 {
			saved -= len(`,"omitted_groups":[]`)
		}
	}
	b.groups[g]++
	return saved
}

// report is the bounded report as it stands.
func (b *bounder) report() *drift.Report {
	out := *b.rep
	out.Results = make([]drift.Result, 0, len(b.rep.Results)-b.omitted)
	for i, r := range b.rep.Results {
		if b.keptResult[i] {
			out.Results = append(out.Results, r)
		}
	}
	if b.rep.Accounts != nil {
		out.Accounts = make([]drift.AccountSummary, 0, len(b.rep.Accounts)-b.accounts)
		for i, a := range b.rep.Accounts {
			if b.keptAccount[i] {
				out.Accounts = append(out.Accounts, a)
			}
		}
	}
	out.ResultsOmitted = b.rep.ResultsOmitted + b.omitted
	out.AccountsOmitted = b.rep.AccountsOmitted + b.accounts
	out.OmittedGroups = append([]drift.OmittedGroup(nil), b.rep.OmittedGroups...)
	for _, g := range b.groupOrder {
		g.Count = b.groups[g]
		out.OmittedGroups = append(out.OmittedGroups, g)
	}
	sortGroups(out.OmittedGroups)
	return &out
}

// mergeGroups merges groups per outcome under OtherHosts.
func mergeGroups(groups []drift.OmittedGroup) []drift.OmittedGroup {
	by := map[drift.Outcome]int{}
	for _, g := range groups {
		by[g.Outcome] += g.Count
	}
	out := make([]drift.OmittedGroup, 0, len(by))
	for o, n := range by {
		out = append(out, drift.OmittedGroup{Outcome: o, Host: OtherHosts, Count: n})
	}
	sortGroups(out)
	return out
}

// sortGroups puts the largest groups first, then by outcome and host.
func sortGroups(groups []drift.OmittedGroup) {
	order := sorted.Order(len(groups), func(i, j int) int {
		x, y := &groups[i], &groups[j]
		if x.Count != y.Count {
			return y.Count - x.Count
		}
		if c := strings.Compare(string(x.Outcome), string(y.Outcome)); c != 0 {
			return c
		}
		return strings.Compare(x.Host, y.Host)
	})
	in := slices.Clone(groups)
	for k, j := range order {
		groups[k] = in[j]
	}
}

// hostOf is a result's grouping host: Host as the engine set it, else the
// host of the Url in its ARN, else its account.
func hostOf(r drift.Result) string {
	if r.Host != "" {
		return r.Host
	}
	if a, err := oidcprovider.ParseARN(r.ProviderARN); err == nil {
		return a.Host()
	}
	if r.AccountID != "" {
		return "account " + r.AccountID
	}
	return strconv.Quote(r.ProviderARN)
}
