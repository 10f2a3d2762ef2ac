package testidp

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DiscoveryPath is where a provider serves its discovery document, under its issuer path.
const DiscoveryPath = "/.well-known/openid-configuration"

// ServerOptions configure a local identity provider.
type ServerOptions struct {
	// Addr is the loopback address to listen on; "" means 127.0.0.1:0 (a free port).
	Addr string
	// Chains are served in turn, one per handshake: two entries alternate.
	Chains []tls.Certificate
	// ChainsBySNI are served instead of Chains to clients sending that server name.
	ChainsBySNI map[string][]tls.Certificate
	// Path is the issuer path, such as "/id/ABC"; the discovery document is at
	// Path + DiscoveryPath.
	Path string
	// Paths are further issuer paths served the same way as Path, so that
	// several providers (host:port/id/A, host:port/id/B) share one host.
	Paths []string
	// IssuerHost fixes the host[:port] of the default issuer. When empty, the
	// default issuer is "https://" + the request's Host + Path, so one server
	// answers correctly under every name mapped to it ("idp.example.test"
	// for port 443); Issuer and URL then report the listener's host:port.
	IssuerHost string
	// Issuer overrides the document's issuer; default "https://" + host + Path.
	Issuer string
	// JWKSURI overrides the document's jwks_uri; default issuer + "/keys".
	JWKSURI string
	// Handler replaces the discovery and JWKS handlers, for odd behaviours.
	Handler http.Handler
	// WriteInterval, when set, makes the server send one byte per interval
	// (a slow-drip peer: the TLS handshake itself crawls).
	WriteInterval time.Duration
	// MaxVersion caps the TLS version offered (to test clients that require TLS 1.2+).
	MaxVersion uint16
	// MinVersion is the lowest TLS version accepted; 0 means TLS 1.0.
	// tls.VersionTLS13 makes a server that requires TLS 1.3.
	MinVersion uint16
	// HTTP2 offers h2 through ALPN (as most identity providers on the
	// Internet do: GitHub, Google, Entra, GitLab, Auth0): a client that
	// offers it too speaks HTTP/2, several requests at once over one
	// connection. Without it the server speaks HTTP/1.1 only.
	HTTP2 bool
}

// Server is a local TLS identity provider.
type Server struct {
	opts       ServerOptions
	ln         net.Listener
	srv        *http.Server
	handshakes atomic.Int64

	mu      sync.Mutex
	chains  []tls.Certificate
	bySNI   map[string][]tls.Certificate
	next    map[string]int // next chain index per server name ("" for Chains)
	conns   map[net.Conn]bool
	issuer  string
	jwksURI string
}

// Start listens on opts.Addr and serves TLS until Close.
func Start(opts ServerOptions) (*Server, error) {
	if len(opts.Chains) == 0 && len(opts.ChainsBySNI) == 0 {
		return nil, errors.New("testidp: no chains to serve")
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("testidp: listen %s: %w", addr, err)
	}
	s := &Server{opts: opts, ln: ln, next: make(map[string]int)}
	s.setChains(opts.Chains, opts.ChainsBySNI)
	host := ln.Addr().String()
	if opts.IssuerHost != "" {
		host = opts.IssuerHost
	}
	s.issuer = opts.Issuer
	if s.issuer == "" {
		s.issuer = "https://" + host + opts.Path
	}
	s.jwksURI = opts.JWKSURI
	if s.jwksURI == "" {
		s.jwksURI = strings.TrimSuffix(s.issuer, "/") + "/keys"
	}
	handler := opts.Handler
	if handler == nil {
		handler = s.defaultHandler()
	}
	s.srv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
		ConnState:         s.track,
	}
	var raw net.Listener = ln
	if opts.WriteInterval > 0 {
		raw = &dripListener{Listener: ln, interval: opts.WriteInterval}
	}
	cfg := &tls.Config{
		MinVersion:         s.minVersion(),
		MaxVersion:         opts.MaxVersion,
		GetConfigForClient: s.configFor,
	}
	go s.srv.Serve(tls.NewListener(raw, cfg))
	return s, nil
}

