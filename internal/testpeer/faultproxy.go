package testpeer

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
)

// Fault is what the FaultProxy does with one request.
type Fault int

// The faults.
const (
	// Pass forwards the request to the target.
	Pass Fault = iota
	// Throttle answers HTTP 400 with a query-protocol error whose code is the
	// service's throttling code ("Throttling" for IAM, "Throttled" for SNS).
	Throttle
	// ServiceFailure answers HTTP 500 with code ServiceFailure.
	ServiceFailure
	// Drop closes the connection without an answer (the service is lost).
	Drop
	// AccessDenied answers HTTP 403 with code AccessDenied (a role that does
	// not exist or does not trust the caller).
	AccessDenied
)

// Call is one request as the rule sees it.
type Call struct {
	// Action is the query-protocol Action ("" for JSON protocols).
	Action string
	// N counts earlier requests with the same Action.
	N int
	// Form is the decoded request body.
	Form url.Values
	// Body is the request body as sent (JSON for JSON protocols).
	Body []byte
}

// ByAction adapts a rule on the action and its count.
func ByAction(rule func(action string, n int) Fault) func(Call) Fault {
	return func(c Call) Fault { return rule(c.Action, c.N) }
}

// FaultProxy is an HTTP reverse proxy in front of an AWS emulator that injects
// what the emulator cannot produce: throttling, failures, lost connections.
// The rule sees each request's query-protocol Action, how many requests with
// that action came before it, and its form.
type FaultProxy struct {
	// URL is the proxy's endpoint for AWS_ENDPOINT_URL or BaseEndpoint.
	URL string

	ln     net.Listener
	srv    *http.Server
	mu     sync.Mutex
	rule   func(Call) Fault
	seen   map[string]int
	faults map[Fault]int
}

// StartFaultProxy proxies to target (an http:// endpoint) on a free loopback
// port; rule nil passes everything.
func StartFaultProxy(target string, rule func(Call) Fault) (*FaultProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("fault proxy target %q: %w", target, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fault proxy listen: %w", err)
	}
	p := &FaultProxy{URL: "http://" + ln.Addr().String(), ln: ln, rule: rule, seen: map[string]int{}, faults: map[Fault]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		action := form.Get("Action")
		p.mu.Lock()
		n := p.seen[action]
		p.seen[action]++
		f := Pass
		if p.rule != nil {
			f = p.rule(Call{Action: action, N: n, Form: form, Body: body})
		}
		p.faults[f]++
		p.mu.Unlock()
		switch f {
		case Throttle:
			code := "Throttling"
			if form.Get("TopicArn") != "" || form.Get("TargetArn") != "" {
				code = "Throttled" // SNS's code for ThrottledException
			}
			writeQueryError(w, http.StatusBadRequest, "Sender", code, "Rate exceeded")
		case AccessDenied:
			writeQueryError(w, http.StatusForbidden, "Sender", "AccessDenied", "injected: not authorized to perform "+action)
		case ServiceFailure:
			writeQueryError(w, http.StatusInternalServerError, "Receiver", "ServiceFailure", "injected service failure")
		case Drop:
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		default:
			rp.ServeHTTP(w, r)
		}
	})}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func writeQueryError(w http.ResponseWriter, status int, typ, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>`, typ, code, msg)
}

// SetRule replaces the rule.
func (p *FaultProxy) SetRule(rule func(Call) Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rule = rule
}

// Seen is how many requests with action arrived.
func (p *FaultProxy) Seen(action string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[action]
}

// Injected is how many requests got fault f.
func (p *FaultProxy) Injected(f Fault) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faults[f]
}

// Close stops the proxy.
func (p *FaultProxy) Close() { _ = p.srv.Close() }
