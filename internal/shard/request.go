// Package shard runs the steps of a sharded run (DESIGN.md "Past one
// invocation"): the state machine invokes the function with {"shard": "plan"}
// (list the organisation's accounts, write them to S3 as batches), then per
// batch {"shard": "check", "run": ..., "accounts": [...]} (check the batch,
// write its results under the run's prefix), then {"shard": "notify", "run":
// ..., "batches": [...]} (read every batch's results and return the run's
// report). This package holds the payloads, their validation, the objects in
// S3 and the three steps; the engine and the notify pipeline do the work.
package shard

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
)

// Step is a sharded run's step.
type Step string

// The steps, in order.
const (
	StepPlan   Step = "plan"
	StepCheck  Step = "check"
	StepNotify Step = "notify"
)

// ErrBadRequest is returned (wrapped) for a shard payload that is not exactly
// one of the three; nothing is read, written or checked.
var ErrBadRequest = errors.New("bad shard payload")

// MaxBatches bounds the batches of one run: the Map's output (one object key
// of about 70 bytes per batch) is notify's input, and Step Functions passes at
// most 256 KiB between states; 2,000 keys are about 140 KB.
const MaxBatches = 2000

// Request is a validated shard payload.
type Request struct {
	Step Step
	// Run is the run's id (check and notify), from plan's answer.
	Run string
	// Accounts is check's batch: 12-digit account ids, each once.
	Accounts []string
	// Batches is notify's input: the object key of each batch's results, as
	// the Map returned them.
	Batches []BatchRef
}

// BatchRef is one batch's answer as the Map keeps it.
type BatchRef struct {
	Key string `json:"key"`
}

type wire struct {
	Shard    string      `json:"shard"`
	Run      *string     `json:"run"`
	Accounts *[]string   `json:"accounts"`
	Batches  *[]BatchRef `json:"batches"`
}

var (
	runID     = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$`)
	accountID = regexp.MustCompile(`^[0-9]{12}$`)
)

// IsRequest reports whether a JSON object payload is a shard payload (it has
// a "shard" key); Parse then says whether it is a valid one.
func IsRequest(keys map[string]json.RawMessage) bool {
	_, ok := keys["shard"]
	return ok
}

// Parse reads a shard payload: {"shard": "plan"}, {"shard": "check", "run":
// ID, "accounts": [12-digit ids, 1 to config.MaxShardSize, each once]} or
// {"shard": "notify", "run": ID, "batches": [{"key": KEY}, 1 to MaxBatches,
// each key one of the run's batch results]}. Any other key, a key of another
// step, a missing one, or trailing data is refused with ErrBadRequest.
func Parse(payload []byte) (Request, error) {
	var w wire
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Request{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if dec.More() {
		return Request{}, fmt.Errorf("%w: data after the JSON object", ErrBadRequest)
	}
	bad := func(format string, args ...any) (Request, error) {
		return Request{}, fmt.Errorf("%w: %s: %s", ErrBadRequest, w.Shard, fmt.Sprintf(format, args...))
	}
	req := Request{Step: Step(w.Shard)}
	switch req.Step {
	case StepPlan:
		if w.Run != nil || w.Accounts != nil || w.Batches != nil {
			return bad(`takes no other key: want {"shard": "plan"}`)
		}
		return req, nil
	case StepCheck:
		if w.Batches != nil {
			return bad(`"batches" belongs to notify`)
		}
		if w.Accounts == nil {
			return bad(`want "accounts": [account ids]`)
		}
		req.Accounts = *w.Accounts
		if n := len(req.Accounts); n == 0 || n > config.MaxShardSize {
			return bad("%d accounts: want 1 to %d", n, config.MaxShardSize)
		}
		seen := make(map[string]bool, len(req.Accounts))
		for _, id := range req.Accounts {
			if !accountID.MatchString(id) {
				return bad("account %q is not a 12-digit account id", id)
			}
			if seen[id] {
				return bad("account %s appears twice", id)
			}
			seen[id] = true
		}
	case StepNotify:
		if w.Accounts != nil {
			return bad(`"accounts" belongs to check`)
		}
		if w.Batches == nil {
			return bad(`want "batches": [{"key": ...}] (the Map's results)`)
		}
		req.Batches = *w.Batches
		if n := len(req.Batches); n == 0 || n > MaxBatches {
			return bad("%d batches: want 1 to %d", n, MaxBatches)
		}
	default:
		return Request{}, fmt.Errorf("%w: shard %q: want plan, check or notify", ErrBadRequest, w.Shard)
	}
	if w.Run == nil || !runID.MatchString(*w.Run) {
		got := "none"
		if w.Run != nil {
			got = fmt.Sprintf("%q", *w.Run)
		}
		return bad("run %s: want the id plan returned (like 20261207T031500Z-0a1b2c3d)", got)
	}
	req.Run = *w.Run
	seen := make(map[string]bool, len(req.Batches))
	for _, b := range req.Batches {
		if !strings.HasPrefix(b.Key, resultPrefix(req.Run)) || !resultKey.MatchString(b.Key) {
			return bad("batch key %q is not a batch result of run %s", b.Key, req.Run)
		}
		if seen[b.Key] {
			return bad("batch key %q appears twice", b.Key)
		}
		seen[b.Key] = true
	}
	return req, nil
}

// Object keys: everything of a run is under runs/<run>/ (the bucket's
// objects expire after a day).
func runPrefix(run string) string    { return "runs/" + run + "/" }
func batchesKey(run string) string   { return runPrefix(run) + "batches.json" }
func resultPrefix(run string) string { return runPrefix(run) + "checked-" }

var resultKey = regexp.MustCompile(`^runs/[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}/checked-[0-9a-f]{16}\.json$`)
