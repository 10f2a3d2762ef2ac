package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

// Bounds of the function measurements.
const (
	buildLimit     = 5 * time.Minute  // one go build (the first compiles the SDK: ~40 s)
	coldStartLimit = 10 * time.Second // start to first next request
	invokeLimit    = 2 * time.Minute  // the invocation's remaining time
	stopLimit      = 3 * time.Second  // SIGTERM to exit, then SIGKILL
)

// scheduledEvent is an EventBridge schedule event, as events/scheduled.json.
const scheduledEvent = `{"version":"0","id":"89d1a02d-5ec7-412e-82f5-13505f849b41","detail-type":"Scheduled Event","source":"aws.events","account":"123456789012","time":"2025-01-15T12:00:00Z","region":"us-east-1","resources":["arn:aws:events:us-east-1:123456789012:rule/bench"],"detail":{}}`

// functionResult is what the bench measured of the function binary.
type functionResult struct {
	BootstrapBytes int64  // stripped linux/arm64 bootstrap
	HostBinary     string // GOOS/GOARCH of the binary timed
	ColdStarts     []time.Duration
	SpawnFloor     time.Duration // median start of a trivial static binary, for scale
	RSS            []rssSample   // one per invocation
	Problems       []string
}

// rssSample is one invocation of the function in its own process.
type rssSample struct {
	Load string
	// HWMKiB is VmHWM from /proc/PID/status, read after the invocation: the
	// peak resident set of the function's own image since its exec.
	HWMKiB int64
	// MaxrssKiB is rusage maxrss from wait4 (ProcessState.SysUsage). On Linux
	// it is never below the spawner's RSS: exec folds the high-water mark of the
	// image it leaves (the bench's, shared by vfork) into it (golang/go#32054).
	MaxrssKiB int64
	Took      time.Duration
	Counts    map[drift.Outcome]int
}

// MaxRSSKiB is the largest peak RSS (VmHWM) over the invocations, 0 for none.
func (f functionResult) MaxRSSKiB() int64 {
	var m int64
	for _, s := range f.RSS {
		m = max(m, s.HWMKiB)
	}
	return m
}

// moduleRoot is the directory of the repository's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	root, err := testpeer.ModuleRoot(ctx)
	if errors.Is(err, testpeer.ErrNoModule) {
		return "", errors.New("run the bench inside the repository (make bench)")
	}
	return root, err
}

// buildBootstrap runs `make build-DriftCheckFunction ARTIFACTS_DIR=dir`: the
// stripped static linux/arm64 bootstrap that is deployed.
func buildBootstrap(ctx context.Context, root, dir string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, buildLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "-s", "build-DriftCheckFunction", "ARTIFACTS_DIR="+dir)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("make build-DriftCheckFunction: %w\n%s", err, bytes.TrimSpace(out))
	}
	return filepath.Join(dir, "bootstrap"), nil
}

// buildHost builds ./functions/drift-check for this machine with the
// Makefile's flags (static, lambda.norpc, trimmed, stripped).
func buildHost(ctx context.Context, root, dir string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, buildLimit)
	defer cancel()
	bin := filepath.Join(dir, "bootstrap-host")
	if err := testpeer.BuildFunction(ctx, root, bin, "-trimpath", "-ldflags=-s -w"); err != nil {
		return "", err
	}
	return bin, nil
}

// functionEnv is the function's whole environment: moto's endpoint and
// credentials, empty AWS config files, the bench root as the trust store, the
// function's settings and Lambda's variables. Only PATH is inherited.
func functionEnv(dir string, m *testpeer.Moto, runtimeAPI, certFile string, handshakes int) ([]string, error) {
	empty := filepath.Join(dir, "aws-config")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		return nil, err
	}
	noRoots := filepath.Join(dir, "no-system-roots")
	if err := os.MkdirAll(noRoots, 0o700); err != nil {
		return nil, err
	}
	env := append([]string{"PATH=" + os.Getenv("PATH")}, m.Env()...)
	return append(env,
		"AWS_CONFIG_FILE="+empty,
		"AWS_SHARED_CREDENTIALS_FILE="+empty,
		"AWS_LAMBDA_RUNTIME_API="+runtimeAPI,
		"AWS_LAMBDA_FUNCTION_NAME=drift-check-bench",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
		"AWS_LAMBDA_LOG_FORMAT=JSON",
		"DRIFT_MODE=report",
		"CONCURRENCY=8",
		fmt.Sprintf("PROBE_HANDSHAKES=%d", handshakes),
		"PROBE_TIMEOUT="+probeTimeout.String(),
		"SSL_CERT_FILE="+certFile,
		"SSL_CERT_DIR="+noRoots,
	), nil
}

// process is a started function binary.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
	out    bytes.Buffer
}

// startProcess starts bin in its own process group; stop it with stop.
func startProcess(bin string, env []string, dir string) (*process, error) {
	p := &process{cmd: exec.Command(bin), exited: make(chan struct{})}
	p.cmd.Env, p.cmd.Dir = env, dir
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	return p, nil
}

