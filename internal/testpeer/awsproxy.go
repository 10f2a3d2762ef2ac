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
// a call signed with an unknown key goes to moto as it came.
type AWSProxy struct {
	// URL is the proxy's endpoint, for AWS_ENDPOINT_URL or BaseEndpoint.
	URL string

	latency map[string]time.Duration
	srv     *http.Server
	mu      sync.Mutex
	keys    map[string]string // access key id: account
}

var (
	credentialScope = regexp.MustCompile(`Credential=([^/,\s]+)/[^/]+/[^/]+/([^/]+)/`)
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
	p := &AWSProxy{URL: "http://" + ln.Addr().String(), latency: latency, keys: map[string]string{AccessKey: AccountID}}
	rp := httputil.NewSingleHostReverseProxy(target)
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, service := "", ""
		if m := credentialScope.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
			key, service = m[1], m[2]
		}
		if account := p.account(key); account != "" {
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
		if service == "sts" {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") == "AssumeRole" {
				role = form.Get("RoleArn")
			}
		}
		if role == "" {
			rp.ServeHTTP(w, r)
			return
		}
		rec := &recorder{header: http.Header{}}
		rp.ServeHTTP(rec, r)
		if m := accessKeyID.FindSubmatch(rec.body.Bytes()); m != nil && rec.status == http.StatusOK {
			p.mu.Lock()
			p.keys[string(m[1])] = accounts.AccountOf(role)
			p.mu.Unlock()
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

func (p *AWSProxy) account(key string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[key]
}

// Env points a function process's SDK at the proxy for every service.
func (p *AWSProxy) Env() []string { return []string{"AWS_ENDPOINT_URL=" + p.URL} }

// Close stops the proxy.
func (p *AWSProxy) Close() { _ = p.srv.Close() }

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
