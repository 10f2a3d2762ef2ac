package fleet

import (
	"container/heap"
	"context"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/oidcprovider"
	"github.com/thumbprint-drift/thumbprint-drift/internal/thumbprint"
)

// The network limit of a fleet: the fewest round trips a probe of its hosts
// can take, and the engine's probe schedule on that network.

// Round trips one step of the probe costs on a network where a round trip
// costs R, counted from what internal/thumbprint does (TLS 1.3 between Go
// client and server, as here, and as most identity providers negotiate):
//
//   - discovery (fetchDiscovery) on a new connection: TCP connect 1, TLS 1.3
//     handshake 1 (ClientHello with key share; the server's whole flight),
//     GET and response 1 (the request leaves with the client's Finished) = 3;
//   - a further discovery to the same host, over its HTTP/2 connection
//     (once open; the requests that come while it is opened wait for it), or
//     over an HTTP/1.1 connection an earlier one finished with (kept alive,
//     handed on to the next request for the host): GET and response = 1;
//   - handshake (probeHost): a new connection each: TCP connect 1, TLS 1.3
//     handshake 1, closed as soon as the client's Finished is sent = 2; the
//     TLS 1.2 check costs the same (TCP 1, then it hangs up as soon as the
//     server's first flight, with the chain, has arrived).
//
// The discovery request's handshake is one of a host's K handshakes, the TLS
// 1.2 check (a handshake capped at TLS 1.2) another, and the issuer host's
// other handshakes (HostHandshakes) start beside the discovery request, all
// at once: a host whose jwks_uri is on itself (as here) takes max(D, S) = D,
// not D + K*S. Its discoveries that do not fit in its MaxConnsPerHost
// connections then go over the connections kept, G each.
const (
	DiscoveryRTT = 3
	HandshakeRTT = 2
	ReuseRTT     = 1
)

// WantTLS is the fewest TLS connections the hosts see in a run of urls
// distinct provider Urls on hosts hosts (each with its jwks_uri on itself)
// at K = PROBE_HANDSHAKES: per host, one discovery connection, which its
// further Urls reuse when it is idle, and HostHandshakes. A host whose Urls'
// discoveries go out while another's is in flight sees more.
func WantTLS(urls, hosts, k int) int {
	if urls <= 0 {
		return 0
	}
	return hosts * (1 + HostHandshakes(k))
}

// IdealRTT is the round trips of a run's probe work, every connection's
// added up: each host's first discovery on a new connection (D), its further
// Urls' over a kept one (G), its handshakes (S each).
func IdealRTT(s Shape) int {
	return s.Hosts*DiscoveryRTT + (s.URLs-s.Hosts)*ReuseRTT + s.Hosts*HostHandshakes(s.Handshakes)*HandshakeRTT
}

// hostRTT is the fewest round trips one host's probe can take with n
// discoveries and h more handshakes, thumbprint.MaxConnsPerHost (M)
// connections at once: all at once, new connections, when they fit
// (max(D, S)); otherwise the first M, then the rest M at a time over the
// connections kept, G each.
func hostRTT(n, h int) int {
	first, m := max(DiscoveryRTT, HandshakeRTT), thumbprint.MaxConnsPerHost
	if n+h <= m {
		return first
	}
	return first + CeilDiv(n+h-m, m)*ReuseRTT
}

// hostSchedule is one host's probe in the engine's schedule: its h
// handshakes and as many of its n discoveries as fit in M connections start
// at once, on new connections; then each further discovery takes the first
// connection to finish: over it, G, when a discovery finished with it; on a
// new one, D, in a handshake's place.
func hostSchedule(n, h int) int {
	m := thumbprint.MaxConnsPerHost
	h = min(h, m)
	var slots []slot
	end := 0
	for i := range m {
		switch {
		case i < h:
			slots = append(slots, slot{at: HandshakeRTT})
		case n > 0:
			n--
			slots = append(slots, slot{at: DiscoveryRTT, kept: true})
		}
		end = max(end, slots[len(slots)-1].at)
	}
	for ; n > 0; n-- {
		// The first connection free, a kept one before a new one.
		first := 0
		for i, sl := range slots {
			if sl.at < slots[first].at || sl.at == slots[first].at && sl.kept && !slots[first].kept {
				first = i
			}
		}
		sl := &slots[first]
		if sl.kept {
			sl.at += ReuseRTT
		} else {
			sl.at, sl.kept = sl.at+DiscoveryRTT, true
		}
		end = max(end, sl.at)
	}
	return end
}

