package fleet

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestLimitRTT(t *testing.T) {
	tests := []struct {
		name string
		s    Shape
		want int
	}{
		// work term: 100 discoveries x 3 + 20 hosts x 2 handshakes x 2 = 380, over 8 slots
		{"100p/20h C8", Shape{Providers: 100, URLs: 100, Hosts: 20, Handshakes: 2, Concurrency: 8}, 48},
		// hosts term: the ceil(H/C) x (discovery + K handshakes) = 13 x 7
		{"100p/100h C8", Shape{Providers: 100, URLs: 100, Hosts: 100, Handshakes: 2, Concurrency: 8}, 91},
		{"100p/100h C32", Shape{Providers: 100, URLs: 100, Hosts: 100, Handshakes: 2, Concurrency: 32}, 28},
		{"100p/20h C32", Shape{Providers: 100, URLs: 100, Hosts: 20, Handshakes: 2, Concurrency: 32}, 12},
		{"serial: every round trip in turn", Shape{Providers: 100, URLs: 100, Hosts: 20, Handshakes: 2, Concurrency: 1}, 380},
		{"serial, one host each", Shape{Providers: 100, URLs: 100, Hosts: 100, Handshakes: 2, Concurrency: 1}, 700},
		{"one handshake per host", Shape{Providers: 100, URLs: 100, Hosts: 20, Handshakes: 1, Concurrency: 8}, 43},
		{"more slots than providers", Shape{Providers: 3, URLs: 3, Hosts: 3, Handshakes: 2, Concurrency: 64}, 7},
		{"one provider", Shape{Providers: 1, URLs: 1, Hosts: 1, Handshakes: 5, Concurrency: 8}, 13},
		// organisation Shape: 20 accounts x the same 100 Urls, discovered once per run
		{"2000 providers, 100 Urls", Shape{Providers: 2000, URLs: 100, Hosts: 20, Handshakes: 2, Concurrency: 32}, 12},
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
		name    string
		jobs    []Job
		conc, k int
		want    int
	}{
		{name: "one provider", jobs: engineJobs(1, 1), conc: 8, k: 2, want: 7},
		{name: "two providers, one host, in parallel: the second waits for the host", jobs: engineJobs(2, 1), conc: 2, k: 2, want: 7},
		{name: "two providers, one host, in turn: the second only discovers", jobs: engineJobs(2, 1), conc: 1, k: 2, want: 10},
		{name: "same Url twice: discovered once", jobs: []Job{{"h/a", "h"}, {"h/a", "h"}}, conc: 2, k: 2, want: 7},
		{name: "serial is the sum", jobs: engineJobs(100, 20), conc: 1, k: 2, want: 380},
		{name: "100p/20h C8 engine order reaches the limit", jobs: engineJobs(100, 20), conc: 8, k: 2, want: 48},
		{name: "100p/20h C8 sorted, hosts adjacent: workers queue behind one host", jobs: sortedJobs(100, 20), conc: 8, k: 2, want: 73},
		{name: "100p/20h C32 engine order: 32 first wait for 20 hosts, then 68 discoveries in 3 rounds", jobs: engineJobs(100, 20), conc: 32, k: 2, want: 16},
		{name: "100p/100h C8", jobs: engineJobs(100, 100), conc: 8, k: 2, want: 91},
		{name: "none", jobs: nil, conc: 8, k: 2, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SimulateRTT(tt.jobs, tt.conc, tt.k); got != tt.want {
				t.Errorf("SimulateRTT = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestSimulateNeverBeatsLimit(t *testing.T) {
	for _, h := range []int{1, 5, 20, 37, 100} {
		for _, c := range []int{1, 2, 8, 32, 64} {
			for _, k := range []int{1, 2, 5} {
				for order, jobs := range map[string][]Job{"engine": engineJobs(100, h), "sorted": sortedJobs(100, h)} {
					s := Shape{Providers: 100, URLs: 100, Hosts: h, Handshakes: k, Concurrency: c}
					if sim, lim := SimulateRTT(jobs, c, k), LimitRTT(s); sim < lim {
						t.Errorf("%s %+v: schedule %d round trips beats the limit %d", order, s, sim, lim)
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