// stop sends SIGTERM to the process group, then SIGKILL, and waits.
func (p *process) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(stopLimit):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// maxRSSKiB is the peak resident set of the exited process (Linux: KiB).
func (p *process) maxRSSKiB() int64 {
	if p.cmd.ProcessState == nil {
		return 0
	}
	if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss
	}
	return 0
}

// coldStart starts bin once behind a fresh Runtime API and returns the time
// from just before the process is started to its first `next` request.
func coldStart(ctx context.Context, bin, dir string, envFor func(runtimeAPI string) ([]string, error)) (time.Duration, error) {
	rt, err := testpeer.StartRuntime()
	if err != nil {
		return 0, err
	}
	defer rt.Close()
	env, err := envFor(rt.Addr)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	p, err := startProcess(bin, env, dir)
	if err != nil {
		return 0, err
	}
	defer p.stop()
	select {
	case <-rt.FirstPoll():
		return time.Since(start), nil
	case <-p.exited:
		return 0, fmt.Errorf("function exited during start-up (%v): %s", p.err, lastLine(p.out.String()))
	case <-time.After(coldStartLimit):
		return 0, fmt.Errorf("function did not ask for an event within %s", coldStartLimit)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// spawnFloor is the median time to start and reap a trivial binary n times:
// what the operating system alone costs a process start here.
func spawnFloor(ctx context.Context, n int) time.Duration {
	bin, err := exec.LookPath("true")
	if err != nil {
		return 0
	}
	var ds []time.Duration
	for range n {
		if ctx.Err() != nil {
			break
		}
		start := time.Now()
		if exec.CommandContext(ctx, bin).Run() != nil {
			return 0
		}
		ds = append(ds, time.Since(start))
	}
	return median(ds)
}

// invokeOnce starts bin, hands it one scheduled event through a fresh Runtime
// API, waits for the report, stops it and returns its peak RSS.
// It also returns what the function wrote.
func invokeOnce(ctx context.Context, bin, dir string, envFor func(runtimeAPI string) ([]string, error)) (rep *drift.Report, rss rssSample, logs []byte, err error) {
	rt, err := testpeer.StartRuntime()
	if err != nil {
		return nil, rss, nil, err
	}
	defer rt.Close()
	env, err := envFor(rt.Addr)
	if err != nil {
		return nil, rss, nil, err
	}
	p, err := startProcess(bin, env, dir)
	if err != nil {
		return nil, rss, nil, err
	}
	defer func() { p.stop(); logs = p.out.Bytes() }()
	rep, rss, err = p.invoke(ctx, rt)
	return rep, rss, nil, err
}

// invoke waits for p's first poll of rt, hands it one scheduled event, waits
// for the report, reads its peak RSS, stops p.
func (p *process) invoke(ctx context.Context, rt *testpeer.Runtime) (*drift.Report, rssSample, error) {
	var rss rssSample
	select {
	case <-rt.FirstPoll():
	case <-p.exited:
		return nil, rss, fmt.Errorf("function exited during start-up (%v): %s", p.err, lastLine(p.out.String()))
	case <-time.After(coldStartLimit):
		return nil, rss, fmt.Errorf("function did not ask for an event within %s", coldStartLimit)
	case <-ctx.Done():
		return nil, rss, ctx.Err()
	}
	ictx, cancel := context.WithTimeout(ctx, invokeLimit+10*time.Second)
	defer cancel()
	go func() {
		select {
		case <-p.exited:
			cancel()
		case <-ictx.Done():
		}
	}()
	start := time.Now()
	res, err := rt.Invoke(ictx, []byte(scheduledEvent), invokeLimit)
	rss.Took = time.Since(start)
	// The function is alive again, waiting for its next event.
	hwm, hwmErr := vmHWMKiB(p.cmd.Process.Pid)
	p.stop()
	rss.HWMKiB, rss.MaxrssKiB = hwm, p.maxRSSKiB()
	if err != nil {
		return nil, rss, fmt.Errorf("invoke: %w: %s", err, lastLine(p.out.String()))
	}
	if res.Error != nil {
		return nil, rss, fmt.Errorf("function failed (%s): %s", res.Error.ErrorType, res.ErrorMessage())
	}
	if hwmErr != nil {
		return nil, rss, hwmErr
	}
	var rep drift.Report
	if err := json.Unmarshal(res.Response, &rep); err != nil {
		return nil, rss, fmt.Errorf("function response is not a report: %w", err)
	}
	rss.Counts = rep.Counts
	return &rep, rss, nil
}

// vmHWMKiB reads VmHWM (the peak resident set of the process's image, in
// KiB) from /proc/PID/status.
func vmHWMKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kib int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kib); err != nil {
				return 0, fmt.Errorf("peak RSS: VmHWM %q: %w", v, err)
			}
			return kib, nil
		}
	}
	return 0, fmt.Errorf("peak RSS: no VmHWM in /proc/%d/status", pid)
}

// median of ds; 0 for none.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// lastLine is the last non-empty line of a process's output, shortened.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return firstLine(lines[len(lines)-1])
}
