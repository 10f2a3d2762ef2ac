package testpeer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

// Invoker answers one Lambda invocation: a *Function, or a *FunctionPool for
// concurrent invocations.
type Invoker interface {
	Invoke(ctx context.Context, payload []byte, timeout time.Duration) (Invocation, error)
}

var _ Invoker = (*Function)(nil)

// LambdaCall is one Lambda Invoke the StepFunctions front answered.
type LambdaCall struct {
	// Function is the FunctionName of the request (a name or an ARN).
	Function string
	// Payload is the event; Response the function's answer, or Error its
	// error document (the function's own, or one Intercept put in its place).
	Payload, Response []byte
	Error             *FunctionError
	// Took is from the request to the function's answer.
	Took time.Duration
}

// StepFunctions is a moto_server that executes state machines, with Lambda's
// Invoke answered by real function processes (shared/PEERS.md, "Step
// Functions on moto"). moto's engine calls every service it integrates with
// at http://localhost:$MOTO_PORT, so moto_server runs with MOTO_PORT pointing
// at a front proxy: the front answers POST /2015-03-31/functions/{name}/invocations
// by handing the payload to its Invoker through the Runtime API, and forwards
// every other request to moto. Point SDK clients at URL as well, so that the
// engine, the function and the test see the same world.
type StepFunctions struct {
	// Moto is the moto_server behind the front; Moto.Endpoint is moto itself.
	Moto *Moto
	// URL is the front's endpoint.
	URL string
	// FunctionTimeout is the remaining time each invocation is given (the
	// function's Timeout); 15 minutes unless set before the first invocation.
	FunctionTimeout time.Duration

	srv     *http.Server
	invoker Invoker

	mu        sync.Mutex
	calls     []LambdaCall
	intercept func(n int, c LambdaCall) *FunctionError
}

var invokePath = regexp.MustCompile(`^/2015-03-31/functions/([^/]+)/invocations$`)

// StartStepFunctions starts the front on a free loopback port, then
// moto_server with MOTO_PORT set to it, and turns moto's
// stepfunctions.execute_state_machine config on (before any state machine
// exists, as moto requires). invoker may be nil until SetInvoker. Stop both
// with Close.
func StartStepFunctions(ctx context.Context, invoker Invoker) (*StepFunctions, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("step functions front listen: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	m, err := startMoto(ctx, []string{"MOTO_PORT=" + strconv.Itoa(port)})
	if err != nil {
		ln.Close()
		return nil, err
	}
	target, _ := url.Parse(m.Endpoint)
	s := &StepFunctions{Moto: m, URL: "http://" + ln.Addr().String(), FunctionTimeout: 15 * time.Minute, invoker: invoker}
	rp := httputil.NewSingleHostReverseProxy(target)
	s.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if match := invokePath.FindStringSubmatch(r.URL.EscapedPath()); match != nil && r.Method == http.MethodPost {
			name, _ := url.PathUnescape(match[1])
			s.invoke(w, r, name)
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = s.srv.Serve(ln) }()
	if err := s.enableExecution(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *StepFunctions) enableExecution(ctx context.Context) error {
	body := []byte(`{"stepfunctions": {"execute_state_machine": true}}`)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.Moto.Endpoint+"/moto-api/config", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("moto config stepfunctions.execute_state_machine: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("moto config stepfunctions.execute_state_machine: status %d", resp.StatusCode)
	}
	return nil
}

// SetInvoker sets who answers the invocations from now on (the function
// processes often need the world moto holds, so they start after it).
func (s *StepFunctions) SetInvoker(invoker Invoker) {
	s.mu.Lock()
	s.invoker = invoker
	s.mu.Unlock()
}

// Intercept sets a rule seeing each invocation after the function answered
// (n counts the invocations before it): a non-nil error document replaces
// the answer, as when the function's process dies after its work and before
// its response. nil removes the rule.
func (s *StepFunctions) Intercept(rule func(n int, c LambdaCall) *FunctionError) {
	s.mu.Lock()
	s.intercept = rule
	s.mu.Unlock()
}

// Calls returns the Lambda invocations answered so far, in order of answer.
func (s *StepFunctions) Calls() []LambdaCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]LambdaCall(nil), s.calls...)
}

