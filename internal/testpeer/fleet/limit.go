package fleet

import (
	"container/heap"
	"strings"

	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
)

// The network limit of a fleet: the fewest round trips a probe of its hosts
// can take, and the engine's own schedule on that network.

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
	DiscoveryRTT = 3
	HandshakeRTT = 2
)

// LimitFormula is printed with the results, so the figure can be checked by
// hand, with what its terms and the schedule (SimulateRTT) mean.
const LimitFormula = `discoveries are per distinct provider Url (U), handshakes per distinct host (H): the run cache probes each host once
  limit = max(ceil(H/C') * (D + K*S), ceil((U*D + H*K*S) / C')) round trips x R, C' = min(C, P)
  (both terms are lower bounds: a host's handshakes hold one slot after its first provider's discovery; all the work spread over C' slots)
  model = the engine's own schedule on that network with no other cost: C workers take the providers in the engine's order
  (its List, sorted by ARN, then round robin over the providers' hosts, as drift.WorkOrder), a host probed once by whichever comes first`

// Shape is the probe work of one run: P providers (jobs) over U distinct
// provider Urls (discovery documents, fetched once per run each) on H distinct
// hosts (handshaken with K times once per run each), at concurrency C.
type Shape struct {
	Providers, URLs, Hosts, Handshakes, Concurrency int
}

// LimitRTT is the fewest round trips a run of s can take; both terms are
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
// SimulateRTT and EngineOrder).
func LimitRTT(s Shape) int {
	if s.Providers <= 0 || s.Concurrency <= 0 || s.Hosts <= 0 {
		return 0
	}
	slots := min(s.Concurrency, s.Providers)
	perHost := DiscoveryRTT + s.Handshakes*HandshakeRTT
	work := s.URLs*DiscoveryRTT + s.Hosts*s.Handshakes*HandshakeRTT
	return max(CeilDiv(s.Hosts, slots)*perHost, CeilDiv(work, slots))
}

func CeilDiv(a, b int) int { return (a + b - 1) / b }

// Job is one provider as the engine sees it: its discovery Url and the host its
// handshakes go to (the jwks_uri host, here the issuer's).
type Job struct {
	URL, Host string
}

// SimulateRTT is the engine's schedule on a network of whole round trips and
// no other cost: C workers take the providers in the given order, each as soon
// as one is free; a provider fetches its Url (or waits for a fetch of the same
// Url in flight), then waits for its host's handshakes, making them itself when
// no other provider has started them (the probe's per-run cache). It returns the
// time the last provider is done, in round trips.
func SimulateRTT(jobs []Job, conc, handshakes int) int {
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
			t = start + DiscoveryRTT
			docDone[j.URL] = t
		}
		if h, ok := hostDone[j.Host]; ok {
			t = max(t, h)
		} else {
			t += handshakes * HandshakeRTT
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

// EngineOrder is the order the engine hands arns (as its List returns them:
// sorted) to its workers: drift.WorkOrder, the engine's own rule.
func EngineOrder(arns []string) []string {
	out := make([]string, 0, len(arns))
	for _, i := range drift.WorkOrder(arns) {
		out = append(out, arns[i])
	}
	return out
}

// JobsOf turns ARNs into jobs, in their order: the Url in each ARN, and its
// host[:port].
func JobsOf(arns []string) []Job {
	jobs := make([]Job, len(arns))
	for i, arn := range arns {
		_, url, _ := strings.Cut(arn, ":oidc-provider/")
		host, _, _ := strings.Cut(url, "/")
		jobs[i] = Job{URL: url, Host: host}
	}
	return jobs
}
