package testidp

import (
	"bufio"
	"context"
	"crypto"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// LegacyServer is an identity provider that only old TLS clients can talk
// to, run by an external program (python3 or openssl), as STS and AWS's
// openssl procedure still can. It serves the discovery document at
// DiscoveryPath with issuer https://Host() and jwks_uri on the same host.
type LegacyServer struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	host  string
	dir   string
	done  chan struct{}
	once  sync.Once
}

// legacyStartTimeout bounds how long a legacy server may take to listen.
const legacyStartTimeout = 15 * time.Second

// rsaKexServer is the python3 program of StartRSAKeyExchangeServer: TLS 1.2
// at most, and only the AES-CBC suites with RSA key exchange (no ECDHE), so a
// client that offers no RSA key exchange cannot connect. It prints
// "LISTENING <port>" when ready and exits when its standard input closes.
const rsaKexServer = `
import http.server, json, os, socketserver, ssl, sys, threading
chain, key = sys.argv[1], sys.argv[2]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
ctx.set_ciphers("AES128-SHA:AES256-SHA")
ctx.load_cert_chain(chain, key)
SUFFIX = "/.well-known/openid-configuration"

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if not self.path.endswith(SUFFIX):
            self.send_error(404)
            return
        issuer = "https://" + self.headers["Host"] + self.path[:-len(SUFFIX)]
        body = json.dumps({"issuer": issuer, "jwks_uri": issuer + "/keys"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def finish_request(self, request, client_address):
        # The handshake runs in the connection's own thread.
        try:
            conn = ctx.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            request.close()
            return
        self.RequestHandlerClass(conn, client_address, self)

    def handle_error(self, request, client_address):
        pass

srv = Server(("127.0.0.1", 0), Handler)
print("LISTENING %d" % srv.server_address[1], flush=True)
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
srv.serve_forever()
`

// StartRSAKeyExchangeServer serves chain (whose leaf must have an RSA key,
// see CA.RSALeaf) from Python's ssl module restricted to TLS 1.2 and the
// cipher suites AES128-SHA and AES256-SHA: RSA key exchange only, which Go
// clients refuse by default. A missing python3 gives an error matching
// exec.ErrNotFound.
func StartRSAKeyExchangeServer(chain tls.Certificate) (*LegacyServer, error) {
	py, err := exec.LookPath("python3")
	if err != nil {
		return nil, fmt.Errorf("testidp: python3: %w", err)
	}
	dir, chainFile, keyFile, err := writeChain(chain)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(py, "-c", rsaKexServer, chainFile, keyFile)
	return startLegacy(cmd, dir, "LISTENING ", func(s string) (string, error) {
		return "127.0.0.1:" + strings.TrimSpace(s), nil
	})
}

// StartSHA1SigningServer serves chain (RSA leaf) from `openssl s_server
// -tls1_2 -sigalgs RSA+SHA1 -cipher ECDHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0`:
// TLS 1.2 whose key exchange is signed only with RSA and SHA-1, so a client
// that offers no SHA-1 signature algorithm cannot connect. The discovery
// document is a file served by -WWW. A missing openssl gives an error
// matching exec.ErrNotFound.
func StartSHA1SigningServer(chain tls.Certificate) (*LegacyServer, error) {
	ossl, err := exec.LookPath("openssl")
	if err != nil {
		return nil, fmt.Errorf("testidp: openssl: %w", err)
	}
	dir, _, keyFile, err := writeChain(chain)
	if err != nil {
		return nil, err
	}
	leafFile, restFile := filepath.Join(dir, "leaf.pem"), filepath.Join(dir, "rest.pem")
	leafOnly := tls.Certificate{Certificate: chain.Certificate[:1]}
	rest := tls.Certificate{Certificate: chain.Certificate[1:]}
	if err := os.WriteFile(leafFile, ChainPEM(leafOnly), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testidp: %w", err)
	}
	args := []string{"s_server", "-accept", "127.0.0.1:0", "-cert", leafFile, "-key", keyFile,
		"-tls1_2", "-sigalgs", "RSA+SHA1", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0", "-WWW"}
	if len(rest.Certificate) > 0 {
		if err := os.WriteFile(restFile, ChainPEM(rest), 0o600); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("testidp: %w", err)
		}
		args = append(args, "-cert_chain", restFile)
	}
	cmd := exec.Command(ossl, args...)
	cmd.Dir = filepath.Join(dir, "www") // -WWW serves files under the working directory
	if err := os.MkdirAll(filepath.Join(cmd.Dir, ".well-known"), 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testidp: %w", err)
	}
	return startLegacy(cmd, dir, "ACCEPT ", func(addr string) (string, error) {
		host := strings.TrimSpace(addr)
		issuer := "https://" + host
		body, _ := json.Marshal(map[string]string{"issuer": issuer, "jwks_uri": issuer + "/keys"})
		doc := filepath.Join(cmd.Dir, strings.TrimPrefix(DiscoveryPath, "/"))
		if err := os.WriteFile(doc, body, 0o600); err != nil {
			return "", fmt.Errorf("testidp: %w", err)
		}
		return host, nil
	})
}

