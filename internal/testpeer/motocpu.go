package testpeer

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// userHZ is the unit of the CPU times in /proc/PID/stat: USER_HZ, 100 on
// every Linux architecture.
const userHZ = 100

// CPUTime is the user and system CPU time moto_server has used since it
// started (Linux: /proc/PID/stat, in 10 ms steps). Benchmarks compare it with
// the time a run took: moto answers from one Python interpreter, so a share
// near one core means moto, not its client, was the bound.
func (m *Moto) CPUTime() (time.Duration, error) {
	if m.cmd.Process == nil {
		return 0, errors.New("moto_server not started")
	}
	return procCPUTime(m.cmd.Process.Pid)
}

// SelfCPUTime is the user and system CPU time this process has used.
func SelfCPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPUTime is the user and system CPU time of process pid (Linux:
// /proc/PID/stat, in 10 ms steps).
func procCPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("CPU time: %w", err)
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime + stime (fields 14 and 15) from a /proc/PID/stat
// line. The command name (field 2) is in parentheses and may hold spaces.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("CPU time: no command name in /proc stat")
	}
	f := strings.Fields(string(stat[i+1:])) // from field 3 (state) on
	if len(f) < 13 {
		return 0, errors.New("CPU time: short /proc stat")
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("CPU time: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}
