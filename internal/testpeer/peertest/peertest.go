// Package peertest gives tests the real peers of package testpeer: started per
// test, stopped at its end, skipped when missing unless CI is set.
package peertest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

// Moto starts a fresh moto_server for t and stops it when t ends. Without
// moto_server the test is skipped, or fails when CI is set.
func Moto(t testing.TB) *testpeer.Moto {
	t.Helper()
	m, err := testpeer.StartMoto(context.Background())
	if errors.Is(err, testpeer.ErrMissing) {
		Missing(t, "moto_server")
	}
	if err != nil {
		t.Fatalf("start moto_server: %v", err)
	}
	t.Cleanup(m.Close)
	return m
}

// Tool returns the path of the program name, skipping t when it is missing
// (failing it when CI is set).
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name)
	}
	return p
}

// Missing skips t because peer is not installed, or fails it when CI is set.
func Missing(t testing.TB, peer string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required when CI is set, and is not installed", peer)
	}
	t.Skipf("%s not installed; skipping (set CI=true to make this a failure)", peer)
}