// configFor counts the handshake and picks the chain for the client's server name.
func (s *Server) configFor(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	s.handshakes.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	key, chains := "", s.chains
	if c, ok := s.bySNI[hello.ServerName]; ok {
		key, chains = "sni:"+hello.ServerName, c
	}
	if len(chains) == 0 {
		return nil, fmt.Errorf("testidp: no chain for server name %q", hello.ServerName)
	}
	i := s.next[key] % len(chains)
	s.next[key] = i + 1
	cfg := &tls.Config{
		MinVersion:   s.minVersion(),
		MaxVersion:   s.opts.MaxVersion,
		Certificates: []tls.Certificate{chains[i]},
	}
	if s.opts.HTTP2 {
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	return cfg, nil
}

func (s *Server) minVersion() uint16 {
	if s.opts.MinVersion != 0 {
		return s.opts.MinVersion
	}
	return tls.VersionTLS10
}

func (s *Server) defaultHandler() http.Handler {
	mux := http.NewServeMux()
	for _, path := range append([]string{s.opts.Path}, s.opts.Paths...) {
		mux.HandleFunc("GET "+strings.TrimSuffix(path, "/")+DiscoveryPath, func(w http.ResponseWriter, r *http.Request) {
			issuer := "https://" + r.Host + path
			switch {
			case s.opts.Issuer != "" && path == s.opts.Path:
				issuer = s.opts.Issuer
			case s.opts.IssuerHost != "":
				issuer = "https://" + s.opts.IssuerHost + path
			}
			jwks := s.opts.JWKSURI
			if jwks == "" {
				jwks = strings.TrimSuffix(issuer, "/") + "/keys"
			}
			writeJSON(w, map[string]any{
				"issuer":                                issuer,
				"jwks_uri":                              jwks,
				"response_types_supported":              []string{"id_token"},
				"subject_types_supported":               []string{"public"},
				"id_token_signing_alg_values_supported": []string{"ES256"},
			})
		})
	}
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"keys": []any{}})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// CloseConnections closes every connection the server has open, HTTP/2
// ones included: between requests, what a server's keep-alive timeout does.
func (s *Server) CloseConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// track follows the server's connections (http.Server.ConnState).
func (s *Server) track(c net.Conn, state http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch state {
	case http.StateNew:
		if s.conns == nil {
			s.conns = map[net.Conn]bool{}
		}
		s.conns[c] = true
	case http.StateClosed, http.StateHijacked:
		delete(s.conns, c)
	}
}

// Host is the listener's host:port.
func (s *Server) Host() string { return s.ln.Addr().String() }

// Issuer is the issuer the discovery document names.
func (s *Server) Issuer() string { return s.issuer }

// URL is the provider Url as IAM stores it: the issuer without "https://".
func (s *Server) URL() string { return strings.TrimPrefix(s.issuer, "https://") }

// JWKSURI is the jwks_uri the discovery document names.
func (s *Server) JWKSURI() string { return s.jwksURI }

// Handshakes is the number of TLS handshakes clients started (ClientHellos received).
func (s *Server) Handshakes() int { return int(s.handshakes.Load()) }

// SetChains replaces the chains served from the next handshake on (a
// certificate rotation), restarting the alternation.
func (s *Server) SetChains(chains ...tls.Certificate) {
	s.setChains(chains, nil)
}

func (s *Server) setChains(chains []tls.Certificate, bySNI map[string][]tls.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chains = chains
	if bySNI != nil {
		s.bySNI = bySNI
	}
	clear(s.next)
}

// Close stops the server and closes its connections.
func (s *Server) Close() error {
	return s.srv.Close()
}

// dripListener makes every accepted connection write one byte per interval.
type dripListener struct {
	net.Listener
	interval time.Duration
}

func (l *dripListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &dripConn{Conn: c, interval: l.interval, closed: make(chan struct{})}, nil
}

type dripConn struct {
	net.Conn
	interval time.Duration
	once     sync.Once
	closed   chan struct{}
}

func (c *dripConn) Write(b []byte) (int, error) {
	for i := range b {
		t := time.NewTimer(c.interval)
		select {
		case <-t.C:
		case <-c.closed:
			t.Stop()
			return i, net.ErrClosed
		}
		if _, err := c.Conn.Write(b[i : i+1]); err != nil {
			return i, err
		}
	}
	return len(b), nil
}

func (c *dripConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
