package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

// headlineLoad is the load and concurrency of the last line's figures.
var headlineLoad = load{Accounts: 1, Providers: 100, Hosts: 20}

const headlineConc = 8

// results is everything one bench run measured.
type results struct {
	started  time.Time
	finished time.Time
	opts     options
	engine   []engineResult
	peers    []peerResult
	orgs     []orgResult
	// orgCreate is how long creating the organisation load's providers took.
	orgCreate time.Duration
	fn        functionResult
	notes     []string
}

// run measures everything and returns the results, complete unless the error
// is non-nil. What it starts is registered in c; the caller stops it.
func run(ctx context.Context, o options, c *cleanups, stderr io.Writer) (*results, error) {
	res := &results{started: time.Now(), opts: o}
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "bench: %5.1fs "+format+"\n", append([]any{time.Since(res.started).Seconds()}, args...)...)
	}

	dir, err := os.MkdirTemp("", "thumbprint-drift-bench-")
	if err != nil {
		return nil, err
	}
	c.add(func() { os.RemoveAll(dir) })
	modRoot, err := moduleRoot(ctx)
	if err != nil {
		return nil, err
	}

	// The binaries first, so no build runs while anything is timed.
	var hostBin string
	if !o.noFunction {
		logf("building the linux/arm64 bootstrap (make build-DriftCheckFunction) and a host binary with the same flags")
		if arm, err := buildBootstrap(ctx, modRoot, filepath.Join(dir, "arm64")); err != nil {
			res.fn.Problems = append(res.fn.Problems, err.Error())
		} else if st, err := os.Stat(arm); err == nil {
			res.fn.BootstrapBytes = st.Size()
		}
		if hostBin, err = buildHost(ctx, modRoot, dir); err != nil {
			res.fn.Problems = append(res.fn.Problems, err.Error())
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}

	ca, err := testidp.NewRoot("Bench Root CA")
	if err != nil {
		return nil, err
	}
	certFile := filepath.Join(dir, "bench-root-ca.pem")
	if err := os.WriteFile(certFile, ca.PEM(), 0o600); err != nil {
		return nil, err
	}

	logf("starting moto_server")
	m, err := testpeer.StartMoto(ctx)
	if errors.Is(err, testpeer.ErrMissing) {
		return nil, errors.New("moto_server not found on PATH: install it with pip install 'moto[server]'")
	}
	if err != nil {
		return nil, err
	}
	c.add(m.Close)
	iamClient := iam.NewFromConfig(m.Config())
	eb := &engineBench{iam: iamClient, root: ca, handshakes: o.handshakes, cpuProfile: o.cpuProfile}

	var pr *peer
	if !o.noPeer {
		if !testidp.HaveOpenSSL() {
			res.notes = append(res.notes, "openssl not found on PATH: the peer procedure was not run")
		} else {
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, DisableKeepAlives: true}
			if pr, err = newPeer(dir, ca.PEM(), tr); err != nil {
				return nil, err
			}
			switch {
			case o.noCurl:
				pr.curl = ""
				res.notes = append(res.notes, "-no-curl: the procedure's discovery step used Go's net/http client (a new connection per request, as curl), openssl for the rest")
			case pr.curl == "":
				res.notes = append(res.notes, "curl not found on PATH: the procedure's discovery step used Go's net/http client (a new connection per request, as curl), openssl for the rest")
			}
		}
	}
	envFor := func(runtimeAPI string) ([]string, error) {
		env, err := functionEnv(dir, m, runtimeAPI, certFile, o.handshakes)
		return append(env, o.functionEnv...), err
	}

	for _, l := range o.loads {
		if err := benchLoad(ctx, logf, c, res, eb, pr, m, iamClient, ca, l, hostBin, dir, envFor); err != nil {
			return nil, err
		}
	}

	if o.org.Accounts > 0 {
		if err := benchOrg(ctx, logf, c, res, m, ca, certFile); err != nil {
			return nil, err
		}
	}

	if hostBin != "" {
		logf("cold start: %d starts of the host binary", o.coldSamples)
		for range o.coldSamples {
			d, err := coldStart(ctx, hostBin, dir, envFor)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				res.fn.Problems = append(res.fn.Problems, "cold start: "+err.Error())
				break
			}
			res.fn.ColdStarts = append(res.fn.ColdStarts, d)
		}
		res.fn.SpawnFloor = spawnFloor(ctx, o.coldSamples)
	}
	res.finished = time.Now()
	return res, ctx.Err()
}

// benchLoad builds one load's world and measures the engine, the peer and
// the function over it, then tears it down.
func benchLoad(ctx context.Context, logf func(string, ...any), c *cleanups, res *results, eb *engineBench, pr *peer,
	m *testpeer.Moto, iamClient *iam.Client, ca *testidp.CA, l load, hostBin, dir string,
	envFor func(string) ([]string, error)) error {
	logf("load %s: starting %d identity providers behind %s forwarders, creating %d IAM providers", l.Name(), l.Hosts, res.opts.rtt, l.Providers)
	if err := m.Reset(ctx); err != nil {
		return err
	}
	w, err := buildWorld(ctx, iamClient, ca, l, res.opts.rtt)
	if err != nil {
		return err
	}
	c.add(w.Close)
	defer w.Close()

	// One untimed run first: moto, the TLS stacks and the SDK warm up.
	warm := slices.Max(res.opts.conc)
	logf("load %s: warm-up run at concurrency %d", l.Name(), warm)
	if _, err := eb.run(ctx, w, l, warm, nil); err != nil {
		return err
	}
	live := map[string][]string{}
	for _, conc := range res.opts.conc {
		r, err := eb.run(ctx, w, l, conc, live)
		if err != nil {
			return err
		}
		logf("load %s C%d: %.2fs (limit %.2fs)", l.Name(), conc, r.Took.Seconds(), r.Limit(res.opts.rtt).Seconds())
		res.engine = append(res.engine, r)
	}

	if pr != nil {
		ps := slices.Clone(w.providers)
		slices.SortFunc(ps, func(a, b *provider) int { return strings.Compare(a.ARN, b.ARN) })
		n := len(ps)
		if res.opts.peerProviders > 0 {
			n = min(n, res.opts.peerProviders)
		}
		logf("load %s: AWS's curl + openssl procedure over %d providers, one after another", l.Name(), n)
		p, err := pr.run(ctx, l, ps, res.opts.peerProviders, live)
		if err != nil {
			return err
		}
		res.peers = append(res.peers, p)
	}

	for i := range res.opts.rssRuns {
		if hostBin == "" {
			break
		}
		logf("load %s: scheduled invocation %d/%d of the function through the Runtime API, for its peak RSS", l.Name(), i+1, res.opts.rssRuns)
		rep, rss, logs, err := invokeOnce(ctx, hostBin, dir, envFor)
		if res.opts.functionLog != "" {
			if err := appendFile(res.opts.functionLog, logs); err != nil {
				return err
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			res.fn.Problems = append(res.fn.Problems, "invocation over "+l.Name()+": "+err.Error())
			break
		}
		rss.Load = l.Name()
		res.fn.RSS = append(res.fn.RSS, rss)
		if p := w.checkReport(rep); p != "" {
			res.fn.Problems = append(res.fn.Problems, "invocation over "+l.Name()+": "+p)
		}
	}
	return nil
}

func appendFile(name string, b []byte) error {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("-function-log: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("-function-log: %w", err)
	}
	return f.Close()
}
