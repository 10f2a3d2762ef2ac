package fleet

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLimitRTT(t *testing.T) {
	tests := []struct {
		name string
		s    Shape
		want int
	}{
		// every host at once (20 <= Pc 64), each host's 5 discoveries and one
		// more handshake (the TLS 1.2 check) at once: max(D, S) = 3
		{"100p/20h", Shape{Providers: 100, URLs: 100, Hosts: 20, Handshakes: 2, Concurrency: 8}, 3},
		// 100 hosts over Pc 64 slots: two turns
		{"100p/100h", Shape{Providers: 100, URLs: 100, Hosts: 100, Handshakes: 2, Concurrency: 8}, 6},
		{"100p/100h Pc 8", Shape{Providers: 100, URLs: 100, Hosts: 100, Handshakes: 2, Concurrency: 8, ProbeConcurrency: 8}, 39},
		{"100p/100h Pc 100", Shape{Providers: 100, URLs: 100, Hosts: 100, Handshakes: 2, Concurrency: 8, ProbeConcurrency: 100}, 3},
		// one host's 100 discoveries and 1 handshake, 8 connections at once:
		// the first 8 on new connections (3), the other 93 as GETs on the
		// 8 kept, ceil(93/8) = 12 more round trips
		{"100 Urls on one host", Shape{Providers: 100, URLs: 100, Hosts: 1, Handshakes: 2, Concurrency: 8}, 15},
		{"one provider, 5 handshakes", Shape{Providers: 1, URLs: 1, Hosts: 1, Handshakes: 5, Concurrency: 8}, 3},
		// 7 discoveries and the TLS 1.2 check fit in M = 8 at once (the first
		// discovery's handshake is a sample, the check the other)
		{"7 Urls on one host", Shape{Providers: 7, URLs: 7, Hosts: 1, Handshakes: 2, Concurrency: 8}, 3},
		{"7 Urls on one host, 1 handshake", Shape{Providers: 7, URLs: 7, Hosts: 1, Handshakes: 1, Concurrency: 8}, 3},
		{"7 Urls on one host, 3 handshakes: one GET more", Shape{Providers: 7, URLs: 7, Hosts: 1, Handshakes: 3, Concurrency: 8}, 4},
		// organisation Shape: 20 accounts x the same 100 Urls, discovered once per run
		{"2000 providers, 100 Urls", Shape{Providers: 2000, URLs: 100, Hosts: 20, Handshakes: 2, Concurrency: 32}, 3},
		{"no providers", Shape{Providers: 0, URLs: 0, Hosts: 0, Handshakes: 2, Concurrency: 8}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LimitRTT(tt.s); got != tt.want {
				t.Errorf("LimitRTT(%+v) = %d, want %d", tt.s, got, tt.want)
			}
		})
	}
}

