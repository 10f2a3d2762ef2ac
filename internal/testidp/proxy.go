package testidp

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// ProxyOptions configure a local HTTP CONNECT proxy.
type ProxyOptions struct {
	// Addr is the loopback address to listen on; "" means 127.0.0.1:0.
	Addr string
	// Resolve maps a CONNECT target host:port to the address dialed instead,
	// so clients can use names (the proxy resolves them, as real proxies do).
	// Targets not in the map are dialed as they are.
	Resolve map[string]string
	// Status, when set, refuses every CONNECT with this HTTP status.
	Status int
}

// Proxy is a local HTTP proxy that only tunnels (CONNECT), recording targets.
type Proxy struct {
	opts ProxyOptions
	ln   net.Listener
	srv  *http.Server

	mu       sync.Mutex
	connects []string
	tunnels  map[net.Conn]struct{}
	closed   bool
	wg       sync.WaitGroup
}

// StartProxy listens on opts.Addr and tunnels until Close.
func StartProxy(opts ProxyOptions) (*Proxy, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("testidp: listen %s: %w", addr, err)
	}
	p := &Proxy{opts: opts, ln: ln, tunnels: make(map[net.Conn]struct{})}
	p.srv = &http.Server{
		Handler:           http.HandlerFunc(p.serve),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go p.srv.Serve(ln)
	return p, nil
}

// URL is the proxy's URL, http://host:port, as HTTPS_PROXY takes it.
func (p *Proxy) URL() *url.URL { return &url.URL{Scheme: "http", Host: p.ln.Addr().String()} }

// Connects lists the CONNECT targets asked for, in order.
func (p *Proxy) Connects() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.connects...)
}

// Close stops the proxy and its tunnels.
func (p *Proxy) Close() error {
	err := p.srv.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.tunnels {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "only CONNECT", http.StatusMethodNotAllowed)
		return
	}
	p.mu.Lock()
	p.connects = append(p.connects, r.Host)
	p.mu.Unlock()
	if p.opts.Status != 0 {
		http.Error(w, "refused", p.opts.Status)
		return
	}
	dst := r.Host
	if a, ok := p.opts.Resolve[dst]; ok {
		dst = a
	}
	upstream, err := net.DialTimeout("tcp", dst, 10*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	client, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		upstream.Close()
		return
	}
	if !p.track(client, upstream) {
		client.Close()
		upstream.Close()
		return
	}
	if _, err := client.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		p.untrack(client, upstream)
		return
	}
	go func() {
		defer p.untrack(client, upstream)
		done := make(chan struct{})
		go func() {
			io.Copy(upstream, brw.Reader) // brw.Reader holds what the client sent early
			closeWrite(upstream)
			close(done)
		}()
		io.Copy(client, upstream)
		closeWrite(client)
		<-done
	}()
}

func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	for _, c := range conns {
		p.tunnels[c] = struct{}{}
	}
	p.wg.Add(1)
	return true
}

func (p *Proxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	for _, c := range conns {
		c.Close()
		delete(p.tunnels, c)
	}
	p.mu.Unlock()
	p.wg.Done()
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		c.Close()
	}
}