// writeChain writes chain as PEM (leaf first) and its key into a new
// temporary directory.
func writeChain(chain tls.Certificate) (dir, chainFile, keyFile string, err error) {
	key, ok := chain.PrivateKey.(crypto.Signer)
	if !ok || len(chain.Certificate) == 0 {
		return "", "", "", errors.New("testidp: chain without certificate or signing key")
	}
	leaf := &Leaf{DER: chain.Certificate[0], Key: key}
	keyPEM, err := leaf.KeyPEM()
	if err != nil {
		return "", "", "", fmt.Errorf("testidp: %w", err)
	}
	dir, err = os.MkdirTemp("", "testidp-legacy-")
	if err != nil {
		return "", "", "", fmt.Errorf("testidp: %w", err)
	}
	chainFile, keyFile = filepath.Join(dir, "chain.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(chainFile, ChainPEM(chain), 0o600); err != nil {
		os.RemoveAll(dir)
		return "", "", "", fmt.Errorf("testidp: %w", err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		os.RemoveAll(dir)
		return "", "", "", fmt.Errorf("testidp: %w", err)
	}
	return dir, chainFile, keyFile, nil
}

// startLegacy starts cmd and waits for the line starting with ready on its
// standard output; addr turns the rest of that line into host:port.
func startLegacy(cmd *exec.Cmd, dir, ready string, addr func(string) (string, error)) (*LegacyServer, error) {
	fail := func(err error) (*LegacyServer, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fail(fmt.Errorf("testidp: %w", err))
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fail(fmt.Errorf("testidp: %w", err))
	}
	var stderr strings.Builder
	cmd.Stderr = &lockedWriter{w: &stderr}
	if err := cmd.Start(); err != nil {
		return fail(fmt.Errorf("testidp: start %s: %w", cmd.Path, err))
	}
	s := &LegacyServer{cmd: cmd, stdin: stdin, dir: dir, done: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		found := false
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), ready); ok && !found {
				found = true
				lines <- rest
			}
		}
		close(lines)
	}()
	go func() { cmd.Wait(); close(s.done) }()
	ctx, cancel := context.WithTimeout(context.Background(), legacyStartTimeout)
	defer cancel()
	select {
	case rest, ok := <-lines:
		if !ok {
			s.Close()
			return nil, fmt.Errorf("testidp: %s exited before listening: %s", filepath.Base(cmd.Path), strings.TrimSpace(cmd.Stderr.(*lockedWriter).String()))
		}
		if s.host, err = addr(rest); err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	case <-ctx.Done():
		s.Close()
		return nil, fmt.Errorf("testidp: %s did not listen within %s", filepath.Base(cmd.Path), legacyStartTimeout)
	}
}

// Host is the server's host:port.
func (s *LegacyServer) Host() string { return s.host }

// URL is the provider Url as IAM stores it: the host, no path.
func (s *LegacyServer) URL() string { return s.host }

// Close stops the program and removes its files.
func (s *LegacyServer) Close() error {
	s.once.Do(func() {
		s.stdin.Close()
		s.cmd.Process.Kill()
		<-s.done
		os.RemoveAll(s.dir)
	})
	return nil
}

// lockedWriter collects a program's standard error from its copying goroutine.
type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
