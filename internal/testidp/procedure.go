package testidp

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// procedureStepLimit bounds one step (one curl, one openssl) of the procedure.
const procedureStepLimit = 15 * time.Second

// Procedure is AWS's documented way to get a provider's thumbprint, as a user
// scripts it per provider: fetch the discovery document with curl, take the
// jwks_uri host, run `openssl s_client -servername HOST -showcerts -connect
// HOST:PORT </dev/null`, keep the last certificate printed, run
// `openssl x509 -noout -fingerprint -sha1` on it. Benchmarks time it against
// the engine.
type Procedure struct {
	// Curl is the path of curl; "" fetches with Go's HTTP client instead (a
	// new connection per request, as curl).
	Curl   string
	caFile string
	client *http.Client
}

// ProcedureTimes are the summed times of the procedure's steps.
type ProcedureTimes struct {
	Discovery, SClient, X509 time.Duration
}

// NewProcedure trusts root (written into dir for curl's --cacert) and finds curl.
func NewProcedure(dir string, root *CA) (*Procedure, error) {
	p := &Procedure{
		caFile: filepath.Join(dir, "procedure-root.pem"),
		client: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: root.Pool()}, DisableKeepAlives: true}},
	}
	if err := os.WriteFile(p.caFile, root.PEM(), 0o600); err != nil {
		return nil, fmt.Errorf("write root for curl: %w", err)
	}
	if path, err := exec.LookPath("curl"); err == nil {
		p.Curl = path
	}
	return p, nil
}

// Discovery names how the discovery step is done.
func (p *Procedure) Discovery() string {
	if p.Curl != "" {
		return "curl"
	}
	return "Go net/http instead of curl"
}

// Thumbprint runs the procedure for one provider Url (as IAM stores it) and
// adds each step's time to t.
func (p *Procedure) Thumbprint(ctx context.Context, providerURL string, t *ProcedureTimes) (string, error) {
	start := time.Now()
	doc, err := p.fetch(ctx, "https://"+providerURL+DiscoveryPath)
	t.Discovery += time.Since(start)
	if err != nil {
		return "", err
	}
	var d struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return "", fmt.Errorf("discovery document: %w", err)
	}
	u, err := url.Parse(d.JWKSURI)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("jwks_uri %q: not a URL", d.JWKSURI)
	}
	addr := u.Host
	if u.Port() == "" {
		addr += ":443"
	}
	sctx, cancel := context.WithTimeout(ctx, procedureStepLimit)
	defer cancel()
	start = time.Now()
	blocks, err := OpenSSLChain(sctx, addr, ServerName(addr))
	t.SClient += time.Since(start)
	if err != nil {
		return "", err
	}
	start = time.Now()
	tp, err := OpenSSLFingerprint(sctx, blocks[len(blocks)-1])
	t.X509 += time.Since(start)
	return tp, err
}

// ProcedureRun is the procedure run over providers one after another.
type ProcedureRun struct {
	// Thumbprints and Errors are per provider Url, in order.
	Thumbprints []string
	Errors      []error
	Took        time.Duration
	Steps       ProcedureTimes
}

// Run runs the procedure for each provider Url in turn, as a script would.
// Its error is ctx's, when it ended the run.
func (p *Procedure) Run(ctx context.Context, providerURLs []string) (ProcedureRun, error) {
	var r ProcedureRun
	start := time.Now()
	for _, u := range providerURLs {
		tp, err := p.Thumbprint(ctx, u, &r.Steps)
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
		r.Thumbprints, r.Errors = append(r.Thumbprints, tp), append(r.Errors, err)
	}
	r.Took = time.Since(start)
	return r, nil
}

// fetch GETs u with curl (or Go's client).
func (p *Procedure) fetch(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, procedureStepLimit)
	defer cancel()
	if p.Curl != "" {
		var out, errb bytes.Buffer
		cmd := exec.CommandContext(ctx, p.Curl, "-sS", "--fail", "--noproxy", "*", "--max-time", "10", "--cacert", p.caFile, u)
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("curl %s: %w: %s", u, err, strings.TrimSpace(errb.String()))
		}
		return out.Bytes(), nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New("GET " + u + ": " + resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}
