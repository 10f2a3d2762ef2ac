//go:build benchprofile

// The bench's profiling build (go build -tags benchprofile, never deployed):
// with BENCH_PROFILE=<prefix> in the environment, the process profiles its
// CPU from start-up and, on SIGTERM (how the bench stops it), writes
// <prefix>cpu.pprof and <prefix>heap.pprof (allocations since start-up,
// sampled as runtime.MemProfileRate) and exits.

package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
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
		runtime.GC() // the heap profile as of the last collection
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
