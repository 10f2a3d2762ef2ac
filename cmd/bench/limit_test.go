package main

import (
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"
)

func TestLimitRTT(t *testing.T) {
	tests := []struct {
		name string
		s    shape
		want int
	}{
		// work term: 100 discoveries x 3 + 20 hosts x 2 handshakes x 2 = 380, over 8 slots
		{"100p/20h C8", shape{Providers: 100, URLs: 100, Hosts: 20, Handshakes: 2, Concurrency: 8}, 48},
		// hosts term: the ceil(H/C) x (discovery + K handshakes) = 13 x 7
		{"100p/100h C8", shape{Providers: 100, URLs: 100, Hosts: 100, Handshakes: 2, Concurrency: 8}, 91},
		{"100p/100h C32", shape{Providers: 100, URLs: 100, Hosts: 100, Handshakes: 2, Concurrency: 32}, 28},
		{"100p/20h C32", shape{Providers: 100, URLs: 100, Hosts: 20, Handshakes: 2, Concurrency: 32}, 12},
		{"serial: every round trip in turn", shape{Providers: 100, URLs: 100, Hosts: 20, Handshakes: 2, Concurrency: 1}, 380},
		{"serial, one host each", shape{Providers: 100, URLs: 100, Hosts: 100, Handshakes: 2, Concurrency: 1}, 700},
		{"one handshake per host", shape{Providers: 100, URLs: 100, Hosts: 20, Handshakes: 1, Concurrency: 8}, 43},
		{"more slots than providers", shape{Providers: 3, URLs: 3, Hosts: 3, Handshakes: 2, Concurrency: 64}, 7},
		{"one provider", shape{Providers: 1, URLs: 1, Hosts: 1, Handshakes: 5, Concurrency: 8}, 13},
		// organisation shape: 20 accounts x the same 100 Urls, discovered once per run
		{"2000 providers, 100 Urls", shape{Providers: 2000, URLs: 100, Hosts: 20, Handshakes: 2, Concurrency: 32}, 12},
		{"no providers", shape{Providers: 0, URLs: 0, Hosts: 0, Handshakes: 2, Concurrency: 8}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := limitRTT(tt.s); got != tt.want {
				t.Errorf("limitRTT(%+v) = %d, want %d", tt.s, got, tt.want)
			}
		})
	}
}

// jobsOn spreads n providers over h hosts in turn (provider i on host i mod h).
func jobsOn(n, h int) []job {
	jobs := make([]job, n)
	for i := range jobs {
		host := fmt.Sprintf("127.0.0.1:%d", 10000+i%h)
		jobs[i] = job{URL: fmt.Sprintf("%s/id/%04X", host, i), Host: host}
	}
	return jobs
}

// sortedByURL is the engine's order: ARNs sorted, so a host's providers are adjacent.
func sortedByURL(jobs []job) []job {
	s := slices.Clone(jobs)
	sort.Slice(s, func(i, j int) bool { return s[i].URL < s[j].URL })
	return s
}

func TestSimulateRTT(t *testing.T) {
	tests := []struct {
		name       string
		jobs       []job
		conc, k    int
		want       int
		wantAtMost int // when the exact figure is not the point
	}{
		{name: "one provider", jobs: jobsOn(1, 1), conc: 8, k: 2, want: 7},
		{name: "two providers, one host, in parallel: the second waits for the host", jobs: jobsOn(2, 1), conc: 2, k: 2, want: 7},
		{name: "two providers, one host, in turn: the second only discovers", jobs: jobsOn(2, 1), conc: 1, k: 2, want: 10},
		{name: "same Url twice: discovered once", jobs: []job{{"h/a", "h"}, {"h/a", "h"}}, conc: 2, k: 2, want: 7},
		{name: "serial is the sum", jobs: sortedByURL(jobsOn(100, 20)), conc: 1, k: 2, want: 380},
		{name: "100p/20h C8 hosts interleaved reaches the limit", jobs: jobsOn(100, 20), conc: 8, k: 2, want: 48},
		{name: "100p/20h C8 hosts adjacent (engine order)", jobs: sortedByURL(jobsOn(100, 20)), conc: 8, k: 2, want: 73},
		{name: "100p/100h C8", jobs: sortedByURL(jobsOn(100, 100)), conc: 8, k: 2, want: 91},
		{name: "none", jobs: nil, conc: 8, k: 2, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := simulateRTT(tt.jobs, tt.conc, tt.k); got != tt.want {
				t.Errorf("simulateRTT = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestSimulateNeverBeatsLimit(t *testing.T) {
	for _, h := range []int{1, 5, 20, 37, 100} {
		for _, c := range []int{1, 2, 8, 32, 64} {
			for _, k := range []int{1, 2, 5} {
				for _, order := range []string{"interleaved", "sorted"} {
					jobs := jobsOn(100, h)
					if order == "sorted" {
						jobs = sortedByURL(jobs)
					}
					s := shape{Providers: 100, URLs: 100, Hosts: h, Handshakes: k, Concurrency: c}
					if sim, lim := simulateRTT(jobs, c, k), limitRTT(s); sim < lim {
						t.Errorf("%s %+v: schedule %d round trips beats the limit %d", order, s, sim, lim)
					}
				}
			}
		}
	}
}

func TestInterleave(t *testing.T) {
	in := []string{"a1", "a2", "b1", "c1", "c2", "c3"}
	got := interleave(in, func(s string) string { return s[:1] })
	want := []string{"a1", "b1", "c1", "a2", "c2", "c3"}
	if !slices.Equal(got, want) {
		t.Errorf("interleave = %v, want %v", got, want)
	}
	if got := interleave([]string(nil), func(s string) string { return s }); len(got) != 0 {
		t.Errorf("interleave(nil) = %v", got)
	}
}

func TestMedian(t *testing.T) {
	if got := median(nil); got != 0 {
		t.Errorf("median(nil) = %v", got)
	}
	if got := median([]time.Duration{5, 1, 3}); got != 3 {
		t.Errorf("median odd = %v", got)
	}
	if got := median([]time.Duration{4, 1, 3, 2}); got != 2 {
		t.Errorf("median even = %v, want 2 (mean of 2 and 3, truncated)", got)
	}
}
