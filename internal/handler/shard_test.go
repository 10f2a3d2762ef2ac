package handler_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/handler"
	"github.com/thumbprint-drift/thumbprint-drift/internal/shard"
)

// steps records the steps it was asked to run.
type steps struct{ got []string }

func (s *steps) Plan(context.Context) (*shard.Planned, error) {
	s.got = append(s.got, "plan")
	return &shard.Planned{Run: "r"}, nil
}

func (s *steps) Check(_ context.Context, run string, accounts []string) (*shard.Checked, error) {
	s.got = append(s.got, "check "+run+" "+strings.Join(accounts, ","))
	return &shard.Checked{Run: run}, nil
}

func (s *steps) Notify(_ context.Context, run string, batches []shard.BatchRef) (*drift.Report, error) {
	s.got = append(s.got, "notify "+run+" "+batches[0].Key)
	rep := handler.EmptyReport(config.ModeRemediate)
	rep.Checked = 7
	return rep, nil
}

// runner fails a test that runs the engine.
type runner struct{ t *testing.T }

func (r runner) Run(context.Context, drift.Request) (*drift.Report, error) {
	r.t.Error("a shard payload ran the engine")
	return nil, nil
}

func TestHandleShardPayloads(t *testing.T) {
	const run = "20261207T031500Z-0a1b2c3d"
	key := "runs/" + run + "/checked-0123456789abcdef.json"
	tests := []struct {
		name    string
		payload string
		want    string // the step run; "" when refused
	}{
		{"plan", `{"shard": "plan"}`, "plan"},
		{"check", `{"shard": "check", "run": "` + run + `", "accounts": ["111111111111", "222222222222"]}`, "check " + run + " 111111111111,222222222222"},
		{"notify", `{"shard": "notify", "run": "` + run + `", "batches": [{"key": "` + key + `"}]}`, "notify " + run + " " + key},
		{"unknown step", `{"shard": "publish"}`, ""},
		{"check of no account", `{"shard": "check", "run": "` + run + `", "accounts": []}`, ""},
		{"a manual key beside shard", `{"shard": "plan", "mode": "report"}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &steps{}
			var metrics bytes.Buffer
			h := handler.New(runner{t}, nil, nil, &metrics, "drift-fn", config.ModeRemediate).WithSharder(s)
			out, err := h.Handle(context.Background(), []byte(tc.payload))
			if tc.want == "" {
				if !errors.Is(err, handler.ErrBadEvent) || len(s.got) != 0 {
					t.Fatalf("Handle() = %v, %v after steps %v; want ErrBadEvent and no step", out, err, s.got)
				}
				return
			}
			if err != nil || out == nil {
				t.Fatalf("Handle() = %v, %v", out, err)
			}
			if len(s.got) != 1 || s.got[0] != tc.want {
				t.Errorf("steps %q, want %q", s.got, tc.want)
			}
			// Notify's report is the run's: its metrics are written once, there.
			if wrote := strings.Contains(metrics.String(), "ProvidersChecked"); wrote != strings.HasPrefix(tc.want, "notify") {
				t.Errorf("metrics written %v for %s", wrote, tc.want)
			}
		})
	}
}

func TestHandleShardWithoutSharder(t *testing.T) {
	h := handler.New(runner{t}, nil, nil, nil, "drift-fn", config.ModeRemediate)
	if _, err := h.Handle(context.Background(), []byte(`{"shard": "plan"}`)); !errors.Is(err, handler.ErrBadEvent) || !errors.Is(err, shard.ErrNotSharded) {
		t.Fatalf("Handle() error = %v, want ErrBadEvent and ErrNotSharded", err)
	}
}

func TestHandleOtherPayloadsRunTheEngine(t *testing.T) {
	var ran bool
	h := handler.New(runFunc(func(context.Context, drift.Request) (*drift.Report, error) {
		ran = true
		return handler.EmptyReport(config.ModeReport), nil
	}), nil, nil, nil, "drift-fn", config.ModeRemediate).WithSharder(&steps{})
	if _, err := h.Handle(context.Background(), []byte(`{"mode": "report"}`)); err != nil || !ran {
		t.Fatalf("Handle() error = %v, ran %v; want the engine run", err, ran)
	}
}

type runFunc func(context.Context, drift.Request) (*drift.Report, error)

func (f runFunc) Run(ctx context.Context, req drift.Request) (*drift.Report, error) {
	return f(ctx, req)
}

// bigNotify answers notify with a report of 2,000 drifted providers, far
// over what Step Functions passes between states.
type bigNotify struct{ steps }

func (b *bigNotify) Notify(context.Context, string, []shard.BatchRef) (*drift.Report, error) {
	return orgReport(400, 5, func(acct string, i int) drift.Result {
		return providerResult(acct, ghHost, "", drift.Drift, drift.SeverityCritical, "mode alert: not applied")
	}), nil
}

// TestHandleBoundsNotify: notify's report, the sharded run's, is bounded
// by the handler as an invocation's is, to shard.DefaultMaxReportBytes.
func TestHandleBoundsNotify(t *testing.T) {
	h := handler.New(runner{t}, nil, nil, nil, "drift-fn", config.ModeRemediate).WithSharder(&bigNotify{})
	out, err := h.Handle(context.Background(), []byte(`{"shard": "notify", "run": "20261207T031500Z-0a1b2c3d", "batches": [{"key": "runs/20261207T031500Z-0a1b2c3d/checked-0123456789abcdef.json"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	rep := out.(*drift.Report)
	if n := handler.ResponseSize(rep); n > shard.DefaultMaxReportBytes || rep.ResultsOmitted == 0 || len(rep.OmittedGroups) != 1 {
		t.Errorf("notify's report of %d bytes, %d results omitted, groups %v; want at most %d bytes, drift past it in one group",
			n, rep.ResultsOmitted, rep.OmittedGroups, shard.DefaultMaxReportBytes)
	}
}
