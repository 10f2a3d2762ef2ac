package testpeer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary play a Lambda function: with
// TESTPEER_FAKE_FUNCTION set it is a minimal runtime client that answers each
// event with the event itself, after holding about 8 MiB, and fails an event
// of "fail".
func TestMain(m *testing.M) {
	if os.Getenv("TESTPEER_FAKE_FUNCTION") != "" {
		fakeFunction(os.Getenv("AWS_LAMBDA_RUNTIME_API"))
		return
	}
	os.Exit(m.Run())
}

var ballast []byte

func fakeFunction(api string) {
	base := "http://" + api + "/2018-06-01/runtime/invocation/"
	for {
		resp, err := http.Get(base + "next")
		if err != nil {
			os.Exit(1)
		}
		event, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		ballast = bytes.Repeat([]byte{1}, 8<<20)
		fmt.Println("event", string(event))
		if string(event) == `"loud"` {
			fmt.Println(strings.Repeat("x", 1<<20))
			fmt.Println("end of loud")
		}
		if string(event) == `"fail"` {
			http.Post(base+id+"/error", "application/json", strings.NewReader(`{"errorMessage":"asked to fail","errorType":"Fake"}`))
			continue
		}
		http.Post(base+id+"/response", "application/json", bytes.NewReader(event))
	}
}