// slot is one of a host's connections in hostSchedule: when it is free, and
// whether a discovery connection is kept on it.
type slot struct {
	at   int
	kept bool
}

// HostHandshakes is the handshakes internal/thumbprint makes with a host
// whose jwks_uri is on itself, besides its discovery requests, for K =
// PROBE_HANDSHAKES: the first discovery's handshake is one sample, the TLS
// 1.2 check is the next, and it is made even when K is 1. (A host that
// refuses TLS 1.2 takes one more; none does here.)
func HostHandshakes(k int) int { return max(k-1, 1) }

// ProbeConcurrency is PROBE_CONCURRENCY's default: hosts probed at once.
var ProbeConcurrency = config.Default().ProbeConcurrency

// LimitFormula is printed with the results, so the figure can be checked by
// hand, with what its terms and the schedule (SimulateRTT) mean.
var LimitFormula = fmt.Sprintf(`discoveries are per distinct provider Url (U), handshakes per distinct host (H): the run cache probes each host once;
  a host's further Urls reuse its discovery connection: over HTTP/2 (ALPN h2, the hosts' default here) a further Url is a GET on it, G = %d R, at once, however many are in flight,
  after waiting for it while it is opened; over HTTP/1.1 (-idp-http1), on a kept connection when one is idle (when every one is busy, a wait of at most 1 R
  for one carrying a GET, then G; D while they are still dialing); a host's handshakes and TLS 1.2 check run beside its discovery, hosts Pc = %d at once (PROBE_CONCURRENCY),
  at most M = %d connections per host (idle ones included); IAM reads (C at once) do not wait for probes
  limit = max(List + ceil(H/min(Pc,H)) x T x R, IAM alone), T = max(D, S) + ceil((n + max(K-1, 1) - M)/M) x G when n + max(K-1, 1) > M, else max(D, S),
  n = ceil(U/H); IAM alone = List and P Gets, C at once, nothing else running
  (a lower bound: the probes start from List's ARNs; probing and IAM reads then go side by side; moto serves about one call at a time)
  model = the engine's probe schedule on that network with no other cost: every provider's probe started at once in List order, hosts granted in order,
  a host's discoveries beyond M over the connections kept (G) or, in a finished handshake's place, on a new one (D)`,
	ReuseRTT, ProbeConcurrency, thumbprint.MaxConnsPerHost)

// Shape is the probe work of one run: P providers over U distinct provider
// Urls (discovery documents, fetched once per run each) on H distinct hosts
// (handshaken with K times, the TLS 1.2 check and the first discovery's
// among them, once per run each: HostHandshakes), IAM
// calls Concurrency at once (C), hosts probed ProbeConcurrency at once (Pc).
type Shape struct {
	Providers, URLs, Hosts, Handshakes, Concurrency int
	// ProbeConcurrency is PROBE_CONCURRENCY; 0 means its default.
	ProbeConcurrency int
}

// LimitRTT is the fewest round trips the probing of a run of s can take: the
// hosts go ProbeConcurrency at once, each taking max(D, S), its connections
// (its Urls' discoveries and HostHandshakes, the TLS 1.2 check first) all at
// once when they fit in thumbprint.MaxConnsPerHost (M); the discoveries
// beyond then go M at a time over the connections kept (G each: hostRTT).
// IAM calls do not wait for probes: they are the other term of the Limit
// (Limit), not part of this one.
func LimitRTT(s Shape) int {
	if s.Providers <= 0 || s.Hosts <= 0 {
		return 0
	}
	pc := s.ProbeConcurrency
	if pc <= 0 {
		pc = ProbeConcurrency
	}
	return CeilDiv(s.Hosts, min(pc, s.Hosts)) * hostRTT(CeilDiv(s.URLs, s.Hosts), HostHandshakes(s.Handshakes))
}

