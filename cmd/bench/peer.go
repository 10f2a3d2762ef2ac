package main

import (
	"bytes"
	"context"
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

	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
)

// peerStepLimit bounds one step (one curl, one openssl) of the peer.
const peerStepLimit = 15 * time.Second

// peerResult is AWS's documented procedure run over a load's providers.
type peerResult struct {
	Load      string
	Providers int // run over
	Of        int // providers in the load
	Discovery string
	Took      time.Duration // all providers run, one after another
	Curl      time.Duration // totals per step
	SClient   time.Duration
	X509      time.Duration
	Agree     int    // thumbprints equal to the engine's
	Problem   string // first failure or disagreement
}

// PerProvider is the mean time per provider.
func (p peerResult) PerProvider() time.Duration {
	if p.Providers == 0 {
		return 0
	}
	return p.Took / time.Duration(p.Providers)
}

// Total is the time for the whole load: measured, or the mean per provider
// times the providers when run over a subset (-peer-providers).
func (p peerResult) Total() time.Duration {
	if p.Providers == p.Of {
		return p.Took
	}
	return p.PerProvider() * time.Duration(p.Of)
}

// peer is the script a user would otherwise run, per provider: fetch the
// discovery document with curl, take the jwks_uri host, run
// `openssl s_client -servername HOST -showcerts -connect HOST:PORT </dev/null`,
// keep the last certificate printed, `openssl x509 -noout -fingerprint -sha1`.
type peer struct {
	curl      string // path of curl, "" to use Go's HTTP client instead
	caFile    string // the bench root, for curl --cacert
	transport *http.Transport
}

// newPeer finds curl; without it the discovery step uses Go's HTTP client
// (a new connection per request, as curl's), and says so.
func newPeer(dir string, rootPEM []byte, transport *http.Transport) (*peer, error) {
	p := &peer{caFile: filepath.Join(dir, "bench-root.pem"), transport: transport}
	if err := os.WriteFile(p.caFile, rootPEM, 0o600); err != nil {
		return nil, fmt.Errorf("write root for curl: %w", err)
	}
	if path, err := exec.LookPath("curl"); err == nil {
		p.curl = path
	}
	return p, nil
}

// Discovery names how the discovery step is done.
func (p *peer) Discovery() string {
	if p.curl != "" {
		return "curl"
	}
	return "Go net/http instead of curl"
}

// run takes the providers one after another and compares each thumbprint
// with live (the engine's, by provider Url).
func (p *peer) run(ctx context.Context, l load, ps []*provider, limit int, live map[string][]string) (peerResult, error) {
	res := peerResult{Load: l.Name(), Of: len(ps), Discovery: p.Discovery()}
	if limit > 0 && limit < len(ps) {
		ps = ps[:limit]
	}
	start := time.Now()
	for _, pr := range ps {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		tp, err := p.one(ctx, pr.URL, &res)
		res.Providers++
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			if res.Problem == "" {
				res.Problem = pr.URL + ": " + firstLine(err.Error())
			}
		case len(live[pr.URL]) > 0 && live[pr.URL][0] == tp:
			res.Agree++
		default:
			if res.Problem == "" {
				res.Problem = fmt.Sprintf("%s: openssl %s, engine %v", pr.URL, tp, live[pr.URL])
			}
		}
	}
	res.Took = time.Since(start)
	return res, nil
}

// one is the procedure for one provider Url.
func (p *peer) one(ctx context.Context, providerURL string, res *peerResult) (string, error) {
	t := time.Now()
	doc, err := p.fetch(ctx, "https://"+providerURL+testidp.DiscoveryPath)
	res.Curl += time.Since(t)
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

	sctx, cancel := context.WithTimeout(ctx, peerStepLimit)
	defer cancel()
	t = time.Now()
	blocks, err := testidp.OpenSSLChain(sctx, addr, testidp.ServerName(addr))
	res.SClient += time.Since(t)
	if err != nil {
		return "", err
	}
	t = time.Now()
	tp, err := testidp.OpenSSLFingerprint(sctx, blocks[len(blocks)-1])
	res.X509 += time.Since(t)
	return tp, err
}

// fetch GETs the discovery document with curl (or Go's client).
func (p *peer) fetch(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, peerStepLimit)
	defer cancel()
	if p.curl != "" {
		var out, errb bytes.Buffer
		cmd := exec.CommandContext(ctx, p.curl, "-sS", "--fail", "--noproxy", "*", "--max-time", "10", "--cacert", p.caFile, u)
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
	resp, err := (&http.Client{Transport: p.transport}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New("GET " + u + ": " + resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}