func TestLimit(t *testing.T) {
	const ms = time.Millisecond
	s := Shape{Providers: 100, URLs: 100, Hosts: 20, Handshakes: 2, Concurrency: 8}
	tests := []struct {
		name           string
		list, iamAlone time.Duration
		want           time.Duration
	}{
		// List, then the probing (3 R) beside the IAM reads
		{"probing longer", 10 * ms, 100 * ms, 10*ms + 150*ms},
		{"IAM reads longer", 10 * ms, 300 * ms, 300 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Limit(s, 50*ms, tt.list, tt.iamAlone); got != tt.want {
				t.Errorf("Limit = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestFloor(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name           string
		s              Shape
		list, iamAlone time.Duration
		want           time.Duration
	}{
		// the last provider read has a host with a connection open: a GET (1 R) after its Get
		{"100p/20h, IAM reads longer", Shape{Providers: 100, URLs: 100, Hosts: 20, Handshakes: 2, Concurrency: 8}, 10 * ms, 240 * ms, 240*ms + 50*ms},
		// one Url per host: the last provider read is its host's first contact (3 R)
		{"100p/100h", Shape{Providers: 100, URLs: 100, Hosts: 100, Handshakes: 2, Concurrency: 8}, 10 * ms, 320 * ms, 320*ms + 150*ms},
		// the probing is longer still: the floor is the limit
		{"probing longer", Shape{Providers: 100, URLs: 100, Hosts: 20, Handshakes: 2, Concurrency: 8}, 10 * ms, 50 * ms, 10*ms + 150*ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Floor(tt.s, 50*ms, tt.list, tt.iamAlone); got != tt.want {
				t.Errorf("Floor = %s, want %s", got, tt.want)
			}
			if lim := Limit(tt.s, 50*ms, tt.list, tt.iamAlone); Floor(tt.s, 50*ms, tt.list, tt.iamAlone) < lim {
				t.Errorf("Floor below Limit %s", lim)
			}
		})
	}
}

// arnsOn is n providers over h hosts in turn (provider i on host i mod h), as
// the engine's List returns them: ARNs sorted.
func arnsOn(n, h int) []string {
	arns := make([]string, n)
	for i := range arns {
		arns[i] = fmt.Sprintf("arn:aws:iam::123456789012:oidc-provider/127.0.0.1:%d/id/%04X", 10000+i%h, i)
	}
	slices.Sort(arns)
	return arns
}

// engineJobs is n providers over h hosts in the engine's order.
func engineJobs(n, h int) []Job { return JobsOf(EngineOrder(arnsOn(n, h))) }

// sortedJobs is the same providers in sorted ARN order, a host's providers
// adjacent: the engine's order before drift.WorkOrder.
func sortedJobs(n, h int) []Job { return JobsOf(arnsOn(n, h)) }

func TestSimulateRTT(t *testing.T) {
	tests := []struct {
		name  string
		jobs  []Job
		pc, k int
		want  int
	}{
		{name: "one provider", jobs: engineJobs(1, 1), pc: 64, k: 2, want: 3},
		{name: "two providers, one host: at once", jobs: engineJobs(2, 1), pc: 64, k: 2, want: 3},
		{name: "same Url twice: discovered once", jobs: []Job{{"h/a", "h"}, {"h/a", "h"}}, pc: 64, k: 2, want: 3},
		{name: "100p/20h", jobs: sortedJobs(100, 20), pc: 64, k: 2, want: 3},
		{name: "100p/100h: two turns of 64 slots", jobs: sortedJobs(100, 100), pc: 64, k: 2, want: 6},
		{name: "100p/100h, 8 slots", jobs: sortedJobs(100, 100), pc: 8, k: 2, want: 39},
		{name: "one slot is the sum", jobs: sortedJobs(100, 20), pc: 1, k: 2, want: 60},
		// 7 discoveries and the TLS 1.2 check at once; then GETs on the 7
		// kept connections (7 per round trip from 3), and one new
		// connection in the check's place (from 2, kept from 5)
		{name: "100 Urls on one host: 8 connections at once, then kept", jobs: sortedJobs(100, 1), pc: 64, k: 2, want: 15},
		// the 8th discovery goes on a new connection in the check's place
		// (2 + 3), the 9th on a kept one (3 + 1)
		{name: "9 Urls on one host", jobs: sortedJobs(9, 1), pc: 64, k: 2, want: 5},
		{name: "none", jobs: nil, pc: 64, k: 2, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SimulateRTT(tt.jobs, tt.pc, tt.k); got != tt.want {
				t.Errorf("SimulateRTT = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestSimulateNeverBeatsLimit(t *testing.T) {
	for _, h := range []int{1, 5, 20, 37, 100} {
		for _, pc := range []int{1, 2, 8, 32, 64} {
			for _, k := range []int{1, 2, 5} {
				for order, jobs := range map[string][]Job{"engine": engineJobs(100, h), "sorted": sortedJobs(100, h)} {
					s := Shape{Providers: 100, URLs: 100, Hosts: h, Handshakes: k, Concurrency: 8, ProbeConcurrency: pc}
					if sim, lim := SimulateRTT(jobs, pc, k), LimitRTT(s); sim < lim {
						t.Errorf("%s %+v: schedule %d round trips beats the Limit %d", order, s, sim, lim)
					}
				}
			}
		}
	}
}

// TestEngineOrder pins EngineOrder (drift.WorkOrder)'s rule: round robin over
// the hosts (host[:port] of the Url in the ARN) in order of first appearance,
// each host's providers in their own order.
func TestEngineOrder(t *testing.T) {
	const p = "arn:aws:iam::111111111111:oidc-provider/"
	in := []string{
		p + "gitlab.example.com",
		p + "oidc.eks.us-east-1.amazonaws.com/id/A",
		p + "oidc.eks.us-east-1.amazonaws.com/id/B",
		p + "oidc.eks.us-east-1.amazonaws.com/id/C",
		p + "token.actions.githubusercontent.com",
		p + "idp.example.com:8443/tenant-1",
		p + "idp.example.com:8443/tenant-2",
		p + "idp.example.com/tenant-3", // another port: another host
	}
	want := []string{
		p + "gitlab.example.com",
		p + "oidc.eks.us-east-1.amazonaws.com/id/A",
		p + "token.actions.githubusercontent.com",
		p + "idp.example.com:8443/tenant-1",
		p + "idp.example.com/tenant-3",
		p + "oidc.eks.us-east-1.amazonaws.com/id/B",
		p + "idp.example.com:8443/tenant-2",
		p + "oidc.eks.us-east-1.amazonaws.com/id/C",
	}
	if got := EngineOrder(in); !slices.Equal(got, want) {
		t.Errorf("EngineOrder =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := EngineOrder(nil); len(got) != 0 {
		t.Errorf("EngineOrder(nil) = %v", got)
	}
	// The bench's load: 100 providers on 20 hosts, sorted ARNs in: the first
	// 20 jobs go to 20 different hosts.
	first := map[string]bool{}
	for _, j := range engineJobs(100, 20)[:20] {
		first[j.Host] = true
	}
	if len(first) != 20 {
		t.Errorf("first 20 jobs of 100p/20h on %d hosts, want 20", len(first))
	}
}
