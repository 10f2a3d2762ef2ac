package testpeer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Runtime is a local implementation of the AWS Lambda Runtime API, enough to
// drive a real function binary (`bootstrap`) with AWS_LAMBDA_RUNTIME_API set to
// its Addr: it hands out events on /next and collects responses and errors.
type Runtime struct {
	// Addr is host:port for AWS_LAMBDA_RUNTIME_API.
	Addr string
	// FunctionARN is sent as Lambda-Runtime-Invoked-Function-Arn.
	FunctionARN string

	srv     *http.Server
	events  chan *invocation
	mu      sync.Mutex
	pending map[string]*invocation
	seq     atomic.Int64
	nexts   atomic.Int64
	polled  chan struct{}
	once    sync.Once
	initErr chan []byte
	quit    chan struct{}
}

type invocation struct {
	id       string
	payload  []byte
	deadline time.Time
	done     chan Invocation
}

// MaxResponseBytes is Lambda's limit on a synchronous invocation's
// response payload: a larger response fails the invocation with
// ResponseSizeTooLarge, as Lambda does.
const MaxResponseBytes = 6_291_556

// ResponseSizeTooLarge is the error type of an invocation whose response
// was over MaxResponseBytes.
const ResponseSizeTooLarge = "Function.ResponseSizeTooLarge"

// Invocation is how a function answered one event.
type Invocation struct {
	// Response is the function's result, when it succeeded.
	Response []byte
	// Error is the function's error document, when it failed.
	Error *FunctionError
}

// FunctionError is the error document a runtime posts.
type FunctionError struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorType    string `json:"errorType"`
}

// StartRuntime listens on a free port of 127.0.0.1.
func StartRuntime() (*Runtime, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("runtime API listen: %w", err)
	}
	r := &Runtime{
		Addr:        ln.Addr().String(),
		FunctionARN: "arn:aws:lambda:" + Region + ":" + AccountID + ":function:drift-check",
		events:      make(chan *invocation, 16),
		pending:     map[string]*invocation{},
		polled:      make(chan struct{}),
		initErr:     make(chan []byte, 1),
		quit:        make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", r.next)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", r.answer(false))
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", r.answer(true))
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		select {
		case r.initErr <- b:
		default:
		}
		w.WriteHeader(http.StatusAccepted)
	})
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// FirstPoll is closed when the function first asks for an event: its cold
// start is over.
func (r *Runtime) FirstPoll() <-chan struct{} { return r.polled }

func (r *Runtime) next(w http.ResponseWriter, req *http.Request) {
	r.nexts.Add(1)
	r.once.Do(func() { close(r.polled) })
	var inv *invocation
	select {
	case inv = <-r.events:
	case <-req.Context().Done():
		return
	case <-r.quit:
		http.Error(w, "runtime shutting down", http.StatusGone)
		return
	}
	r.mu.Lock()
	r.pending[inv.id] = inv
	r.mu.Unlock()
	h := w.Header()
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", r.FunctionARN)
	h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0")
	h.Set("Content-Type", "application/json")
	_, _ = w.Write(inv.payload)
}

func (r *Runtime) answer(isErr bool) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		id := req.PathValue("id")
		// aws-lambda-go streams the body with chunked encoding: read to EOF.
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		inv := r.pending[id]
		delete(r.pending, id)
		r.mu.Unlock()
		if inv == nil {
			http.Error(w, "unknown request id "+id, http.StatusBadRequest)
			return
		}
		res := Invocation{}
		if !isErr && len(body) > MaxResponseBytes {
			// Lambda refuses the response and fails the invocation.
			res.Error = &FunctionError{ErrorType: ResponseSizeTooLarge,
				ErrorMessage: fmt.Sprintf("Response payload size (%d bytes) exceeded maximum allowed payload size (%d bytes).", len(body), MaxResponseBytes)}
			inv.done <- res
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			_ = json.NewEncoder(w).Encode(res.Error)
			return
		}
		if isErr {
			res.Error = &FunctionError{}
			if err := json.Unmarshal(body, res.Error); err != nil {
				res.Error.ErrorMessage = string(body)
			}
		} else {
			res.Response = body
		}
		inv.done <- res
		w.WriteHeader(http.StatusAccepted)
	}
}

// Invoke hands payload to the function with timeout as its remaining time and
// waits for its answer (or ctx).
func (r *Runtime) Invoke(ctx context.Context, payload []byte, timeout time.Duration) (Invocation, error) {
	inv := &invocation{
		id:       fmt.Sprintf("req-%d", r.seq.Add(1)),
		payload:  payload,
		deadline: time.Now().Add(timeout),
		done:     make(chan Invocation, 1),
	}
	select {
	case r.events <- inv:
	case <-ctx.Done():
		return Invocation{}, ctx.Err()
	}
	select {
	case res := <-inv.done:
		return res, nil
	case <-ctx.Done():
		return Invocation{}, fmt.Errorf("invocation %s: no answer: %w", inv.id, ctx.Err())
	}
}

// InitError returns the init error the function reported, if any.
func (r *Runtime) InitError() ([]byte, bool) {
	select {
	case b := <-r.initErr:
		return b, true
	default:
		return nil, false
	}
}

// Polls is how many times the function asked for an event.
func (r *Runtime) Polls() int { return int(r.nexts.Load()) }

// Close stops the server.
func (r *Runtime) Close() {
	select {
	case <-r.quit:
	default:
		close(r.quit)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		_ = r.srv.Close()
	}
	_ = r.srv.Close()
}

// ErrorMessage returns the error message of a failed invocation, "" on success.
func (i Invocation) ErrorMessage() string {
	if i.Error == nil {
		return ""
	}
	return strings.TrimSpace(i.Error.ErrorMessage)
}
