package testpeer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopLimit is how long Stop waits after SIGTERM before SIGKILL.
const stopLimit = 3 * time.Second

// FunctionEnv is a function process's whole environment: PATH, moto's
// endpoint and credentials, empty AWS config files (written into dir, so a
// user's profile cannot leak in), Lambda's own variables, then vars
// (KEY=VALUE, the function's settings; later entries win). Nothing else is
// inherited. StartFunction adds AWS_LAMBDA_RUNTIME_API.
func FunctionEnv(m *Moto, dir string, vars ...string) ([]string, error) {
	empty := filepath.Join(dir, "aws-config")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		return nil, fmt.Errorf("write empty AWS config: %w", err)
	}
	env := append([]string{"PATH=" + os.Getenv("PATH")}, m.Env()...)
	env = append(env,
		"AWS_CONFIG_FILE="+empty,
		"AWS_SHARED_CREDENTIALS_FILE="+empty,
		"AWS_LAMBDA_FUNCTION_NAME=drift-check",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
		"AWS_LAMBDA_LOG_FORMAT=JSON",
	)
	return append(env, vars...), nil
}

// TrustStore writes rootPEM into dir as the only trusted root of a function
// process and returns its variables: SSL_CERT_FILE the root, SSL_CERT_DIR an
// empty directory, so the machine's roots play no part.
func TrustStore(dir string, rootPEM []byte) ([]string, error) {
	file, empty := filepath.Join(dir, "trusted-root.pem"), filepath.Join(dir, "no-system-roots")
	if err := os.WriteFile(file, rootPEM, 0o600); err != nil {
		return nil, fmt.Errorf("write trust store: %w", err)
	}
	if err := os.MkdirAll(empty, 0o700); err != nil {
		return nil, fmt.Errorf("create empty certificate directory: %w", err)
	}
	return []string{"SSL_CERT_FILE=" + file, "SSL_CERT_DIR=" + empty}, nil
}

// Function is a function binary running as Lambda runs it: its own process
// (group), polling its own local Runtime API.
type Function struct {
	// Runtime is the function's Runtime API.
	Runtime *Runtime
	// Started is when the process was started.
	Started time.Time

	cmd    *exec.Cmd
	exited chan struct{}
	err    error  // of Wait, once exited is closed
	log    string // the file of the process's stdout and stderr
	once   sync.Once
}

