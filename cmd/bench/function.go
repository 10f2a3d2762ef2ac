package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

// Bounds of the function measurements.
const (
	buildLimit     = 5 * time.Minute  // one go build (the first compiles the SDK: ~40 s)
	coldStartLimit = 10 * time.Second // start to first next request
	invokeLimit    = 2 * time.Minute  // a one-account invocation's remaining time
	// scheduledEvent is an EventBridge schedule event, as events/scheduled.json.
	scheduledEvent = `{"version":"0","id":"89d1a02d-5ec7-412e-82f5-13505f849b41","detail-type":"Scheduled Event","source":"aws.events","account":"123456789012","time":"2025-01-15T12:00:00Z","region":"us-east-1","resources":["arn:aws:events:us-east-1:123456789012:rule/bench"],"detail":{}}`
)

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
	testpeer.Measured
	Load   string
	Report *drift.Report
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
// code for this machine with the same flags, for the runs; with -v also a
// profiling build of it (-tags benchprofile) for the organisation run.
func (b *bench) buildFunction(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, buildLimit)
	defer cancel()
	root, err := testpeer.ModuleRoot(ctx)
	if err != nil {
		return fmt.Errorf("run the bench inside the repository (make bench): %w", err)
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
	if b.o.verbose {
		// The same flags (a Go profile names its functions itself); the last -tags wins.
		prof := filepath.Join(b.profileDir(), "bootstrap-profiled")
		if err := testpeer.BuildFunction(ctx, root, prof, "-trimpath", "-ldflags=-s -w", "-tags=lambda.norpc,benchprofile"); err != nil {
			b.res.fn.Problems = append(b.res.fn.Problems, err.Error())
		} else {
			b.profBin = prof
		}
	}
	return ctx.Err()
}

// profileDir is where the profiles go: -profile-dir, or the bench's directory.
func (b *bench) profileDir() string {
	if b.o.profileDir != "" {
		return b.o.profileDir
	}
	return b.dir
}

// profile is the top entries of one run's CPU and allocation profiles.
type profile struct {
	CPU, Alloc []string // go tool pprof -top lines, header first
	Peak       []string // the live heap at its largest (inuse_space)
	Dir        string   // where the files are
	Err        string   // why they could not be read
}

// topEntries are the entries of each profile printed.
const topEntries = 12

// readProfile runs go tool pprof -top over the profiles the profiled
// bootstrap wrote with prefix.
func (b *bench) readProfile(ctx context.Context, prefix string) (profile, error) {
	p := profile{Dir: b.profileDir()}
	for _, s := range []struct {
		file string
		args []string
		into *[]string
	}{
		{"cpu.pprof", nil, &p.CPU},
		{"heap.pprof", []string{"-sample_index=alloc_space"}, &p.Alloc},
		{"peak.pprof", []string{"-sample_index=inuse_space"}, &p.Peak},
	} {
		args := append([]string{"tool", "pprof", "-top", fmt.Sprintf("-nodecount=%d", topEntries)}, s.args...)
		out, err := exec.CommandContext(ctx, "go", append(args, b.profBin, prefix+s.file)...).Output()
		if err != nil {
			return p, fmt.Errorf("go tool pprof %s: %w", s.file, err)
		}
		*s.into = strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	}
	return p, nil
}

// invoke runs the function once in a new process, its environment
// functionEnv(vars), with a scheduled event and timeout as its remaining
// time, and decodes its report.
func (b *bench) invoke(ctx context.Context, timeout time.Duration, vars ...string) (invocation, error) {
	return b.invokeBin(ctx, b.hostBin, timeout, vars...)
}

// invokeBin is invoke with the binary bin.
func (b *bench) invokeBin(ctx context.Context, bin string, timeout time.Duration, vars ...string) (invocation, error) {
	env, err := b.functionEnv(vars...)
	if err != nil {
		return invocation{}, err
	}
	m, err := testpeer.InvokeOnce(ctx, bin, b.dir, env, []byte(scheduledEvent), coldStartLimit, timeout)
	inv := invocation{Measured: m}
	switch {
	case err != nil:
		return inv, err
	case m.Error != nil:
		return inv, fmt.Errorf("function failed (%s): %s", m.Error.ErrorType, m.ErrorMessage())
	}
	if err := json.Unmarshal(m.Response, &inv.Report); err != nil || inv.Report == nil {
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
	if b.res.fn.ColdStarts, err = testpeer.ColdStarts(ctx, b.hostBin, b.dir, env, b.o.coldSamples, coldStartLimit); err != nil {
		b.res.fn.Problems = append(b.res.fn.Problems, "cold start: "+err.Error())
	}
	b.res.fn.SpawnFloor = testpeer.SpawnTime(ctx, b.o.coldSamples)
	return ctx.Err()
}
