package shard

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
)

const testRun = "20261207T031500Z-0a1b2c3d"

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%012d", 100000000000+i)
	}
	return out
}

func keys(n int) []BatchRef {
	out := make([]BatchRef, n)
	for i := range out {
		out[i] = BatchRef{Key: fmt.Sprintf("runs/%s/checked-%016x.json", testRun, i)}
	}
	return out
}

func payload(t *testing.T, v map[string]any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    Step
		n       int    // accounts or batches
		wantErr string // substring
	}{
		{name: "plan", payload: `{"shard": "plan"}`, want: StepPlan},
		{name: "plan with a run", payload: `{"shard": "plan", "run": "` + testRun + `"}`, wantErr: "no other key"},
		{name: "plan with trailing data", payload: `{"shard": "plan"} {}`, wantErr: "after the JSON object"},
		{name: "unknown step", payload: `{"shard": "apply"}`, wantErr: `shard "apply"`},
		{name: "unknown key", payload: `{"shard": "plan", "mode": "report"}`, wantErr: "unknown field"},
		{name: "check", payload: payload(t, map[string]any{"shard": "check", "run": testRun, "accounts": ids(3)}), want: StepCheck, n: 3},
		{name: "check at the largest batch", payload: payload(t, map[string]any{"shard": "check", "run": testRun, "accounts": ids(config.MaxShardSize)}), want: StepCheck, n: config.MaxShardSize},
		{name: "check one past the largest batch", payload: payload(t, map[string]any{"shard": "check", "run": testRun, "accounts": ids(config.MaxShardSize + 1)}), wantErr: "10001 accounts"},
		{name: "check without accounts", payload: `{"shard": "check", "run": "` + testRun + `"}`, wantErr: `want "accounts"`},
		{name: "check with no account", payload: `{"shard": "check", "run": "` + testRun + `", "accounts": []}`, wantErr: "0 accounts"},
		{name: "check with a short id", payload: `{"shard": "check", "run": "` + testRun + `", "accounts": ["12345"]}`, wantErr: "12-digit"},
		{name: "check with an account twice", payload: `{"shard": "check", "run": "` + testRun + `", "accounts": ["111111111111", "111111111111"]}`, wantErr: "twice"},
		{name: "check without a run", payload: `{"shard": "check", "accounts": ["111111111111"]}`, wantErr: "run none"},
		{name: "check with a path as run", payload: `{"shard": "check", "run": "../x", "accounts": ["111111111111"]}`, wantErr: `run "../x"`},
		{name: "check with batches", payload: `{"shard": "check", "run": "` + testRun + `", "accounts": ["111111111111"], "batches": []}`, wantErr: "belongs to notify"},
		{name: "notify", payload: payload(t, map[string]any{"shard": "notify", "run": testRun, "batches": keys(2)}), want: StepNotify, n: 2},
		{name: "notify at the most batches", payload: payload(t, map[string]any{"shard": "notify", "run": testRun, "batches": keys(MaxBatches)}), want: StepNotify, n: MaxBatches},
		{name: "notify one past the most batches", payload: payload(t, map[string]any{"shard": "notify", "run": testRun, "batches": keys(MaxBatches + 1)}), wantErr: "2001 batches"},
		{name: "notify with another run's batch", payload: `{"shard": "notify", "run": "` + testRun + `", "batches": [{"key": "runs/20261207T031500Z-ffffffff/checked-0000000000000000.json"}]}`, wantErr: "not a batch result of run"},
		{name: "notify with the plan's object", payload: `{"shard": "notify", "run": "` + testRun + `", "batches": [{"key": "runs/` + testRun + `/batches.json"}]}`, wantErr: "not a batch result"},
		{name: "notify with a batch twice", payload: payload(t, map[string]any{"shard": "notify", "run": testRun, "batches": append(keys(1), keys(1)...)}), wantErr: "twice"},
		{name: "notify with an extra key in a batch", payload: `{"shard": "notify", "run": "` + testRun + `", "batches": [{"key": "x", "counts": {}}]}`, wantErr: "unknown field"},
		{name: "notify with accounts", payload: `{"shard": "notify", "run": "` + testRun + `", "accounts": ["111111111111"], "batches": []}`, wantErr: "belongs to check"},
		{name: "notify with no batch", payload: `{"shard": "notify", "run": "` + testRun + `", "batches": []}`, wantErr: "0 batches"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := Parse([]byte(tc.payload))
			if tc.wantErr != "" {
				if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse() error = %v, want ErrBadRequest containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			if req.Step != tc.want || len(req.Accounts)+len(req.Batches) != tc.n {
				t.Errorf("Parse() = step %s with %d accounts and %d batches, want %s with %d", req.Step, len(req.Accounts), len(req.Batches), tc.want, tc.n)
			}
			if tc.want != StepPlan && req.Run != testRun {
				t.Errorf("run = %q, want %q", req.Run, testRun)
			}
		})
	}
}

func TestBatches(t *testing.T) {
	tests := []struct {
		n, size int
		want    []int
	}{
		{n: 60, size: 20, want: []int{20, 20, 20}},
		{n: 61, size: 20, want: []int{20, 20, 20, 1}},
		{n: 9, size: 10, want: []int{9}},
		{n: 10, size: 10, want: []int{10}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d by %d", tc.n, tc.size), func(t *testing.T) {
			in := ids(tc.n)
			var got []int
			var flat []string
			for _, b := range Batches(in, tc.size) {
				got = append(got, len(b))
				flat = append(flat, b...)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) || strings.Join(flat, ",") != strings.Join(in, ",") {
				t.Errorf("Batches sizes %v, want %v, every account once in order", got, tc.want)
			}
		})
	}
}
