package testpeer

import (
	"context"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
)

// Op names one API operation of one service, as the SDK names them
// (Service "IAM", "STS", "DynamoDB"; Operation "GetOpenIDConnectProvider").
type Op struct {
	Service, Operation string
}

// CallStats is what a CallMeter saw of one operation.
type CallStats struct {
	N      int           // calls, each counted once however many attempts it took
	Errors int           // calls that failed after their retries
	Time   time.Duration // their summed latency, retries included
}

// CallMeter counts and times the AWS calls of the clients whose
// aws.Config.APIOptions hold its APIOption: by service and operation, and the
// span of each account's calls (first start to last end), an account being
// the one named by the call's role or provider ARN.
type CallMeter struct {
	mu      sync.Mutex
	calls   map[Op]CallStats
	first   map[string]time.Time
	last    map[string]time.Time
	started time.Time
}

// NewCallMeter returns an empty meter.
func NewCallMeter() *CallMeter {
	m := &CallMeter{}
	m.Reset()
	return m
}

// Reset forgets every call.
func (m *CallMeter) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = map[Op]CallStats{}
	m.first, m.last = map[string]time.Time{}, map[string]time.Time{}
}

// APIOption installs the meter first in a client's stack, around retries.
func (m *CallMeter) APIOption(s *middleware.Stack) error {
	return s.Initialize.Add(middleware.InitializeMiddlewareFunc("TestpeerCallMeter",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c := Op{Service: awsmiddleware.GetServiceID(ctx), Operation: awsmiddleware.GetOperationName(ctx)}
			start := time.Now()
			out, md, err := next.HandleInitialize(ctx, in)
			m.record(c, paramAccount(in.Parameters), start, time.Now(), err)
			return out, md, err
		}), middleware.Before)
}

// paramAccount is the account a call acts in, when its input names one.
func paramAccount(params any) string {
	switch v := params.(type) {
	case *sts.AssumeRoleInput:
		return accounts.AccountOf(aws.ToString(v.RoleArn))
	case *iam.GetOpenIDConnectProviderInput:
		return accounts.AccountOf(aws.ToString(v.OpenIDConnectProviderArn))
	case *iam.UpdateOpenIDConnectProviderThumbprintInput:
		return accounts.AccountOf(aws.ToString(v.OpenIDConnectProviderArn))
	}
	return ""
}

func (m *CallMeter) record(c Op, account string, start, end time.Time, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.calls[c]
	s.N++
	s.Time += end.Sub(start)
	if err != nil {
		s.Errors++
	}
	m.calls[c] = s
	if account == "" {
		return
	}
	if f, ok := m.first[account]; !ok || start.Before(f) {
		m.first[account] = start
	}
	if end.After(m.last[account]) {
		m.last[account] = end
	}
}

// Calls is a copy of the counts by operation.
func (m *CallMeter) Calls() map[Op]CallStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.calls)
}

// Add is the sum of two stats.
func (s CallStats) Add(o CallStats) CallStats {
	return CallStats{N: s.N + o.N, Errors: s.Errors + o.Errors, Time: s.Time + o.Time}
}

// ByService sums the operations of each service.
func (m *CallMeter) ByService() map[string]CallStats {
	out := map[string]CallStats{}
	for c, s := range m.Calls() {
		out[c.Service] = out[c.Service].Add(s)
	}
	return out
}

// Total sums every operation.
func (m *CallMeter) Total() CallStats {
	var sum CallStats
	for _, s := range m.Calls() {
		sum = sum.Add(s)
	}
	return sum
}

// AccountSpan is the mean, over the accounts seen, of the time from an
// account's first call to the end of its last; 0 when none.
func (m *CallMeter) AccountSpan() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.first) == 0 {
		return 0
	}
	var sum time.Duration
	for a, f := range m.first {
		sum += m.last[a].Sub(f)
	}
	return sum / time.Duration(len(m.first))
}

// AsAccount makes moto_server answer a call as account id (its
// x-moto-account-id header), without assuming a role there first.
func AsAccount(id string) func(*middleware.Stack) error {
	return smithyhttp.AddHeaderValue("x-moto-account-id", id)
}

// Timing sums durations from many goroutines, for a mean.
type Timing struct{ n, total atomic.Int64 }

// Since adds the time since start.
func (t *Timing) Since(start time.Time) { t.n.Add(1); t.total.Add(int64(time.Since(start))) }

// Mean is the mean of the durations added; 0 without any.
func (t *Timing) Mean() time.Duration { return time.Duration(t.total.Load() / max(t.n.Load(), 1)) }

// Mean is the mean time of a call; 0 without calls.
func (s CallStats) Mean() time.Duration { return s.Time / time.Duration(max(s.N, 1)) }
