package main

import (
	"math"
	"testing"
	"time"
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
