// Package handler is the Lambda function's invocation logic: it reads the
// event, runs the engine, writes metrics and returns the report.
package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
)

// Runner runs the drift check (a *drift.Engine).
type Runner interface {
	Run(ctx context.Context, req drift.Request) (*drift.Report, error)
}

// Handler answers invocations.
type Handler struct {
	runner       Runner
	logger       *slog.Logger
	metrics      io.Writer
	functionName string
}

// New returns a Handler. Metrics (CloudWatch Embedded Metric Format lines) go
// to metrics, labelled with functionName.
func New(runner Runner, logger *slog.Logger, metrics io.Writer, functionName string) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if metrics == nil {
		metrics = io.Discard
	}
	return &Handler{runner: runner, logger: logger, metrics: metrics, functionName: functionName}
}

// ErrBadEvent is returned (wrapped) for a payload that is neither an
// EventBridge event nor a valid manual payload; nothing is touched.
var ErrBadEvent = errors.New("bad invocation payload")

// manual is the manual payload: {"mode": "report", "providers": ["arn:..."]}.
type manual struct {
	Mode      string   `json:"mode"`
	Providers []string `json:"providers"`
}

// ParseEvent turns an invocation payload into a request. Any EventBridge event
// (it carries "source" and "detail-type") checks every provider in the default
// mode. Anything else must be a manual payload with only "mode" and
// "providers"; an unknown key is refused rather than guessed at, since a typo in
// "mode" would otherwise run the default mode, which may write.
func ParseEvent(payload []byte) (drift.Request, error) {
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return drift.Request{}, nil
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &probe); err != nil {
		return drift.Request{}, fmt.Errorf("%w: want a JSON object: %v", ErrBadEvent, err)
	}
	if _, ok := probe["detail-type"]; ok {
		if _, ok := probe["source"]; ok {
			return drift.Request{}, nil
		}
	}
	var m manual
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return drift.Request{}, fmt.Errorf(`%w: want an EventBridge event or {"mode": "report|alert|remediate", "providers": ["arn:..."]}: %v`, ErrBadEvent, err)
	}
	var req drift.Request
	if m.Mode != "" {
		mode, err := config.ParseMode(m.Mode)
		if err != nil {
			return drift.Request{}, fmt.Errorf("%w: %v", ErrBadEvent, err)
		}
		req.Mode = mode
	}
	for _, arn := range m.Providers {
		if !strings.HasPrefix(arn, "arn:") || !strings.Contains(arn, ":oidc-provider/") {
			return drift.Request{}, fmt.Errorf("%w: providers: %q is not an OIDC provider ARN", ErrBadEvent, arn)
		}
		req.Providers = append(req.Providers, arn)
	}
	return req, nil
}

// MaxResponseBytes bounds the report an invocation returns: Lambda refuses a
// response payload over 6,291,556 bytes; this leaves room for the runtime's
// encoding.
const MaxResponseBytes = 6_000_000

// Invoke handles one invocation and returns the report. It returns an error
// (after every provider was processed) when listing failed, a publish failed or
// an update failed, so Lambda retries and its failure destination fires.
func (h *Handler) Invoke(ctx context.Context, payload json.RawMessage) (*drift.Report, error) {
	req, err := ParseEvent(payload)
	if err != nil {
		h.logger.ErrorContext(ctx, "invocation refused", "error", err.Error())
		return nil, err
	}
	rep, err := h.runner.Run(ctx, req)
	if rep != nil {
		if werr := WriteMetrics(h.metrics, h.functionName, rep); werr != nil {
			h.logger.WarnContext(ctx, "metrics not written", "error", werr.Error())
		}
		h.logger.InfoContext(ctx, "run finished", "mode", string(rep.Mode), "checked", rep.Checked, "counts", rep.Counts)
		rep.Bound(MaxResponseBytes)
		if rep.ResultsOmitted > 0 {
			h.logger.WarnContext(ctx, "in-sync results left out of the response to stay under Lambda's 6 MB (counts has them)",
				"results_omitted", rep.ResultsOmitted, "max_response_bytes", MaxResponseBytes)
		}
	}
	if err != nil {
		h.logger.ErrorContext(ctx, "run failed", "error", err.Error())
		return rep, fmt.Errorf("drift check: %w", err)
	}
	return rep, nil
}
