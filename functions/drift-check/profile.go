//go:build benchprofile

// The bench's profiling build (go build -tags benchprofile, never deployed):
// with BENCH_PROFILE=<prefix> in the environment, the process profiles its
// CPU from start-up and, on SIGTERM (how the bench stops it), writes
// <prefix>cpu.pprof and <prefix>heap.pprof (allocations since start-up,
// sampled as runtime.MemProfileRate) and exits. It also writes
// <prefix>peak.pprof, the heap profile as of the collection that found the
// largest live heap: what the peak RSS holds.

package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"
)

func init() {
	prefix := os.Getenv("BENCH_PROFILE")
	if prefix == "" {
		return
	}
	cpu, err := os.Create(prefix + "cpu.pprof")
	if err == nil {
		err = pprof.StartCPUProfile(cpu)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchprofile:", err)
		os.Exit(1)
	}
	go watchPeak(prefix + "peak.pprof")
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	go func() {
		<-stop
		pprof.StopCPUProfile()
		code := 0
		if err := cpu.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "benchprofile:", err)
			code = 1
		}
		peakMu.Lock() // no peak profile half written
		runtime.GC()  // the heap profile as of the last collection
		if err := writeHeap(prefix + "heap.pprof"); err != nil {
			fmt.Fprintln(os.Stderr, "benchprofile:", err)
			code = 1
		}
		os.Exit(code)
	}()
}

func writeHeap(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// peakMu serialises the peak profile's writes with the exit.
var peakMu sync.Mutex

// watchPeak writes the heap profile to path each time a collection finds a
// live heap larger than any before (checked every 50 ms; the profile is as
// of the last collection, which is the one that measured it).
func watchPeak(path string) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var peak uint64
	for range time.Tick(50 * time.Millisecond) {
		metrics.Read(sample)
		if live := sample[0].Value.Uint64(); live > peak+peak/20 {
			peak = live
			peakMu.Lock()
			if err := writeHeap(path); err != nil {
				fmt.Fprintln(os.Stderr, "benchprofile:", err)
			}
			peakMu.Unlock()
		}
	}
}
