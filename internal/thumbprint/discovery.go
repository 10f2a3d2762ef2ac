package thumbprint

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// userAgent is sent with the discovery request and proxy CONNECTs.
const userAgent = "thumbprint-drift"

// maxRedirects is the number of redirects the discovery request follows.
const maxRedirects = 3

// fetched is a discovery document, how its connections verified, and the
// chain the issuer host served the request.
type fetched struct {
	discovery
	verified  bool
	verifyErr string
	// seed is the first handshake with the issuer host itself (not a host
	// redirected to): a handshake with that host like any other, so its probe
	// counts it as one of its handshakes.
	seed *served
}

// fetchDiscovery GETs t's discovery document: status 200, at most 1 MiB, at
// most 3 redirects, https only. Chains are verified and recorded, not
// enforced. The request holds one of the issuer host's connections in the
// scheduler; redirects are followed under it.
func (r *Run) fetchDiscovery(ctx context.Context, t target) (_ fetched, err error) {
	p := r.p
	discoveryURL := t.discoveryURL
	var (
		mu        sync.Mutex
		dialed    int
		verifyErr error
		seed      *served
		conns     []net.Conn
		done      bool           // the request is over: no more connections
		dialing   sync.WaitGroup // dials in flight
	)
	tr := &http.Transport{
		// The request's dial context drops cancellation; the probe's keeps it.
		DialTLSContext: func(_ context.Context, _, addr string) (net.Conn, error) {
			mu.Lock()
			if done {
				mu.Unlock()
				return nil, net.ErrClosed
			}
			dialing.Add(1)
			mu.Unlock()
			defer dialing.Done()
			tc, err := p.dialTLS(ctx, addr, probeConfig(addr, 0))
			if err != nil {
				return nil, err
			}
			cs := tc.ConnectionState()
			verr := p.verify(cs.PeerCertificates, hostOnly(addr))
			// The transport closes its connections on its own goroutines
			// and this request closes them too: each is closed once, and a
			// Close returns only once it is (see closeOnceConn).
			c := &closeOnceConn{Conn: tc}
			c.close = sync.OnceValue(tc.Close)
			mu.Lock()
			conns = append(conns, c)
			dialed++
			if verr != nil && verifyErr == nil {
				verifyErr = verr
			}
			if seed == nil && strings.EqualFold(addr, t.host) {
				seed = &served{certs: cs.PeerCertificates, version: cs.Version}
			}
			mu.Unlock()
			return c, nil
		},
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 64 << 10,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: checkRedirect}

	release, err := r.sched.acquire(ctx, t.host)
	if err != nil {
		return fetched{}, err
	}
	// The time limit runs from the grant: waiting for the host's turn (one
	// EKS host serves hundreds of providers) is bounded by the caller's
	// context, not by the per-provider timeout.
	caller := ctx
	ctx, cancel := r.p.bounded(ctx)
	defer cancel()
	defer func() { err = overTime(caller, ctx, err) }()
	defer func() {
		// Close every connection before giving the host's room back: the
		// transport closes them a moment later on its own goroutines, and
		// may still be dialing one for a request that ended with ctx.
		mu.Lock()
		done = true
		mu.Unlock()
		dialing.Wait()
		for _, c := range conns {
			c.Close()
		}
		release()
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, discoveryURL, nil)
	if err != nil {
		return fetched{}, errorf(KindBadURL, "%v", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := client.Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return fetched{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		where := ""
		if u := resp.Request.URL.String(); u != discoveryURL {
			where = " from " + u
		}
		return fetched{}, errorf(KindHTTPStatus, "status %s%s", resp.Status, where)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentSize+1))
	if err != nil {
		return fetched{}, err
	}
	if len(body) > maxDocumentSize {
		return fetched{}, errorf(KindBodyTooLarge, "discovery document exceeds %d bytes", maxDocumentSize)
	}
	doc, err := parseDiscovery(body)
	if err != nil {
		return fetched{}, err
	}
	f := fetched{discovery: doc}
	mu.Lock()
	defer mu.Unlock()
	f.seed = seed
	f.verified = dialed > 0 && verifyErr == nil
	if verifyErr != nil {
		f.verifyErr = verifyErr.Error()
	}
	return f, nil
}

// checkRedirect follows at most 3 redirects, all to https.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if !strings.EqualFold(req.URL.Scheme, "https") {
		return errorf(KindRedirect, "redirect to non-https %s refused", req.URL.Redacted())
	}
	if len(via) > maxRedirects {
		return errorf(KindRedirect, "more than %d redirects (last to %s)", maxRedirects, req.URL.Redacted())
	}
	return nil
}

// closeOnceConn is a connection closed by several goroutines (the HTTP
// transport's and the request's): the first Close closes it, and every Close
// returns only once it is closed. A *tls.Conn alone does not wait: a Close
// racing another returns at once while the other may still be sending its
// close_notify, the connection still open.
type closeOnceConn struct {
	net.Conn
	close func() error
}

func (c *closeOnceConn) Close() error { return c.close() }
