package testpeer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// FunctionPackage is the Lambda function's main package, relative to the
// module root.
const FunctionPackage = "./functions/drift-check"

// ErrNoModule means the go command found no go.mod from the working directory.
var ErrNoModule = errors.New("not inside a Go module")

// ModuleRoot is the directory of the go.mod the go command finds from the
// working directory. The error wraps ErrNoModule when there is none, and
// exec.ErrNotFound when go is not on PATH, so callers can say what to do.
func ModuleRoot(ctx context.Context) (string, error) {
	return moduleRootIn(ctx, "")
}

func moduleRootIn(ctx context.Context, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "env", "GOMOD")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", ErrNoModule
	}
	return filepath.Dir(mod), nil
}

// BuildFunction builds FunctionPackage of the module at root into the file out,
// for this machine, as the Makefile builds the deployed bootstrap but for the
// host's GOOS/GOARCH: CGO_ENABLED=0, -tags lambda.norpc. flags are further go
// build flags, e.g. the Makefile's "-trimpath", "-ldflags=-s -w". The error
// carries the go command's output.
func BuildFunction(ctx context.Context, root, out string, flags ...string) error {
	args := append([]string{"build", "-tags", "lambda.norpc"}, flags...)
	cmd := exec.CommandContext(ctx, "go", append(args, "-o", out, FunctionPackage)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", FunctionPackage, err, bytes.TrimSpace(b))
	}
	return nil
}

// BuildBootstrap runs `make build-DriftCheckFunction ARTIFACTS_DIR=dir` in the
// module at root: the stripped static linux/arm64 bootstrap that is deployed.
// It returns the file's path.
func BuildBootstrap(ctx context.Context, root, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, "make", "-s", "build-DriftCheckFunction", "ARTIFACTS_DIR="+dir)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("make build-DriftCheckFunction: %w\n%s", err, bytes.TrimSpace(out))
	}
	return filepath.Join(dir, "bootstrap"), nil
}
