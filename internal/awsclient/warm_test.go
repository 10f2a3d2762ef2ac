package awsclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// TestWarm: a call runs once and Warm returns after it; calls one after
// another reuse one goroutine; calls at once run at once (none waits for
// another's goroutine); idle goroutines end.
func TestWarm(t *testing.T) {
	var n atomic.Int32
	Warm(func() { n.Add(1) })
	if n.Load() != 1 {
		t.Fatalf("f ran %d times", n.Load())
	}
	before := runtime.NumGoroutine()
	for range 100 {
		Warm(func() { n.Add(1) })
	}
	if n.Load() != 101 {
		t.Errorf("f ran %d times, want 101", n.Load())
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("%d goroutines after 100 calls one after another, %d before: not reused", after, before)
	}

	const atOnce = 20
	var started sync.WaitGroup
	started.Add(atOnce)
	release := make(chan struct{})
	var calls sync.WaitGroup
	for range atOnce {
		calls.Go(func() {
			Warm(func() {
				started.Done()
				<-release // each call holds its goroutine until all have started
			})
		})
	}
	all := make(chan struct{})
	go func() { started.Wait(); close(all) }()
	select {
	case <-all:
	case <-time.After(10 * time.Second):
		t.Fatal("calls at once waited for each other")
	}
	close(release)
	calls.Wait()

	// Idle goroutines end after warmIdle (shortened here).
	old := warmIdle.Swap(int64(50 * time.Millisecond))
	defer warmIdle.Store(old)
	Warm(func() {}) // resets its goroutine's timer to the short idle
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() >= before+atOnce-1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // polling a count, not synchronising
	}
	if runtime.NumGoroutine() >= before+atOnce-1 {
		t.Errorf("%d goroutines long after the calls ended (%d before them)", runtime.NumGoroutine(), before)
	}
}

// BenchmarkGetOnNewGoroutine: an IAM call made from a new goroutine, as
// bounded parallel work makes it, directly or through Warm.
func BenchmarkGetOnNewGoroutine(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		_, _ = w.Write([]byte(`<GetOpenIDConnectProviderResponse><GetOpenIDConnectProviderResult><Url>idp.example</Url>` +
			`<ThumbprintList><member>c3b2ce2d7ad1e2d7e6d1e2d7ad1e2d7e6d1e2d7a</member></ThumbprintList></GetOpenIDConnectProviderResult></GetOpenIDConnectProviderResponse>`))
	}))
	defer srv.Close()
	c := iam.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		HTTPClient: NewHTTPClient(), Retryer: NewRetryer, BaseEndpoint: aws.String(srv.URL)}, IAMOptions)
	in := &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String("arn:aws:iam::123456789012:oidc-provider/idp.example")}
	call := func() {
		if _, err := c.GetOpenIDConnectProvider(context.Background(), in); err != nil {
			b.Error(err)
		}
	}
	for _, bc := range []struct {
		name string
		run  func()
	}{{"direct", call}, {"warm", func() { Warm(call) }}} {
		b.Run(bc.name, func(b *testing.B) {
			cpu := cpuTime()
			for b.Loop() {
				done := make(chan struct{})
				go func() { bc.run(); close(done) }()
				<-done
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is this process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
