package testpeer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestModuleRoot(t *testing.T) {
	ctx := context.Background()
	root, err := ModuleRoot(ctx)
	if err != nil {
		t.Fatalf("ModuleRoot: %v", err)
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mod), "module github.com/thumbprint-drift/thumbprint-drift\n") {
		t.Errorf("ModuleRoot = %s, whose go.mod is not this module's", root)
	}
	if _, err := moduleRootIn(ctx, t.TempDir()); !errors.Is(err, ErrNoModule) {
		t.Errorf("outside a module: err = %v, want ErrNoModule", err)
	}
}

func TestBuildFunction(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function")
	}
	ctx := context.Background()
	root, err := ModuleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "bootstrap")
	if err := BuildFunction(ctx, root, out, "-trimpath", "-ldflags=-s -w"); err != nil {
		t.Fatalf("BuildFunction: %v", err)
	}
	if st, err := os.Stat(out); err != nil || st.Mode()&0o111 == 0 || st.Size() == 0 {
		t.Fatalf("built %s: %v, %v", out, st, err)
	}

	// A failed build names the package and carries the go command's output.
	err = BuildFunction(ctx, t.TempDir(), out)
	if err == nil || !strings.Contains(err.Error(), "go build "+FunctionPackage) || !strings.Contains(err.Error(), "\n") {
		t.Errorf("build outside the module: err = %v, want the package and go's output", err)
	}
}

func TestBuildBootstrap(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function")
	}
	ctx := context.Background()
	root, err := ModuleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := BuildBootstrap(ctx, root, t.TempDir())
	if err != nil {
		t.Fatalf("BuildBootstrap: %v", err)
	}
	// An ELF for arm64: e_machine 183 (EM_AARCH64) at offset 18.
	b, err := os.ReadFile(bin)
	if err != nil || len(b) < 20 || string(b[1:4]) != "ELF" || b[18] != 183 {
		t.Errorf("%s is not a linux/arm64 executable: %v", bin, err)
	}
	if _, err := BuildBootstrap(ctx, t.TempDir(), t.TempDir()); err == nil || !strings.Contains(err.Error(), "make build-DriftCheckFunction") {
		t.Errorf("outside the module: %v", err)
	}
}
