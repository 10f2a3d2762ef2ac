package testpeer

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Latency is a loopback TCP forwarder that makes one round trip cost rtt: it
// stands in front of a local identity provider, or of moto_server, as the host
// clients connect to, so a benchmark knows the network it runs on. The connection itself costs one round trip (the client's first
// bytes leave no earlier than rtt after the connection was accepted, as after
// SYN, SYN-ACK), and every chunk read from either side reaches the other rtt/2
// later, in order. Bandwidth is not limited; a half-close is forwarded with the
// same delay.
type Latency struct {
	ln       net.Listener
	backend  string
	rtt      time.Duration
	accepted atomic.Int64

	done chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	open map[net.Conn]struct{}
}

// StartLatency listens on a free port of 127.0.0.1 and forwards to backend
// (host:port), adding rtt to every round trip.
func StartLatency(backend string, rtt time.Duration) (*Latency, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("latency forwarder listen: %w", err)
	}
	f := &Latency{ln: ln, backend: backend, rtt: rtt, done: make(chan struct{}), open: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.serve()
	return f, nil
}

// Addr is the host:port clients use: the backend's host as far as they can tell.
func (f *Latency) Addr() string { return f.ln.Addr().String() }

// URL is http://Addr, for an AWS endpoint (AWS_ENDPOINT_URL_IAM, BaseEndpoint)
// in front of moto_server.
func (f *Latency) URL() string { return "http://" + f.Addr() }

// Accepted is the number of connections accepted so far.
func (f *Latency) Accepted() int { return int(f.accepted.Load()) }

// Close stops accepting, closes every connection and waits for the goroutines.
func (f *Latency) Close() {
	f.mu.Lock()
	select {
	case <-f.done:
		f.mu.Unlock()
		return
	default:
	}
	close(f.done)
	for c := range f.open {
		c.Close()
	}
	f.mu.Unlock()
	f.ln.Close()
	f.wg.Wait()
}

// track registers c so Close can close it; false when already closing.
func (f *Latency) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.done:
		return false
	default:
	}
	f.open[c] = struct{}{}
	return true
}

func (f *Latency) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.open, c)
	f.mu.Unlock()
	c.Close()
}

func (f *Latency) serve() {
	defer f.wg.Done()
	for {
		client, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.accepted.Add(1)
		established := time.Now().Add(f.rtt)
		if !f.track(client) {
			client.Close()
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer f.untrack(client)
			server, err := net.DialTimeout("tcp", f.backend, 5*time.Second)
			if err != nil || !f.track(server) {
				if server != nil {
					server.Close()
				}
				return
			}
			defer f.untrack(server)
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); f.pump(server, client, established) }()
			go func() { defer wg.Done(); f.pump(client, server, time.Time{}) }()
			wg.Wait()
		}()
	}
}

// chunk is data read at some time, due on the other side at due.
type chunk struct {
	data []byte
	due  time.Time
	eof  bool
}

// pump copies src to dst, each chunk rtt/2 after it was read (and not before
// notBefore + rtt/2), then half-closes dst. On a write error it closes both.
func (f *Latency) pump(dst, src net.Conn, notBefore time.Time) {
	half := f.rtt / 2
	queue := make(chan chunk, 256)
	go func() {
		defer close(queue)
		buf := make([]byte, 64<<10)
		for {
			n, err := src.Read(buf)
			now := time.Now()
			if now.Before(notBefore) {
				now = notBefore
			}
			if n > 0 {
				queue <- chunk{data: append([]byte(nil), buf[:n]...), due: now.Add(half)}
			}
			if err != nil {
				queue <- chunk{eof: true, due: now.Add(half)}
				return
			}
		}
	}()
	failed := false
	for c := range queue {
		if failed {
			continue // drain so the reader can finish
		}
		if !f.sleepUntil(c.due) {
			failed = true
			dst.Close()
			src.Close()
			continue
		}
		if c.eof {
			closeWrite(dst)
			continue
		}
		if _, err := dst.Write(c.data); err != nil {
			failed = true
			dst.Close()
			src.Close()
		}
	}
}

// sleepUntil waits for t; false when the forwarder closes first.
func (f *Latency) sleepUntil(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-f.done:
		return false
	}
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	c.Close()
}
