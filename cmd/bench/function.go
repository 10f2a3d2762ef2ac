package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

// Bounds of the function measurements.
const (
	buildLimit     = 5 * time.Minute  // one go build (the first compiles the SDK: ~40 s)
	coldStartLimit = 10 * time.Second // start to first next request
	invokeLimit    = 2 * time.Minute  // a one-account invocation's remaining time
)

// scheduledEvent is an EventBridge schedule event, as events/scheduled.json.
const scheduledEvent = `{"version":"0","id":"89d1a02d-5ec7-412e-82f5-13505f849b41","detail-type":"Scheduled Event","source":"aws.events","account":"123456789012","time":"2025-01-15T12:00:00Z","region":"us-east-1","resources":["arn:aws:events:us-east-1:123456789012:rule/bench"],"detail":{}}`

// functionResult is what the bench measured of the function binary.
type functionResult struct {
	BootstrapBytes int64 // stripped linux/arm64 bootstrap
	ColdStarts     []time.Duration
	SpawnFloor     time.Duration // median start of a trivial binary, for scale
	RSS            []invocation  // one per invocation of a one-account load
	Problems       []string
}

// invocation is one scheduled invocation of the function in its own process.
type invocation struct {
	Load      string
	HWMKiB    int64 // VmHWM, read after the invocation: the peak RSS of the function's own image
	MaxrssKiB int64 // rusage maxrss from wait4, never below the bench's own RSS (golang/go#32054)
	CPU       time.Duration
	Took      time.Duration
	Bytes     int // of the response
	Report    *drift.Report
}

// MaxRSSKiB is the largest peak RSS (VmHWM) over the invocations, 0 for none.
func (f functionResult) MaxRSSKiB() int64 {
	var m int64
	for _, s := range f.RSS {
		m = max(m, s.HWMKiB)
	}
	return m
}

// buildFunction builds the deployed bootstrap, for its size, and the same
// code for this machine with the same flags, for the runs.
func (b *bench) buildFunction(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, buildLimit)
	defer cancel()
	root, err := testpeer.ModuleRoot(ctx)
	if errors.Is(err, testpeer.ErrNoModule) {
		return errors.New("run the bench inside the repository (make bench)")
	}
	if err != nil {
		return err
	}
	if arm, err := testpeer.BuildBootstrap(ctx, root, filepath.Join(b.dir, "arm64")); err != nil {
		b.res.fn.Problems = append(b.res.fn.Problems, err.Error())
	} else if st, err := os.Stat(arm); err == nil {
		b.res.fn.BootstrapBytes = st.Size()
	}
	bin := filepath.Join(b.dir, "bootstrap-host")
	if err := testpeer.BuildFunction(ctx, root, bin, "-trimpath", "-ldflags=-s -w"); err != nil {
		b.res.fn.Problems = append(b.res.fn.Problems, err.Error())
	} else {
		b.hostBin = bin
	}
	return ctx.Err()
}

// invoke starts the function with env, hands it one scheduled event with
// timeout as its remaining time, reads its peak RSS and CPU, and stops it.
func (b *bench) invoke(ctx context.Context, env []string, timeout time.Duration) (invocation, error) {
	var inv invocation
	f, err := testpeer.StartFunction(b.hostBin, b.dir, env)
	if err != nil {
		return inv, err
	}
	defer func() {
		f.Stop()
		if b.o.functionLog != "" {
			if err := appendFile(b.o.functionLog, f.Output()); err != nil {
				b.res.notes = append(b.res.notes, err.Error())
			}
		}
	}()
	if _, err := f.Ready(ctx, coldStartLimit); err != nil {
		return inv, err
	}
	start := time.Now()
	res, err := f.Invoke(ctx, []byte(scheduledEvent), timeout)
	inv.Took = time.Since(start)
	if err != nil {
		return inv, err
	}
	// The function is alive again, waiting for its next event.
	inv.CPU, _ = f.CPUTime()
	hwm, hwmErr := f.PeakRSSKiB()
	f.Stop()
	inv.HWMKiB, inv.MaxrssKiB, inv.Bytes = hwm, f.MaxrssKiB(), len(res.Response)
	if res.Error != nil {
		return inv, fmt.Errorf("function failed (%s): %s", res.Error.ErrorType, res.ErrorMessage())
	}
	if hwmErr != nil {
		return inv, hwmErr
	}
	if err := json.Unmarshal(res.Response, &inv.Report); err != nil || inv.Report == nil {
		return inv, fmt.Errorf("function response is not a report: %v", err)
	}
	return inv, nil
}

// coldStarts times starts of the host binary to its first poll, and of a
// trivial binary for scale.
func (b *bench) coldStarts(ctx context.Context) error {
	env, err := b.functionEnv()
	if err != nil {
		return err
	}
	for range b.o.coldSamples {
		d, err := testpeer.ColdStart(ctx, b.hostBin, b.dir, env, coldStartLimit)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			b.res.fn.Problems = append(b.res.fn.Problems, "cold start: "+err.Error())
			break
		}
		b.res.fn.ColdStarts = append(b.res.fn.ColdStarts, d)
	}
	if bin, err := exec.LookPath("true"); err == nil {
		var ds []time.Duration
		for range b.o.coldSamples {
			start := time.Now()
			if exec.CommandContext(ctx, bin).Run() != nil {
				return ctx.Err()
			}
			ds = append(ds, time.Since(start))
		}
		b.res.fn.SpawnFloor = median(ds)
	}
	return nil
}

// median of ds; 0 for none.
func median(ds []time.Duration) time.Duration {
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

func appendFile(name string, b []byte) error {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("-function-log: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("-function-log: %w", err)
	}
	return f.Close()
}