// Limit is the fastest a run of s can be: List first (the probes start from
// the ARNs it returns; list is its lone latency), then the probing
// (LimitRTT x rtt) beside the IAM reads; iamAlone is List and the Gets, C at
// once, timed with nothing else running.
func Limit(s Shape, rtt, list, iamAlone time.Duration) time.Duration {
	return max(list+time.Duration(LimitRTT(s))*rtt, iamAlone)
}

// AfterGetRTT is the fewest round trips the probe of the provider read last
// takes once its Get returns: a provider's probe starts only once it has
// been read and found not ignored (an ignored provider's identity provider
// is never contacted, DESIGN.md), so it cannot overlap its own Get. Read in
// the engine's order (one provider of every host before a second of any),
// the last one's host already has a connection when it has more than one
// Url (a GET on it, ReuseRTT), else it is a first contact (max(D, S)).
func AfterGetRTT(s Shape) int {
	if s.Hosts > 0 && s.URLs > s.Hosts {
		return ReuseRTT
	}
	return max(DiscoveryRTT, HandshakeRTT)
}

// Floor is Limit under the rule that a probe follows its provider's Get:
// at least the IAM reads alone and then the last provider's probe
// (AfterGetRTT). The Limit, which lets the probes start from List's ARNs,
// is what the run took before that rule.
func Floor(s Shape, rtt, list, iamAlone time.Duration) time.Duration {
	return max(Limit(s, rtt, list, iamAlone), iamAlone+time.Duration(AfterGetRTT(s))*rtt)
}

func CeilDiv(a, b int) int { return (a + b - 1) / b }

// Job is one provider as the engine sees it: its discovery Url and the host its
// handshakes go to (the jwks_uri host, here the issuer's).
type Job struct {
	URL, Host string
}

// SimulateRTT is the engine's probe schedule on a network of whole round
// trips and no other cost: every provider's probe starts at once (the engine
// starts them from the ARNs), the scheduler grants hosts a slot in the order
// their first provider asks, pc at once; a host keeps its slot while its
// discoveries and handshakes (the TLS 1.2 check among them) run, all at once
// when they fit in thumbprint.MaxConnsPerHost, its further discoveries over
// the connections kept (hostSchedule). It returns the time the last host is
// done, in round trips.
func SimulateRTT(jobs []Job, pc, handshakes int) int {
	if len(jobs) == 0 || pc <= 0 {
		return 0
	}
	var hosts []string
	urls := map[string]map[string]bool{}
	for _, j := range jobs {
		if urls[j.Host] == nil {
			hosts = append(hosts, j.Host)
			urls[j.Host] = map[string]bool{}
		}
		urls[j.Host][j.URL] = true
	}
	free := make(intHeap, min(pc, len(hosts))) // when each slot is free
	heap.Init(&free)
	end := 0
	for _, h := range hosts {
		start := heap.Pop(&free).(int)
		t := start + hostSchedule(len(urls[h]), HostHandshakes(handshakes))
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
		a, _ := oidcprovider.ParseARN(arn)
		jobs[i] = Job{URL: a.URL, Host: a.Host()}
	}
	return jobs
}

// IAMFloor returns the fastest of samples Lists made one at a time, and how
// long a run's IAM reads take alone: List, then a Get of every provider in
// arns, conc at once, nothing else running. They are Limit's list and
// iamAlone (moto serves calls about one at a time, so the reads alone are not
// ceil(P/C) lone Gets).
func IAMFloor(ctx context.Context, store *oidcprovider.Store, arns []string, conc, samples int) (list, alone time.Duration, err error) {
	ls := make([]time.Duration, 0, samples)
	for range samples {
		start := time.Now()
		if _, err := store.List(ctx); err != nil {
			return 0, 0, fmt.Errorf("lone List: %w", err)
		}
		ls = append(ls, time.Since(start))
	}
	start := time.Now()
	if _, err := store.List(ctx); err != nil {
		return 0, 0, fmt.Errorf("List: %w", err)
	}
	var g errgroup.Group
	g.SetLimit(max(conc, 1))
	for _, arn := range arns {
		g.Go(func() error {
			if _, err := store.Get(ctx, arn); err != nil {
				return fmt.Errorf("Get %s: %w", arn, err)
			}
			return nil
		})
	}
	err = g.Wait()
	return slices.Min(ls), time.Since(start), err
}
