package testpeer

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"
)

func TestParseStatCPU(t *testing.T) {
	// pid (comm with spaces and a paren) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
	stat := []byte("4242 (moto server) x) S 1 4242 4242 0 -1 4194304 9000 0 12 0 250 37 0 0 20 0 3 0\n")
	got, err := parseStatCPU(stat)
	if err != nil || got != 2870*time.Millisecond {
		t.Errorf("parseStatCPU = %v, %v, want 2.87s", got, err)
	}
	for _, bad := range []string{"", "4242 moto S 1", "4242 (moto) S 1 2 3", "4242 (moto) S 1 4242 4242 0 -1 4194304 9000 0 12 0 x 37 0"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q): no error", bad)
		}
	}
}

func TestSelfCPUTime(t *testing.T) {
	before := SelfCPUTime()
	for start := time.Now(); time.Since(start) < 30*time.Millisecond; {
	}
	if after := SelfCPUTime(); after <= before {
		t.Errorf("SelfCPUTime did not grow over 30 ms of spinning: %v, then %v", before, after)
	}
}

func TestMotoCPUTime(t *testing.T) {
	m, err := StartMoto(context.Background())
	if errors.Is(err, ErrMissing) && os.Getenv("CI") == "" {
		t.Skip("moto_server not installed; skipping (set CI=true to make this a failure)")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	before, err := m.CPUTime()
	if err != nil || before <= 0 {
		t.Fatalf("CPUTime after start = %v, %v; want the interpreter's start-up", before, err)
	}
	client := iam.NewFromConfig(m.Config())
	for range 50 {
		if _, err := client.ListOpenIDConnectProviders(context.Background(), &iam.ListOpenIDConnectProvidersInput{}); err != nil {
			t.Fatal(err)
		}
	}
	if after, err := m.CPUTime(); err != nil || after <= before {
		t.Errorf("CPUTime after 50 calls = %v, %v; want more than %v", after, err, before)
	}
}
