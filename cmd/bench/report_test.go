package main

import (
	"math"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/fleet"
)

func TestHandshakeRatio(t *testing.T) {
	runs := func(k int, secs ...float64) []engineResult {
		var rs []engineResult
		for _, s := range secs {
			rs = append(rs, engineResult{K: k, Took: time.Duration(s * float64(time.Second))})
		}
		return rs
	}
	tests := []struct {
		name string
		k    int
		runs []engineResult
		want float64
	}{
		{"medians, not means", 2, append(runs(2, 3, 0.6, 0.9), runs(1, 0.5, 0.6, 0.4)...), 0.9 / 0.5},
		{"even count takes the upper middle", 2, append(runs(2, 1, 2), runs(1, 1, 1)...), 2},
		{"another K", 3, append(runs(3, 1.3), runs(1, 1)...), 1.3},
		{"no run at 1", 2, runs(2, 1, 1), 0},
		{"none", 2, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &results{opts: options{handshakes: tt.k, hsRounds: 3}, handshakes: tt.runs}
			if got, _, _ := r.handshakeRatio(); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("handshakeRatio = %v, want %v", got, tt.want)
			}
		})
	}
	invalid := &results{opts: options{handshakes: 2}, handshakes: append(runs(2, 1), runs(1, 1)...)}
	invalid.handshakes[1].Problem = "checked 99 of 100 providers"
	if got, _, _ := invalid.handshakeRatio(); got != 0 {
		t.Errorf("a comparison with an invalid run gave %v", got)
	}
}

// TestMedianRun: the table's run is the one with the median measured /
// limit (the higher middle one for an even count) and carries every run's
// ratio in run order; a run with a problem is what the table shows.
func TestMedianRun(t *testing.T) {
	t.Parallel()
	const rtt = 50 * time.Millisecond
	shape := fleet.Shape{Providers: 100, URLs: 100, Hosts: 20, Handshakes: 2, Concurrency: 8}
	run := func(took time.Duration, problem string) engineResult {
		return engineResult{Shape: shape, Took: took, IAMAlone: 200 * time.Millisecond, ListLone: 3 * time.Millisecond, Problem: problem}
	}
	for _, tt := range []struct {
		name       string
		runs       []engineResult
		want       time.Duration
		wantRatios []float64
		wantFloors []float64 // the floor: IAM alone + one round trip (the last provider's GET) = 250 ms
		problem    string
	}{
		{"one run", []engineResult{run(300*time.Millisecond, "")}, 300 * time.Millisecond, []float64{1.5}, []float64{1.2}, ""},
		{"three runs", []engineResult{run(320*time.Millisecond, ""), run(260*time.Millisecond, ""), run(280*time.Millisecond, "")}, 280 * time.Millisecond, []float64{1.6, 1.3, 1.4}, []float64{1.28, 1.04, 1.12}, ""},
		{"four runs: the higher middle one", []engineResult{run(260*time.Millisecond, ""), run(340*time.Millisecond, ""), run(280*time.Millisecond, ""), run(300*time.Millisecond, "")}, 300 * time.Millisecond, []float64{1.3, 1.7, 1.4, 1.5}, []float64{1.04, 1.36, 1.12, 1.2}, ""},
		{"a problem", []engineResult{run(260*time.Millisecond, ""), run(280*time.Millisecond, "result not as seeded")}, 280 * time.Millisecond, nil, nil, "result not as seeded"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := medianRun(tt.runs, rtt)
			if got.Took != tt.want || got.Problem != tt.problem {
				t.Errorf("median run took %s (problem %q), want %s (%q)", got.Took, got.Problem, tt.want, tt.problem)
			}
			same := func(what string, got, want []float64) {
				if len(got) != len(want) {
					t.Fatalf("%s %v, want %v", what, got, want)
				}
				for i, r := range got {
					if math.Abs(r-want[i]) > 1e-9 {
						t.Errorf("%s %v, want %v", what, got, want)
					}
				}
			}
			same("ratios", got.Ratios, tt.wantRatios)
			same("floor ratios", got.FloorRatios, tt.wantFloors)
		})
	}
}

// TestTargetVerdict: a figure with a target is met or MISSED at its edge
// and one past it; one only reported (limit_ratio since the ignore rule)
// never counts as either; a figure not measured is said so.
func TestTargetVerdict(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		t            target
		want, wanted string
	}{
		{target{cmp: "<=", value: 1.3, want: 1.3}, "met", "<= 1.3"},
		{target{cmp: "<=", value: 1.31, want: 1.3}, "MISSED", "<= 1.3"},
		{target{cmp: ">=", value: 666.7, want: 666.7}, "met", ">= 666.7"},
		{target{cmp: ">=", value: 666.6, want: 666.7}, "MISSED", ">= 666.7"},
		{target{cmp: "", value: 1.9}, "reported", "-"},
		{target{cmp: "<=", want: 1.3}, "not measured", "<= 1.3"},
	} {
		if got := tt.t.verdict(); got != tt.want {
			t.Errorf("%+v: verdict %q, want %q", tt.t, got, tt.want)
		}
		if got := tt.t.wanted(); got != tt.wanted {
			t.Errorf("%+v: wanted %q, want %q", tt.t, got, tt.wanted)
		}
	}
}
