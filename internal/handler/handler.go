// Package handler is the Lambda function's invocation logic: it reads the
// event, runs the engine, sends the report's alerts through the notify
// pipeline, writes metrics and returns the report.
package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
)

// Runner runs the drift check (a *drift.Engine).
type Runner interface {
	Run(ctx context.Context, req drift.Request) (*drift.Report, error)
}

// Notifier sends a report's alerts and returns the results sent, by
// transition (an *alert.Pipeline).
type Notifier interface {
	Run(ctx context.Context, rep *drift.Report) (map[alert.Transition]int, error)
}

// Handler answers invocations.
type Handler struct {
	runner       Runner
	notifier     Notifier
	logger       *slog.Logger
	metrics      io.Writer
	functionName string
	mode         config.Mode
	sharder      Sharder
}

// New returns a Handler that runs runner and sends the report's alerts
// through notifier (nil: none). Metrics (CloudWatch Embedded Metric Format lines) go
// to metrics, labelled with functionName, the function's name
// (AWS_LAMBDA_FUNCTION_NAME), which also recognises the function's own
// thumbprint updates in CloudTrail events. mode is the default mode, which
// the empty report of an event that checks nothing shows (empty: the
// config default).
func New(runner Runner, notifier Notifier, logger *slog.Logger, metrics io.Writer, functionName string, mode config.Mode) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if metrics == nil {
		metrics = io.Discard
	}
	if mode == "" {
		mode = config.Default().Mode
	}
	return &Handler{runner: runner, notifier: notifier, logger: logger, metrics: metrics, functionName: functionName, mode: mode}
}

// ErrBadEvent is returned (wrapped) for a payload that is neither an
// EventBridge event nor a valid manual payload, or a CloudTrail event whose
// detail cannot be read; nothing is touched.
var ErrBadEvent = errors.New("bad invocation payload")

// Invoke handles one invocation and returns the report. It returns an error
// (after every provider was processed) when listing failed, a publish failed or
// an update failed, so Lambda retries and its failure destination fires.
//
// An event that checks nothing (Event.Ignore) logs one line saying why and
// returns an empty report: nothing is listed, probed, written or published.
func (h *Handler) Invoke(ctx context.Context, payload json.RawMessage) (*drift.Report, error) {
	ev, err := ParseEvent(payload, h.functionName)
	if err != nil {
		h.logger.ErrorContext(ctx, "invocation refused", "error", err.Error())
		return nil, err
	}
	if ev.Ignore != "" {
		level := slog.LevelInfo
		if ev.Ignore != IgnoreOwnUpdate && ev.Ignore != IgnoreCallFailed {
			// The rule or the event is not what the template sets up.
			level = slog.LevelWarn
		}
		h.logger.LogAttrs(ctx, level, "event not checked", append([]slog.Attr{
			slog.String("reason", string(ev.Ignore)), slog.String("detail", ev.Detail)}, ev.Call.attrs()...)...)
		return EmptyReport(h.mode), nil
	}
	if ev.Call != nil {
		h.logger.LogAttrs(ctx, slog.LevelInfo, "checking the provider of a CloudTrail event", ev.Call.attrs()...)
	}
	rep, err := h.runner.Run(ctx, ev.Request)
	var sent map[alert.Transition]int
	if rep != nil && h.notifier != nil {
		var nerr error
		sent, nerr = h.notifier.Run(ctx, rep)
		err = errors.Join(err, nerr)
	}
	if rep != nil {
		if werr := WriteMetrics(h.metrics, h.functionName, rep, sent); werr != nil {
			h.logger.WarnContext(ctx, "metrics not written", "error", werr.Error())
		}
		h.logger.InfoContext(ctx, "run finished", "mode", string(rep.Mode), "checked", rep.Checked, "counts", rep.Counts)
		Bound(rep, MaxResponseBytes)
		if rep.ResultsOmitted > 0 || rep.AccountsOmitted > 0 {
			h.logger.WarnContext(ctx, "results left out of the response to stay under Lambda's 6 MB (counts has them; omitted_groups summarises the problems among them)",
				"results_omitted", rep.ResultsOmitted, "omitted_groups", rep.OmittedGroups, "accounts_omitted", rep.AccountsOmitted,
				"max_response_bytes", MaxResponseBytes)
		}
	}
	if err != nil {
		h.logger.ErrorContext(ctx, "run failed", "error", err.Error())
		return rep, fmt.Errorf("drift check: %w", err)
	}
	return rep, nil
}

// EmptyReport is the report of a run that checked nothing: every count zero.
func EmptyReport(mode config.Mode) *drift.Report {
	counts := make(map[drift.Outcome]int, len(drift.Outcomes))
	for _, o := range drift.Outcomes {
		counts[o] = 0
	}
	return &drift.Report{Mode: mode, Counts: counts, Results: []drift.Result{}}
}

// attrs are the log fields of a CloudTrail call; none for nil.
func (c *Call) attrs() []slog.Attr {
	if c == nil {
		return nil
	}
	attrs := []slog.Attr{
		slog.String("event_name", c.EventName),
		slog.String("event_id", c.EventID),
		slog.String("account_id", c.Account),
		slog.String("provider_arn", c.ProviderARN),
		slog.String("principal", c.Principal),
		slog.String("session", c.Session),
	}
	if c.Writer != nil {
		attrs = append(attrs, slog.String("writer_tool", string(c.Writer.Tool)))
	}
	return attrs
}