// StartFunction starts bin in dir with env plus AWS_LAMBDA_RUNTIME_API of a
// new Runtime API. Its stdout and stderr go to a file of its own in dir, so
// every line the function wrote before it answered is in Output once Invoke
// returns (a pipe would still be copying). Stop it with Stop.
func StartFunction(bin, dir string, env []string) (*Function, error) {
	log, err := os.CreateTemp(dir, "function-*.log")
	if err != nil {
		return nil, fmt.Errorf("function log: %w", err)
	}
	defer log.Close() // the process has its own descriptor
	rt, err := StartRuntime()
	if err != nil {
		return nil, err
	}
	f := &Function{Runtime: rt, cmd: exec.Command(bin), exited: make(chan struct{}), log: log.Name()}
	f.cmd.Env = append(append([]string(nil), env...), "AWS_LAMBDA_RUNTIME_API="+rt.Addr)
	f.cmd.Dir = dir
	f.cmd.Stdout, f.cmd.Stderr = log, log
	f.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	f.Started = time.Now()
	if err := f.cmd.Start(); err != nil {
		rt.Close()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	go func() { f.err = f.cmd.Wait(); close(f.exited) }()
	return f, nil
}

// Output is what the function wrote to stdout and stderr so far.
func (f *Function) Output() []byte {
	b, _ := os.ReadFile(f.log)
	return b
}

// Ready waits for the function's first request for an event (its cold start
// is over) and returns the time since the process was started. It fails when
// the process exits first or limit passes.
func (f *Function) Ready(ctx context.Context, limit time.Duration) (time.Duration, error) {
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-f.Runtime.FirstPoll():
		return time.Since(f.Started), nil
	case <-f.exited:
		return 0, fmt.Errorf("function exited during start-up (%v): %s", f.err, lastOutputLine(f.Output()))
	case <-t.C:
		return 0, fmt.Errorf("function did not ask for an event within %s", limit)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Invoke hands the function payload with timeout as its remaining time and
// waits for its answer; it gives up when the process exits or ctx ends.
func (f *Function) Invoke(ctx context.Context, payload []byte, timeout time.Duration) (Invocation, error) {
	ictx, cancel := context.WithTimeout(ctx, timeout+10*time.Second)
	defer cancel()
	go func() {
		select {
		case <-f.exited:
			cancel()
		case <-ictx.Done():
		}
	}()
	res, err := f.Runtime.Invoke(ictx, payload, timeout)
	if err != nil {
		return res, fmt.Errorf("invoke: %w: %s", err, lastOutputLine(f.Output()))
	}
	return res, nil
}

// PeakRSSKiB is VmHWM of the running process (/proc/PID/status): the peak
// resident set of its own image since exec, in KiB. Read it before Stop.
func (f *Function) PeakRSSKiB() (int64, error) {
	return procStatusKiB(f.cmd.Process.Pid, "VmHWM")
}

// CPUTime is the user and system CPU time the running process has used.
func (f *Function) CPUTime() (time.Duration, error) {
	return procCPUTime(f.cmd.Process.Pid)
}

// Stop sends SIGTERM to the process group, SIGKILL after stopLimit, waits,
// and stops the Runtime API. It may be called more than once.
func (f *Function) Stop() {
	f.once.Do(func() {
		select {
		case <-f.exited:
		default:
			_ = syscall.Kill(-f.cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-f.exited:
			case <-time.After(stopLimit):
				_ = syscall.Kill(-f.cmd.Process.Pid, syscall.SIGKILL)
				<-f.exited
			}
		}
		f.Runtime.Close()
	})
}

// MaxrssKiB is rusage maxrss of the exited process (after Stop). On Linux it
// is never below the parent's RSS at fork: exec folds the high-water mark of
// the image it leaves into it (golang/go#32054); PeakRSSKiB is the function's own.
func (f *Function) MaxrssKiB() int64 {
	if f.cmd.ProcessState == nil {
		return 0
	}
	if ru, ok := f.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss
	}
	return 0
}

// ColdStart starts bin once and returns the time from just before the
// process starts to its first request for an event, then stops it.
func ColdStart(ctx context.Context, bin, dir string, env []string, limit time.Duration) (time.Duration, error) {
	f, err := StartFunction(bin, dir, env)
	if err != nil {
		return 0, err
	}
	defer f.Stop()
	return f.Ready(ctx, limit)
}

// ColdStarts takes n cold starts of bin (ColdStart), stopping at the first
// that fails.
func ColdStarts(ctx context.Context, bin, dir string, env []string, n int, limit time.Duration) ([]time.Duration, error) {
	var ds []time.Duration
	for range n {
		d, err := ColdStart(ctx, bin, dir, env, limit)
		if err != nil {
			return ds, err
		}
		ds = append(ds, d)
	}
	return ds, nil
}

// SpawnTime is the median time to start and reap /usr/bin/true (or the true
// on PATH) n times: what the operating system alone costs a process start,
// for scale next to a cold start. 0 when it cannot be measured.
func SpawnTime(ctx context.Context, n int) time.Duration {
	bin, err := exec.LookPath("true")
	if err != nil {
		return 0
	}
	var ds []time.Duration
	for range n {
		start := time.Now()
		if exec.CommandContext(ctx, bin).Run() != nil {
			return 0
		}
		ds = append(ds, time.Since(start))
	}
	return Median(ds)
}

// Measured is one invocation of a function in its own process.
type Measured struct {
	Invocation
	// Took is from handing the event over to the answer.
	Took time.Duration
	// HWMKiB is VmHWM read after the answer: the peak RSS of the function's
	// own image; MaxrssKiB is wait4's, never below the parent's (see MaxrssKiB).
	HWMKiB, MaxrssKiB int64
	// CPU is the process's CPU time, start-up included.
	CPU time.Duration
	// Output is what the function wrote.
	Output []byte
}

// InvokeOnce starts bin, waits for it to be ready (within readyLimit), hands
// it payload with timeout as its remaining time, measures it and stops it. An
// invocation answered with a function error is returned with a nil error:
// res.Error tells.
func InvokeOnce(ctx context.Context, bin, dir string, env []string, payload []byte, readyLimit, timeout time.Duration) (m Measured, err error) {
	f, err := StartFunction(bin, dir, env)
	if err != nil {
		return m, err
	}
	defer func() { f.Stop(); m.Output = f.Output() }()
	if _, err = f.Ready(ctx, readyLimit); err != nil {
		return m, err
	}
	start := time.Now()
	m.Invocation, err = f.Invoke(ctx, payload, timeout)
	m.Took = time.Since(start)
	if err != nil {
		return m, err
	}
	// The function is alive again, waiting for its next event.
	m.CPU, _ = f.CPUTime()
	m.HWMKiB, err = f.PeakRSSKiB()
	f.Stop()
	m.MaxrssKiB = f.MaxrssKiB()
	return m, err
}

// Median of ds; 0 for none.
func Median(ds []time.Duration) time.Duration {
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

// procStatusKiB reads a "Name:   N kB" field of /proc/PID/status.
func procStatusKiB(pid int, name string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return parseStatusKiB(b, name)
}

func parseStatusKiB(status []byte, name string) (int64, error) {
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			var kib int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kib); err != nil {
				return 0, fmt.Errorf("%s %q: %w", name, strings.TrimSpace(v), err)
			}
			return kib, nil
		}
	}
	return 0, errors.New("no " + name + " in /proc status")
}

// lastOutputLine is the last non-empty line of a process's output, shortened.
func lastOutputLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "(no output)"
	}
	s = s[strings.LastIndexByte(s, '\n')+1:]
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
