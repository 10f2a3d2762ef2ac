package testpeer

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
)

// AWSProxy is an HTTP proxy in front of moto_server standing in for the
// network between a function and AWS. It adds a latency to every call of the
// services named (by signing name: "iam", "sts"), and tells moto which account
// each call acts in (its x-moto-account-id header), from the access key the
// call is signed with: moto's own lookup scans every account it holds, so with
// a thousand accounts a benchmark would measure that scan, not its client. It
// learns the keys of assumed roles from the AssumeRole answers it forwards;
// a call signed with an unknown key goes to moto as it came. Once Record is
// called it also keeps every call (AWSCall: who, what, on which resources).
type AWSProxy struct {
	// URL is the proxy's endpoint, for AWS_ENDPOINT_URL or BaseEndpoint.
	URL string

	latency map[string]time.Duration
	srv     *http.Server
	mu      sync.Mutex
	keys    map[string]string // access key id: account
	roles   map[string]string // access key id: role ARN, when known
	record  bool
	calls   []AWSCall
}

var (
	credentialScope = regexp.MustCompile(`Credential=([^/,\s]+)/[^/]+/([^/]+)/([^/]+)/`)
	accessKeyID     = regexp.MustCompile(`<AccessKeyId>([^<]+)</AccessKeyId>`)
)

// StartAWSProxy proxies to m on a free loopback port, adding latency[service]
// to each call of that service. moto's static credentials act in AccountID.
func StartAWSProxy(m *Moto, latency map[string]time.Duration) (*AWSProxy, error) {
	target, err := url.Parse(m.Endpoint)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("AWS proxy listen: %w", err)
	}
	p := &AWSProxy{URL: "http://" + ln.Addr().String(), latency: latency, keys: map[string]string{AccessKey: AccountID}, roles: map[string]string{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, region, service := "", "", ""
		if m := credentialScope.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
			key, region, service = m[1], m[2], m[3]
		}
		account, principal, recording := p.signer(key)
		if account != "" {
			r.Header.Set("x-moto-account-id", account)
		}
		if d := p.latency[service]; d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		role := ""
		var body []byte
		if service == "sts" || recording {
			body, _ = io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		if service == "sts" {
			if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") == "AssumeRole" {
				role = form.Get("RoleArn")
			}
		}
		if recording {
			if account == "" {
				account = AccountID
			}
			action, resources := describeCall(r, body, service, account, region)
			call := AWSCall{Principal: principal, Account: account, Region: region, Service: service, Action: action, Resources: resources}
			sw := &statusWriter{ResponseWriter: w}
			w = sw
			defer func() { call.Status = sw.status; p.keep(call) }()
		}
		if role == "" {
			rp.ServeHTTP(w, r)
			return
		}
		rec := &recorder{header: http.Header{}}
		rp.ServeHTTP(rec, r)
		if m := accessKeyID.FindSubmatch(rec.body.Bytes()); m != nil && rec.status == http.StatusOK {
			p.Learn(string(m[1]), role)
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
	})}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// signer is the account and role of an access key, and whether calls are
// being recorded.
func (p *AWSProxy) signer(key string) (account, role string, recording bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[key], p.roles[key], p.record
}

// Learn makes calls signed with access key id key act as role (an ARN) in
// its account, as if the proxy had forwarded the AssumeRole that gave it.
func (p *AWSProxy) Learn(key, role string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys[key], p.roles[key] = accounts.AccountOf(role), role
}

// Record forgets the calls recorded so far and records every call from now on.
func (p *AWSProxy) Record() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.record, p.calls = true, nil
}

// Calls are the calls recorded since Record, in the order they ended.
func (p *AWSProxy) Calls() []AWSCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

func (p *AWSProxy) keep(c AWSCall) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, c)
}

// Env points a function process's SDK at the proxy for every service.
func (p *AWSProxy) Env() []string { return []string{"AWS_ENDPOINT_URL=" + p.URL} }

// Close stops the proxy.
func (p *AWSProxy) Close() { _ = p.srv.Close() }

// statusWriter passes a response on and keeps its status.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// recorder is an http.ResponseWriter that keeps the response.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}
