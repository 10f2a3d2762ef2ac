package thumbprint

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
)

// envProxy picks the proxy for target from HTTPS_PROXY and NO_PROXY, as
// net/http does: the environment is read once per process, and loopback
// targets are never proxied.
func envProxy(target *url.URL) (*url.URL, error) {
	return http.ProxyFromEnvironment(&http.Request{URL: target})
}

// probeCipherSuites are every TLS 1.2 cipher suite crypto/tls implements,
// the ones it calls insecure included: RSA key exchange (which Go no longer
// offers by default), 3DES, RC4, CBC with SHA-256. Listing them explicitly is
// what crypto/tls needs to offer them (the tlsrsakex GODEBUG only changes the
// default list). TLS 1.3 suites are not configurable and always offered.
//
// This is safe because the probe sends no secret over these connections: a
// handshake only reads the chain the server sends, which the probe then
// verifies itself, and the discovery request is an unauthenticated GET of a
// public document. A weak suite can expose nothing, and refusing it would
// make the probe fail on legacy servers that STS and AWS's openssl procedure
// still read. SHA-1 handshake signatures in TLS 1.2 have no tls.Config
// switch: the module's go.mod sets GODEBUG tlssha1=1 for every binary and
// test built from it (see the comment there).
var probeCipherSuites = func() []uint16 {
	var ids []uint16
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if slices.Contains(cs.SupportedVersions, tls.VersionTLS12) {
			ids = append(ids, cs.ID)
		}
	}
	return ids
}()

// probeCurves are the key exchanges the probe offers: crypto/tls's default
// without the post-quantum hybrid X25519MLKEM768, whose key share makes a
// TLS 1.3 ClientHello about 1,500 bytes instead of about 300 (two TCP
// segments on the Internet) and costs both ends a key encapsulation per
// connection. Post-quantum secrecy protects nothing here (see
// probeCipherSuites); X25519 is sent first, as crypto/tls does by default.
var probeCurves = []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521}

// probeConfig is the client configuration of the probe's connections to
// hostport: SNI = the host name (none for an IP literal), TLS 1.2 up to
// maxVersion (0: the highest crypto/tls supports), every cipher suite, and no
// verification: the caller records the chain as served and verifies it.
func probeConfig(hostport string, maxVersion uint16) *tls.Config {
	return &tls.Config{
		ServerName:         serverName(hostport),
		InsecureSkipVerify: true, // the served chain is recorded, then verified by the caller
		MinVersion:         tls.VersionTLS12,
		MaxVersion:         maxVersion,
		CipherSuites:       probeCipherSuites,
		CurvePreferences:   probeCurves,
	}
}

// errChainRead ends a handshake as soon as the server's chain has arrived
// (see Prober.handshake); it is not a failure.
var errChainRead = errors.New("thumbprint: chain read; handshake ended by the probe")

// dialTLS opens a TLS connection to hostport (directly or through the proxy)
// with cfg. Every connection gets the context's deadline. A handshake that
// cfg.VerifyConnection ends with errChainRead returns (nil, errChainRead).
func (p *Prober) dialTLS(ctx context.Context, hostport string, cfg *tls.Config) (*tls.Conn, error) {
	return p.handshakeOver(ctx, nil, hostport, cfg)
}

// handshakeOver is dialTLS over conn, a TCP connection to hostport already
// open (nil: one is opened).
func (p *Prober) handshakeOver(ctx context.Context, conn net.Conn, hostport string, cfg *tls.Config) (*tls.Conn, error) {
	if conn == nil {
		var err error
		if conn, err = p.dialTCP(ctx, hostport); err != nil {
			return nil, err
		}
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		if errors.Is(err, errChainRead) {
			return nil, errChainRead
		}
		if expired(ctx) != nil || isTimeout(err) {
			return nil, err
		}
		return nil, &kindError{kind: KindTLS, err: err}
	}
	if len(tc.ConnectionState().PeerCertificates) == 0 {
		tc.Close()
		return nil, errorf(KindTLS, "%s served no certificate", hostport)
	}
	return tc, nil
}

// dialTCP connects to hostport, through an HTTP CONNECT tunnel when the proxy
// function names a proxy for https://hostport.
func (p *Prober) dialTCP(ctx context.Context, hostport string) (net.Conn, error) {
	proxyURL, err := p.proxy(&url.URL{Scheme: "https", Host: hostport})
	if err != nil {
		return nil, errorf(KindConnect, "choose proxy for %s: %v", hostport, err)
	}
	if proxyURL == nil {
		return p.dial(ctx, hostport)
	}
	return p.dialConnect(ctx, proxyURL, hostport)
}

// dial opens a TCP connection with the context's deadline set on it.
func (p *Prober) dial(ctx context.Context, addr string) (net.Conn, error) {
	conn, err := p.dialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return conn, nil
}

// dialConnect opens a tunnel to target through an http or https proxy.
func (p *Prober) dialConnect(ctx context.Context, proxy *url.URL, target string) (net.Conn, error) {
	name := proxy.Redacted()
	port := proxy.Port()
	switch proxy.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
	default:
		return nil, errorf(KindConnect, "proxy %s: scheme %q not supported", name, proxy.Scheme)
	}
	conn, err := p.dial(ctx, net.JoinHostPort(proxy.Hostname(), port))
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", name, err)
	}
	if proxy.Scheme == "https" {
		tc := tls.Client(conn, &tls.Config{ServerName: proxy.Hostname(), MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			if expired(ctx) != nil || isTimeout(err) {
				return nil, fmt.Errorf("proxy %s: %w", name, err)
			}
			return nil, errorf(KindConnect, "proxy %s: %v", name, err)
		}
		conn = tc
	}
	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: target},
		Host:   target,
		Header: http.Header{"User-Agent": {userAgent}},
	}
	if u := proxy.User; u != nil {
		pass, _ := u.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pass)))
	}
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("proxy %s: CONNECT %s: %w", name, target, err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("proxy %s: CONNECT %s: %w", name, target, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		conn.Close()
		return nil, errorf(KindConnect, "proxy %s: CONNECT %s: %s", name, target, resp.Status)
	}
	if br.Buffered() > 0 {
		return &bufferedConn{Conn: conn, r: br}, nil
	}
	return conn, nil
}

// bufferedConn reads what the proxy sent after its CONNECT answer first.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}
