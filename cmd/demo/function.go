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
	"strings"
	"syscall"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

// Function settings for the demo run.
const (
	functionName  = "thumbprint-drift-demo"
	probeTimeout  = "3s"
	driftMode     = "remediate"
	invokeTimeout = 15 * time.Second // the function's remaining time, as Lambda's timeout
	coldStartMax  = 15 * time.Second
)

// moduleRoot is the directory of the repository's go.mod, found by the go
// command from the working directory.
func moduleRoot(ctx context.Context) (string, error) {
	root, err := testpeer.ModuleRoot(ctx)
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return "", errors.New("go not found on PATH: the demo builds the function with it")
	case errors.Is(err, testpeer.ErrNoModule):
		return "", errors.New("run the demo inside the repository (make demo)")
	}
	return root, err
}

// buildFunction builds ./functions/drift-check for this machine into dir and
// returns the binary's path. It is the same code as the deployed linux/arm64
// bootstrap, built for the host so it runs here.
func buildFunction(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "bootstrap")
	if err := testpeer.BuildFunction(ctx, root, bin); err != nil {
		return "", err
	}
	return bin, nil
}

// invocation is what one run of the function produced.
type invocation struct {
	report *drift.Report
	raw    []byte // the function's response
	logs   []byte // everything the function wrote to stdout and stderr
	took   time.Duration
}

// functionEnv is the whole environment of the function process: moto's
// endpoint and credentials, the demo's trust store, the function's settings
// and Lambda's own variables. Nothing is inherited but PATH, so a user's AWS
// profile, proxy or endpoint variables cannot leak into the demo.
func (w *world) functionEnv(runtimeAPI string) ([]string, error) {
	awsConfig := filepath.Join(w.dir, "aws-config")
	if err := os.WriteFile(awsConfig, nil, 0o600); err != nil {
		return nil, fmt.Errorf("write empty AWS config: %w", err)
	}
	env := append([]string{"PATH=" + os.Getenv("PATH")}, w.moto.Env()...)
	return append(env,
		"AWS_CONFIG_FILE="+awsConfig,
		"AWS_SHARED_CREDENTIALS_FILE="+awsConfig,
		"AWS_LAMBDA_RUNTIME_API="+runtimeAPI,
		"AWS_LAMBDA_FUNCTION_NAME="+functionName,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
		"AWS_LAMBDA_LOG_FORMAT=JSON",
		"SNS_TOPIC_ARN="+w.alerts.TopicARN,
		"DRIFT_MODE="+driftMode,
		"PROBE_TIMEOUT="+probeTimeout,
		"SSL_CERT_FILE="+w.certFile,
		"SSL_CERT_DIR="+w.certDir,
	), nil
}

// invoke starts bin as a Lambda function behind a local Runtime API, hands it
// payload once, waits for its answer and stops it.
func (w *world) invoke(ctx context.Context, bin string, payload []byte) (*invocation, error) {
	rt, err := testpeer.StartRuntime()
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	env, err := w.functionEnv(rt.Addr)
	if err != nil {
		return nil, err
	}

	var logs bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.Dir = w.dir
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start function: %w", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}
	defer stop()

	// Cold start: the function asks for its first event, or dies trying.
	select {
	case <-rt.FirstPoll():
	case <-exited:
		return nil, fmt.Errorf("function exited during start-up (%v):\n%s", waitErr, tail(logs.Bytes()))
	case <-time.After(coldStartMax):
		return nil, fmt.Errorf("function did not ask for an event within %s", coldStartMax)
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	// The invocation, abandoned if the function dies mid-way.
	ictx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-exited:
			cancel()
		case <-ictx.Done():
		}
	}()
	start := time.Now()
	res, err := rt.Invoke(ictx, payload, invokeTimeout)
	took := time.Since(start)
	stop()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("invoke function: %w\n%s", err, tail(logs.Bytes()))
	}
	if res.Error != nil {
		return nil, fmt.Errorf("function returned an error (%s): %s\n%s", res.Error.ErrorType, res.ErrorMessage(), tail(logs.Bytes()))
	}
	inv := &invocation{raw: res.Response, logs: logs.Bytes(), took: took}
	if err := json.Unmarshal(res.Response, &inv.report); err != nil || inv.report == nil {
		return nil, fmt.Errorf("function response is not a report: %v: %s", err, res.Response)
	}
	return inv, nil
}

// tail returns the last lines of a process's output, for error messages.
func tail(b []byte) string {
	if len(bytes.TrimSpace(b)) == 0 {
		return "(the function wrote nothing)"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return strings.Join(lines, "\n")
}
