package main

import (
	"container/heap"
	"fmt"

	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
)

// Round trips one step of the probe costs on a network where a round trip
// costs R, counted from what internal/thumbprint does (TLS 1.3 between Go
// client and server, as here, and as most identity providers negotiate):
//
//   - discovery (fetchDiscovery): a new connection per request (DisableKeepAlives):
//     TCP connect 1, TLS 1.3 handshake 1 (ClientHello with key share; the
//     server's whole flight), GET and response 1 (the request leaves with the
//     client's Finished) = 3;
//   - handshake (probeHost): a new connection each: TCP connect 1, TLS 1.3
//     handshake 1, closed as soon as the client's Finished is sent = 2.
const (
	discoveryRTT = 3
	handshakeRTT = 2
)

// limitFormula is printed with the results, so the figure can be checked by hand.
const limitFormula = "limit = max(ceil(H/C') * (D + K*S), ceil((U*D + H*K*S) / C')) round trips x R, C' = min(C, P)"

// shape is the probe work of one run: P providers (jobs) over U distinct
// provider Urls (discovery documents, fetched once per run each) on H distinct
// hosts (handshaken with K times once per run each), at concurrency C.
type shape struct {
	Providers, URLs, Hosts, Handshakes, Concurrency int
}

// limitRTT is the fewest round trips a run of s can take; both terms are
// lower bounds, so their maximum is one:
//
//   - hosts: each host's K handshakes are made by one provider after its own
//     discovery, holding its slot for D + K*S without a break; with H such
//     providers on C' slots, some slot runs ceil(H/C') of them one after
//     another. With one provider per host this is the issue's
//     ceil(H/C) x (discovery + K handshakes).
//   - work: every distinct Url's discovery (D) and every host's handshakes
//     (K*S) hold a slot, so the slots together are busy for U*D + H*K*S.
//
// Waiting for a host another provider is probing, or for IAM, only adds. It is
// a bound, not a schedule: the engine's order can make it unreachable (see
// simulateRTT and engineOrder).
func limitRTT(s shape) int {
	if s.Providers <= 0 || s.Concurrency <= 0 || s.Hosts <= 0 {
		return 0
	}
	slots := min(s.Concurrency, s.Providers)
	perHost := discoveryRTT + s.Handshakes*handshakeRTT
	work := s.URLs*discoveryRTT + s.Hosts*s.Handshakes*handshakeRTT
	return max(ceilDiv(s.Hosts, slots)*perHost, ceilDiv(work, slots))
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// job is one provider as the engine sees it: its discovery Url and the host its
// handshakes go to (the jwks_uri host, here the issuer's).
type job struct {
	URL, Host string
}

// simulateRTT is the engine's schedule on a network of whole round trips and
// no other cost: C workers take the providers in the given order, each as soon
// as one is free; a provider fetches its Url (or waits for a fetch of the same
// Url in flight), then waits for its host's handshakes, making them itself when
// no other provider has started them (the probe's per-run cache). It returns the
// time the last provider is done, in round trips.
func simulateRTT(jobs []job, conc, handshakes int) int {
	if len(jobs) == 0 || conc <= 0 {
		return 0
	}
	free := make(intHeap, min(conc, len(jobs))) // when each worker is free
	heap.Init(&free)
	docDone := map[string]int{}  // when each Url's discovery is (or will be) done
	hostDone := map[string]int{} // when each host's handshakes are (or will be) done
	end := 0
	for _, j := range jobs {
		start := heap.Pop(&free).(int)
		t, ok := docDone[j.URL]
		if ok {
			t = max(t, start)
		} else {
			t = start + discoveryRTT
			docDone[j.URL] = t
		}
		if h, ok := hostDone[j.Host]; ok {
			t = max(t, h)
		} else {
			t += handshakes * handshakeRTT
			hostDone[j.Host] = t
		}
		end = max(end, t)
		heap.Push(&free, t)
	}
	return end
}

// intHeap is a min-heap of times.
type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// engineOrder is the order the engine hands arns (as its List returns them:
// sorted) to its workers: drift.WorkOrder, the engine's own rule.
func engineOrder(arns []string) []string {
	out := make([]string, 0, len(arns))
	for _, i := range drift.WorkOrder(arns) {
		out = append(out, arns[i])
	}
	return out
}

// describeShape names a load as the table shows it.
func describeShape(accounts, providers, hosts int) string {
	if accounts > 1 {
		return fmt.Sprintf("%dx%dp/%dh", accounts, providers, hosts)
	}
	return fmt.Sprintf("%dp/%dh", providers, hosts)
}
