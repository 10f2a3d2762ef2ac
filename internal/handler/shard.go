package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/shard"
)

// Sharder runs the steps of a sharded run (a *shard.Runner).
type Sharder interface {
	Plan(ctx context.Context) (*shard.Planned, error)
	Check(ctx context.Context, run string, accounts []string) (*shard.Checked, error)
	Notify(ctx context.Context, run string, batches []shard.BatchRef) (*drift.Report, error)
}

var _ Sharder = (*shard.Runner)(nil)

// WithSharder returns h answering the shard payloads with s.
func (h *Handler) WithSharder(s Sharder) *Handler {
	c := *h
	c.sharder = s
	return &c
}

// Handle is the function's handler: a shard payload ({"shard": ...}, from
// the state machine of a sharded run) runs that step; anything else is
// Invoke's. A shard payload that is not valid is refused with ErrBadEvent,
// as is any shard payload when the function has no Sharder.
func (h *Handler) Handle(ctx context.Context, payload json.RawMessage) (any, error) {
	var keys map[string]json.RawMessage
	if json.Unmarshal(bytes.TrimSpace(payload), &keys) != nil || !shard.IsRequest(keys) {
		return h.Invoke(ctx, payload)
	}
	req, err := shard.Parse(payload)
	if err == nil && h.sharder == nil {
		err = shard.ErrNotSharded
	}
	if err != nil {
		h.logger.ErrorContext(ctx, "invocation refused", "error", err.Error())
		return nil, fmt.Errorf("%w: %w", ErrBadEvent, err)
	}
	switch req.Step {
	case shard.StepPlan:
		p, err := h.sharder.Plan(ctx)
		if err != nil {
			h.logger.ErrorContext(ctx, "plan failed", "error", err.Error())
			return nil, err
		}
		return p, nil
	case shard.StepCheck:
		c, err := h.sharder.Check(ctx, req.Run, req.Accounts)
		if err != nil {
			h.logger.ErrorContext(ctx, "batch check failed: the Map retries it", "run", req.Run, "error", err.Error())
			return nil, err
		}
		return c, nil
	default:
		rep, err := h.sharder.Notify(ctx, req.Run, req.Batches)
		if rep != nil {
			if werr := WriteMetrics(h.metrics, h.functionName, rep, shard.Sent(rep)); werr != nil {
				h.logger.WarnContext(ctx, "metrics not written", "error", werr.Error())
			}
			Bound(rep, shard.DefaultMaxReportBytes)
		}
		if err != nil {
			h.logger.ErrorContext(ctx, "sharded run failed", "run", req.Run, "error", err.Error())
			return rep, fmt.Errorf("drift check: %w", err)
		}
		return rep, nil
	}
}