func (s *StepFunctions) invoke(w http.ResponseWriter, r *http.Request, name string) {
	payload, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	invoker := s.invoker
	s.mu.Unlock()
	if invoker == nil {
		http.Error(w, "no function to invoke yet", http.StatusServiceUnavailable)
		return
	}
	start := time.Now()
	inv, err := invoker.Invoke(r.Context(), payload, s.FunctionTimeout)
	if err != nil {
		// The service failed to run the function: Lambda answers 5xx
		// (Lambda.ServiceException in Step Functions).
		w.Header().Set("X-Amzn-ErrorType", "ServiceException")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_ = json.NewEncoder(w).Encode(map[string]string{"Type": "Service", "message": err.Error()})
		return
	}
	call := LambdaCall{Function: name, Payload: payload, Response: inv.Response, Error: inv.Error, Took: time.Since(start)}
	s.mu.Lock()
	if s.intercept != nil {
		if fe := s.intercept(len(s.calls), call); fe != nil {
			call.Response, call.Error = nil, fe
		}
	}
	s.calls = append(s.calls, call)
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amz-Executed-Version", "$LATEST")
	if call.Error != nil {
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(call.Error)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(call.Response)
}

// Close stops the front and moto_server.
func (s *StepFunctions) Close() {
	_ = s.srv.Close()
	s.Moto.Close()
}

// FunctionPool is several processes of one function binary, as Lambda runs
// concurrent invocations in separate execution environments: each Invoke
// takes a free process and waits for one when all are busy.
type FunctionPool struct {
	free chan *Function
	all  []*Function
}

var _ Invoker = (*FunctionPool)(nil)

// StartFunctionPool starts n processes of bin (StartFunction) and waits
// until each asks for its first event (within readyLimit).
func StartFunctionPool(ctx context.Context, bin, dir string, env []string, n int, readyLimit time.Duration) (*FunctionPool, error) {
	p := &FunctionPool{free: make(chan *Function, n)}
	for range n {
		f, err := StartFunction(bin, dir, env)
		if err != nil {
			p.Stop()
			return nil, err
		}
		p.all = append(p.all, f)
		if _, err := f.Ready(ctx, readyLimit); err != nil {
			p.Stop()
			return nil, err
		}
		p.free <- f
	}
	return p, nil
}

// Invoke hands payload to a free process.
func (p *FunctionPool) Invoke(ctx context.Context, payload []byte, timeout time.Duration) (Invocation, error) {
	var f *Function
	select {
	case f = <-p.free:
	case <-ctx.Done():
		return Invocation{}, ctx.Err()
	}
	defer func() { p.free <- f }()
	return f.Invoke(ctx, payload, timeout)
}

// Output is what every process wrote, one after another.
func (p *FunctionPool) Output() []byte {
	var b bytes.Buffer
	for _, f := range p.all {
		b.Write(f.Output())
	}
	return b.Bytes()
}

// Stop stops every process.
func (p *FunctionPool) Stop() {
	for _, f := range p.all {
		f.Stop()
	}
}

// InvokerFunc is a Go function as an Invoker, for tests of the front itself.
type InvokerFunc func(ctx context.Context, payload []byte, timeout time.Duration) (Invocation, error)

// Invoke calls f.
func (f InvokerFunc) Invoke(ctx context.Context, payload []byte, timeout time.Duration) (Invocation, error) {
	return f(ctx, payload, timeout)
}

// Execution is how one state machine execution ended.
type Execution struct {
	ARN    string
	Status sfntypes.ExecutionStatus
	// Output is the execution's output (SUCCEEDED); Error and Cause say why
	// it did not succeed.
	Output, Error, Cause string
	// Took is from StartExecution to the end seen.
	Took time.Duration
}

// RunStateMachine creates a state machine of definition (as roleARN), starts
// one execution with input, waits (within limit) until it ends, and deletes
// the state machine: moto executes one StartExecution per account and region
// (getmoto/moto#10077), so each run creates its own.
func RunStateMachine(ctx context.Context, api *sfn.Client, name, definition, roleARN, input string, limit time.Duration) (Execution, error) {
	sm, err := api.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{
		Name: aws.String(name), Definition: aws.String(definition), RoleArn: aws.String(roleARN),
	})
	if err != nil {
		return Execution{}, fmt.Errorf("create state machine %s: %w", name, err)
	}
	start := time.Now()
	ex, err := api.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: sm.StateMachineArn, Input: aws.String(input)})
	if err != nil {
		return Execution{}, fmt.Errorf("start execution of %s: %w", name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		d, err := api.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: ex.ExecutionArn})
		if err != nil {
			return Execution{}, fmt.Errorf("describe execution %s: %w", aws.ToString(ex.ExecutionArn), err)
		}
		if d.Status != sfntypes.ExecutionStatusRunning {
			if _, err := api.DeleteStateMachine(ctx, &sfn.DeleteStateMachineInput{StateMachineArn: sm.StateMachineArn}); err != nil {
				return Execution{}, fmt.Errorf("delete state machine %s: %w", name, err)
			}
			return Execution{ARN: aws.ToString(ex.ExecutionArn), Status: d.Status, Output: aws.ToString(d.Output),
				Error: aws.ToString(d.Error), Cause: aws.ToString(d.Cause), Took: time.Since(start)}, nil
		}
		select {
		case <-ctx.Done():
			return Execution{}, fmt.Errorf("execution %s still running after %s: %w", aws.ToString(ex.ExecutionArn), limit, ctx.Err())
		case <-tick.C:
		}
	}
}

// CompactSize is the length of the JSON document b without insignificant
// space (moto's engine writes state data with Python's spaced separators;
// Step Functions measures its 256 KiB on the data, not on that spacing);
// len(b) when b is not JSON.
func CompactSize(b []byte) int {
	var c bytes.Buffer
	if json.Compact(&c, b) != nil {
		return len(b)
	}
	return c.Len()
}
