package testidp

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Peer is a TCP listener that misbehaves on purpose: it hands every accepted
// connection to a behaviour such as Silent, Hangup or Reply.
type Peer struct {
	ln       net.Listener
	serve    func(net.Conn)
	accepted atomic.Int64
	wg       sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// StartPeer listens on addr ("" means 127.0.0.1:0) and runs serve for each
// connection until Close, which closes every connection.
func StartPeer(addr string, serve func(net.Conn)) (*Peer, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("testidp: listen %s: %w", addr, err)
	}
	p := &Peer{ln: ln, serve: serve, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *Peer) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.wg.Done()
			p.serve(c)
			c.Close()
			p.mu.Lock()
			delete(p.conns, c)
			p.mu.Unlock()
		}()
	}
}

// Host is the listener's host:port.
func (p *Peer) Host() string { return p.ln.Addr().String() }

// Accepted is the number of connections accepted so far.
func (p *Peer) Accepted() int { return int(p.accepted.Load()) }

// Close stops listening, closes every connection and waits for the behaviours to end.
func (p *Peer) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

// Silent reads whatever the client sends and never answers.
func Silent(c net.Conn) {
	io.Copy(io.Discard, c)
}

// Hangup waits for the client's first bytes (the start of a ClientHello) and
// closes the connection: a handshake cut short.
func Hangup(c net.Conn) {
	buf := make([]byte, 1)
	c.Read(buf)
}

// Reply waits for the client's first bytes, writes b and closes: Reply of a
// plain HTTP response makes a peer that does not speak TLS.
func Reply(b []byte) func(net.Conn) {
	return func(c net.Conn) {
		buf := make([]byte, 512)
		if _, err := c.Read(buf); err != nil {
			return
		}
		c.Write(b)
	}
}

// DripHandler answers 200 with body, one byte per interval, flushing each.
func DripHandler(body []byte, interval time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		rc.Flush()
		for _, b := range body {
			t := time.NewTimer(interval)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
			if _, err := w.Write([]byte{b}); err != nil {
				return
			}
			rc.Flush()
		}
	})
}
