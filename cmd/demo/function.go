package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

// The function's name is the role session of events/cloudtrail-own-update.json
// (Lambda names the execution role's session after the function), so that
// sample is the function's own update.
const (
	functionName  = "thumbprint-drift-DriftCheckFunction-Ab3dEf6hIj9k"
	invokeTimeout = 15 * time.Second // the function's remaining time, as Lambda's timeout
)

// function is the real function binary running as Lambda runs it: one warm
// process polling a local Runtime API, answering the scenes' invocations in
// turn as one execution environment answers a schedule and events.
type function struct {
	rt    *testpeer.Runtime
	alive context.Context // ends when the process exits
	stop  func()          // ends the process group (SIGTERM, SIGKILL 3s later) and the Runtime API
	log   *os.File        // stdout and stderr: a file, so every line is in it once the function answers
	read  int64           // how much of log earlier invocations took
}

// startFunction starts bin in dir and waits for its first request for an
// event (its cold start). Its whole environment is moto's endpoint and
// credentials, empty AWS config files (a user's profile cannot leak in),
// Lambda's own variables and settings; nothing is inherited but PATH.
func startFunction(ctx context.Context, bin, dir string, m *testpeer.Moto, settings []string) (*function, error) {
	empty := filepath.Join(dir, "aws-config")
	log, err := os.Create(filepath.Join(dir, "function.log"))
	if err == nil {
		err = os.WriteFile(empty, nil, 0o600)
	}
	if err != nil {
		return nil, fmt.Errorf("function files: %w", err)
	}
	env := append(append([]string{"PATH=" + os.Getenv("PATH")}, m.Env()...), "AWS_CONFIG_FILE="+empty,
		"AWS_SHARED_CREDENTIALS_FILE="+empty, "AWS_LAMBDA_FUNCTION_NAME="+functionName, "AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128", "AWS_LAMBDA_LOG_FORMAT=JSON")
	env = append(env, settings...)
	rt, err := testpeer.StartRuntime()
	if err != nil {
		log.Close()
		return nil, err
	}
	procCtx, kill := context.WithCancel(context.Background())
	cmd := exec.CommandContext(procCtx, bin)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = append(env, "AWS_LAMBDA_RUNTIME_API="+rt.Addr), dir, log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 3 * time.Second
	alive, died := context.WithCancel(context.Background())
	exited := make(chan struct{})
	f := &function{rt: rt, alive: alive, log: log, stop: func() { kill(); <-exited; died(); rt.Close(); log.Close() }}
	if err := cmd.Start(); err != nil {
		close(exited)
		f.stop()
		return nil, fmt.Errorf("start function: %w", err)
	}
	go func() { _ = cmd.Wait(); died(); close(exited) }()
	select {
	case <-rt.FirstPoll():
		return f, nil
	case <-alive.Done():
		err = fmt.Errorf("function exited during start-up:\n%s", f.logs())
	case <-time.After(invokeTimeout):
		err = fmt.Errorf("function did not ask for an event within %s", invokeTimeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	f.stop()
	return nil, err
}

// logs returns what the function wrote since the last call.
func (f *function) logs() []byte {
	b, _ := io.ReadAll(io.NewSectionReader(f.log, f.read, 1<<40))
	f.read += int64(len(b))
	return b
}

// invoke hands the function payload and returns its report and what it
// logged meanwhile; a function error or an exit is an error.
func (f *function) invoke(ctx context.Context, payload []byte) (*drift.Report, []byte, error) {
	ictx, cancel := context.WithTimeout(ctx, invokeTimeout+5*time.Second)
	defer cancel()
	defer context.AfterFunc(f.alive, cancel)()
	res, err := f.rt.Invoke(ictx, payload, invokeTimeout)
	logs := f.logs()
	switch {
	case ctx.Err() != nil:
		return nil, nil, ctx.Err()
	case err != nil:
		return nil, nil, fmt.Errorf("invoke function: %w\n%s", err, logs)
	case res.Error != nil:
		return nil, nil, fmt.Errorf("function returned an error (%s): %s\n%s", res.Error.ErrorType, res.ErrorMessage(), logs)
	}
	var rep *drift.Report
	if err := json.Unmarshal(res.Response, &rep); err != nil || rep == nil {
		return nil, nil, fmt.Errorf("function response is not a report: %v: %s", err, res.Response)
	}
	return rep, logs, nil
}
