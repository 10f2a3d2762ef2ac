package thumbprint

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// Kind classifies a probe failure so that callers can branch on it.
type Kind string

// Kinds of probe failure.
const (
	KindBadURL         Kind = "bad url"            // provider Url: scheme, query, fragment, userinfo, empty
	KindDNS            Kind = "dns failure"        // the host name did not resolve
	KindRefused        Kind = "connection refused" // nothing listens on host:port
	KindTimeout        Kind = "timeout"            // the probe deadline passed
	KindCanceled       Kind = "canceled"           // the caller's context was canceled
	KindConnect        Kind = "connect failure"    // other connection errors, proxy errors included
	KindTLS            Kind = "tls failure"        // the TLS handshake failed
	KindHTTPStatus     Kind = "http status"        // the discovery document was not served with 200
	KindBodyTooLarge   Kind = "body too large"     // the discovery document exceeds 1 MiB
	KindMalformedJSON  Kind = "malformed json"     // the discovery document is not a JSON object
	KindBadJWKSURI     Kind = "bad jwks_uri"       // jwks_uri missing, relative or not https
	KindIssuerMismatch Kind = "issuer mismatch"    // the document's issuer is not the expected one
	KindRedirect       Kind = "redirect"           // a redirect to a non-https URL, or more than 3
)

// Steps of a probe, as named in Error.Step.
const (
	StepDiscovery = "discovery" // fetching the discovery document (and checking the Url)
	StepHandshake = "handshake" // TLS handshakes with a host
)

// Error is a failed probe. Callers branch on Kind with errors.As.
type Error struct {
	// Kind says what went wrong.
	Kind Kind
	// Step is StepDiscovery or StepHandshake.
	Step string
	// URL is the discovery URL, or https://host:port for a handshake.
	URL string
	// Err is the underlying error. For KindTimeout it wraps context.DeadlineExceeded,
	// for KindCanceled context.Canceled.
	Err error
	// JWKSHost is the jwks_uri's host:port when discovery succeeded (a
	// handshake failed); empty when discovery failed.
	JWKSHost string
}

// Error names the step, the URL and the problem.
func (e *Error) Error() string {
	u := e.URL
	if u == "" {
		u = `""`
	}
	return fmt.Sprintf("%s %s: %s: %v", e.Step, u, e.Kind, e.Err)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// kindError carries a Kind decided where the failure happened (a TLS handshake,
// a proxy, the document) up to the step that reports it.
type kindError struct {
	kind Kind
	err  error
}

func (e *kindError) Error() string { return e.err.Error() }
func (e *kindError) Unwrap() error { return e.err }

func errorf(kind Kind, format string, args ...any) error {
	return &kindError{kind: kind, err: fmt.Errorf(format, args...)}
}

// timeoutError reports a passed deadline; it matches context.DeadlineExceeded
// and keeps the error that surfaced it (an i/o timeout, say).
type timeoutError struct{ err error }

func (e *timeoutError) Error() string {
	if e.err == nil {
		return "probe deadline exceeded"
	}
	return "probe deadline exceeded: " + e.err.Error()
}

func (e *timeoutError) Unwrap() []error { return []error{context.DeadlineExceeded, e.err} }

// expired returns the context's error, or context.DeadlineExceeded once its
// deadline has passed even if its timer has not fired yet (a connection
// deadline set to the same instant can fire first).
func expired(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// newError classifies err, which happened in step for url under ctx.
func newError(ctx context.Context, step, url string, err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	return &Error{Kind: classify(ctx, err), Step: step, URL: url, Err: wrapContext(ctx, err)}
}

func classify(ctx context.Context, err error) Kind {
	if cerr := expired(ctx); cerr != nil {
		if errors.Is(cerr, context.Canceled) {
			return KindCanceled
		}
		return KindTimeout
	}
	if errors.Is(err, context.Canceled) {
		return KindCanceled
	}
	if ke, ok := errors.AsType[*kindError](err); ok {
		return ke.kind
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return KindTimeout
	}
	if _, ok := errors.AsType[*net.DNSError](err); ok {
		return KindDNS
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return KindRefused
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return KindTimeout
	}
	return KindConnect
}

// wrapContext makes timeouts match context.DeadlineExceeded and cancellations
// context.Canceled, whatever error surfaced them.
func wrapContext(ctx context.Context, err error) error {
	switch classify(ctx, err) {
	case KindTimeout:
		if errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return &timeoutError{err: err}
	case KindCanceled:
		if errors.Is(err, context.Canceled) {
			return err
		}
		return fmt.Errorf("%w: %w", context.Canceled, err)
	}
	return err
}

// hasKind reports whether err carries kind k, decided where it happened.
func hasKind(err error, k Kind) bool {
	ke, ok := errors.AsType[*kindError](err)
	return ok && ke.kind == k
}
