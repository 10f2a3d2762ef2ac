package thumbprint

import (
	"context"
	"net"
	"net/url"
	"time"
)

// DefaultHandshakes is the number of TLS handshakes per host when
// Options.Handshakes is 0.
const DefaultHandshakes = 2

// Prober computes live thumbprints. It is safe for concurrent use.
type Prober struct {
	opts        Options
	handshakes  int
	concurrency int
	proxy       func(*url.URL) (*url.URL, error)
	dialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	now         func() time.Time
}

// New returns a Prober with opts, defaults filled in.
func New(opts Options) *Prober {
	p := &Prober{
		opts:        opts,
		handshakes:  opts.Handshakes,
		concurrency: opts.Concurrency,
		proxy:       opts.Proxy,
		dialContext: opts.DialContext,
		now:         opts.Now,
	}
	if p.handshakes <= 0 {
		p.handshakes = DefaultHandshakes
	}
	if p.concurrency <= 0 {
		p.concurrency = DefaultConcurrency
	}
	if p.proxy == nil {
		p.proxy = envProxy
	}
	if p.dialContext == nil {
		p.dialContext = (&net.Dialer{}).DialContext
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p
}

// Probe computes the live thumbprints of the provider Url (as IAM stores it,
// "https://" optional): it fetches the discovery document, handshakes with the
// jwks_uri host and, when it differs, the issuer host, and verifies every chain.
// Failures are *Error. Each call probes afresh; use a Run to share work.
func (p *Prober) Probe(ctx context.Context, providerURL string) (*Result, error) {
	r := p.NewRun()
	defer r.Close()
	return r.Probe(ctx, providerURL)
}

// bounded is ctx limited by Options.Timeout, for the work of one connection
// once the scheduler has granted it: the discovery request (with its
// redirects) or one handshake. Waiting for the grant is bounded only by the
// caller's context, so providers queued behind one busy host do not time out
// for others' work.
func (p *Prober) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if p.opts.Timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, p.opts.Timeout)
}

// overTime reports err as a timeout when bounded's time limit passed while
// the caller's context had not ended: the deadline cut the connection short,
// whatever the TLS stack or the JSON parser then made of the truncated input.
func overTime(caller, bounded context.Context, err error) error {
	if err == nil || expired(caller) != nil || expired(bounded) == nil {
		return err
	}
	return &kindError{kind: KindTimeout, err: &timeoutError{err: err}}
}
