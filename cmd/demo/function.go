package main

import (
	"context"
	"encoding/json"
	"fmt"
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

// function is the real function binary running as Lambda runs it
// (testpeer.Function): one warm process polling a local Runtime API,
// answering the scenes' invocations in turn as one execution environment
// answers a schedule and events.
type function struct {
	*testpeer.Function
	read int // how much of the output earlier invocations took
}

// startFunction starts bin in dir and waits for its first request for an
// event (its cold start). Its whole environment is testpeer.FunctionEnv's
// (moto's endpoint and credentials, empty AWS config files, Lambda's own
// variables) with the function's name and settings.
func startFunction(ctx context.Context, bin, dir string, m *testpeer.Moto, settings []string) (*function, error) {
	env, err := testpeer.FunctionEnv(m, dir, append([]string{"AWS_LAMBDA_FUNCTION_NAME=" + functionName}, settings...)...)
	if err != nil {
		return nil, err
	}
	f, err := testpeer.StartFunction(bin, dir, env)
	if err != nil {
		return nil, err
	}
	if _, err := f.Ready(ctx, invokeTimeout); err != nil {
		f.Stop()
		return nil, fmt.Errorf("%w:\n%s", err, f.Output())
	}
	return &function{Function: f}, nil
}

// stop ends the process group (SIGTERM, SIGKILL 3s later) and the Runtime API.
func (f *function) stop() { f.Stop() }

// logs returns what the function wrote since the last call.
func (f *function) logs() []byte {
	out := f.Output()
	b := out[min(f.read, len(out)):]
	f.read = len(out)
	return b
}

// invoke hands the function payload and returns its report and what it
// logged meanwhile; a function error or an exit is an error.
func (f *function) invoke(ctx context.Context, payload []byte) (*drift.Report, []byte, error) {
	res, err := f.Invoke(ctx, payload, invokeTimeout)
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
