package testpeer

import (
	"io"
	"net"
	"testing"
	"time"
)

// startEcho is a loopback TCP server that echoes until the client half-closes.
func startEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

// The forwarder's delays are enforced, so the lower bounds are exact; the
// upper bounds only catch a forwarder that adds far more than asked.
func TestLatencyRoundTrips(t *testing.T) {
	const rtt = 40 * time.Millisecond
	const slack = 250 * time.Millisecond
	f, err := StartLatency(startEcho(t), rtt)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	start := time.Now()
	c, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1)
	exchange := func() {
		t.Helper()
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}

	exchange() // connect (1 round trip) + request and answer (1)
	if d := time.Since(start); d < 2*rtt || d > 2*rtt+slack {
		t.Errorf("first exchange on a new connection took %v, want 2 x %v", d, rtt)
	}
	start = time.Now()
	exchange()
	if d := time.Since(start); d < rtt || d > rtt+slack {
		t.Errorf("second exchange took %v, want %v", d, rtt)
	}

	// A half-close reaches the server, whose close comes back as EOF.
	start = time.Now()
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("after half-close: read %d, %v; want EOF", n, err)
	}
	if d := time.Since(start); d < rtt {
		t.Errorf("half-close round trip took %v, want at least %v", d, rtt)
	}
	if f.Accepted() != 1 {
		t.Errorf("accepted %d connections, want 1", f.Accepted())
	}
}

func TestLatencyCloseEndsConnections(t *testing.T) {
	f, err := StartLatency(startEcho(t), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { f.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not return while data was in flight")
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("read after Close succeeded; want the connection closed")
	}
	if _, err := net.DialTimeout("tcp", f.Addr(), time.Second); err == nil {
		t.Error("dial after Close succeeded")
	}
}