func startFake(t *testing.T) *Function {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := StartFunction(bin, t.TempDir(), []string{"TESTPEER_FAKE_FUNCTION=1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	return f
}

func TestFunction(t *testing.T) {
	ctx := context.Background()
	f := startFake(t)
	if d, err := f.Ready(ctx, 10*time.Second); err != nil || d <= 0 {
		t.Fatalf("Ready = %v, %v", d, err)
	}
	res, err := f.Invoke(ctx, []byte(`{"n":1}`), time.Minute)
	if err != nil || string(res.Response) != `{"n":1}` || res.Error != nil {
		t.Fatalf("Invoke = %+v, %v", res, err)
	}
	res, err = f.Invoke(ctx, []byte(`"fail"`), time.Minute)
	if err != nil || res.ErrorMessage() != "asked to fail" {
		t.Fatalf("failing Invoke = %+v, %v", res, err)
	}
	hwm, err := f.PeakRSSKiB()
	if err != nil || hwm < 8<<10 {
		t.Errorf("PeakRSSKiB = %d, %v; want at least the 8 MiB the function held", hwm, err)
	}
	if cpu, err := f.CPUTime(); err != nil || cpu < 0 {
		t.Errorf("CPUTime = %v, %v", cpu, err)
	}
	f.Stop()
	f.Stop()
	if !strings.Contains(string(f.Output()), `event {"n":1}`) {
		t.Errorf("output %q", f.Output())
	}
	if f.MaxrssKiB() <= 0 {
		t.Errorf("maxrss %d KiB after exit", f.MaxrssKiB())
	}
}

// TestRuntimeResponseLimit: as Lambda, the Runtime API takes a response of
// 6,291,556 bytes and fails the invocation of one a byte longer.
func TestRuntimeResponseLimit(t *testing.T) {
	ctx := context.Background()
	f := startFake(t)
	for _, n := range []int{MaxResponseBytes, MaxResponseBytes + 1} {
		event := []byte(`"` + strings.Repeat("x", n-2) + `"`)
		res, err := f.Invoke(ctx, event, time.Minute)
		if err != nil {
			t.Fatalf("Invoke of %d bytes: %v", n, err)
		}
		if tooLarge := res.Error != nil && res.Error.ErrorType == ResponseSizeTooLarge; tooLarge != (n > MaxResponseBytes) || !tooLarge && len(res.Response) != n {
			t.Errorf("response of %d bytes: %d bytes back, error %+v", n, len(res.Response), res.Error)
		}
	}
}

// TestFunctionOutputOnAnswer: every line the function wrote before it
// answered is in Output as soon as Invoke returns (the demo reads each
// invocation's log lines so), even after a megabyte of them.
func TestFunctionOutputOnAnswer(t *testing.T) {
	ctx := context.Background()
	f := startFake(t)
	for i := range 5 {
		if _, err := f.Invoke(ctx, []byte(`"loud"`), time.Minute); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(f.Output()), "end of loud\n"); n != i+1 {
			t.Fatalf("invocation %d: %d end lines in the output when Invoke returned, want %d", i+1, n, i+1)
		}
	}
}

func TestFunctionExits(t *testing.T) {
	f, err := StartFunction("/bin/sh", t.TempDir(), []string{"PATH=/bin:/usr/bin"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	// sh reads its script from /dev/null and exits at once.
	if _, err := f.Ready(context.Background(), 10*time.Second); err == nil || !strings.Contains(err.Error(), "exited during start-up") {
		t.Errorf("Ready of an exiting process: %v", err)
	}
	if _, err := f.Invoke(context.Background(), []byte(`{}`), time.Second); err == nil {
		t.Error("Invoke of an exited process succeeded")
	}
}

func TestColdStart(t *testing.T) {
	bin, _ := os.Executable()
	d, err := ColdStart(context.Background(), bin, t.TempDir(), []string{"TESTPEER_FAKE_FUNCTION=1"}, 10*time.Second)
	if err != nil || d <= 0 {
		t.Errorf("ColdStart = %v, %v", d, err)
	}
	ds, err := ColdStarts(context.Background(), bin, t.TempDir(), []string{"TESTPEER_FAKE_FUNCTION=1"}, 3, 10*time.Second)
	if err != nil || len(ds) != 3 {
		t.Errorf("ColdStarts = %v, %v", ds, err)
	}
	ds, err = ColdStarts(context.Background(), "/bin/true", t.TempDir(), nil, 3, 10*time.Second)
	if err == nil || len(ds) != 0 {
		t.Errorf("ColdStarts of a process that exits = %v, %v", ds, err)
	}
}

func TestInvokeOnce(t *testing.T) {
	bin, _ := os.Executable()
	m, err := InvokeOnce(context.Background(), bin, t.TempDir(), []string{"TESTPEER_FAKE_FUNCTION=1"}, []byte(`{"n":2}`), 10*time.Second, time.Minute)
	if err != nil || string(m.Response) != `{"n":2}` || m.HWMKiB < 8<<10 || m.MaxrssKiB <= 0 || m.Took <= 0 || !strings.Contains(string(m.Output), `event {"n":2}`) {
		t.Errorf("InvokeOnce = %+v, %v", m, err)
	}
	m, err = InvokeOnce(context.Background(), bin, t.TempDir(), []string{"TESTPEER_FAKE_FUNCTION=1"}, []byte(`"fail"`), 10*time.Second, time.Minute)
	if err != nil || m.ErrorMessage() != "asked to fail" {
		t.Errorf("failing InvokeOnce = %+v, %v", m, err)
	}
	if d := SpawnTime(context.Background(), 3); d <= 0 {
		t.Errorf("SpawnTime = %v", d)
	}
}

func TestMedian(t *testing.T) {
	if got := Median(nil); got != 0 {
		t.Errorf("Median(nil) = %v", got)
	}
	if got := Median([]time.Duration{5, 1, 3}); got != 3 {
		t.Errorf("Median odd = %v", got)
	}
	if got := Median([]time.Duration{4, 1, 3, 2}); got != 2 {
		t.Errorf("Median even = %v, want 2 (mean of 2 and 3, truncated)", got)
	}
}

func TestTrustStore(t *testing.T) {
	dir := t.TempDir()
	env, err := TrustStore(dir, []byte("PEM"))
	if err != nil || len(env) != 2 {
		t.Fatalf("TrustStore = %v, %v", env, err)
	}
	file, _ := strings.CutPrefix(env[0], "SSL_CERT_FILE=")
	if b, err := os.ReadFile(file); err != nil || string(b) != "PEM" {
		t.Errorf("%s holds %q, %v", file, b, err)
	}
	empty, _ := strings.CutPrefix(env[1], "SSL_CERT_DIR=")
	if entries, err := os.ReadDir(empty); err != nil || len(entries) != 0 {
		t.Errorf("%s: %v, %v", empty, entries, err)
	}
}

func TestParseStatusKiB(t *testing.T) {
	status := []byte("Name:\tbootstrap\nVmPeak:\t  800000 kB\nVmHWM:\t   17704 kB\nVmRSS:\t   17000 kB\n")
	if got, err := parseStatusKiB(status, "VmHWM"); err != nil || got != 17704 {
		t.Errorf("VmHWM = %d, %v", got, err)
	}
	if _, err := parseStatusKiB(status, "VmSwap"); err == nil {
		t.Error("missing field: no error")
	}
	if _, err := parseStatusKiB([]byte("VmHWM:\tlots\n"), "VmHWM"); err == nil {
		t.Error("bad number: no error")
	}
}
