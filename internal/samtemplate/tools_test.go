package samtemplate

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requireTool returns the path of the program name, skipping t when it is not
// installed, or failing it when CI is set (CI must run every check).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required when CI is set, and is not installed", name)
	}
	t.Skipf("%s not installed; skipping (set CI=true to make this a failure)", name)
	return ""
}

// cfnLint runs cfn-lint on file from dir and returns its exit code and output.
func cfnLint(t *testing.T, bin, dir, file string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, file)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit) && ctx.Err() == nil:
		return exit.ExitCode(), string(out)
	default:
		t.Fatalf("cfn-lint %s: %v\n%s", file, err, out)
		return -1, ""
	}
}

func TestCfnLint(t *testing.T) {
	bin := requireTool(t, "cfn-lint")
	root := repoRoot(t)

	for _, name := range cfnFiles {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if code, out := cfnLint(t, bin, root, name); code != 0 {
				t.Errorf("cfn-lint %s exited %d:\n%s", name, code, out)
			}
		})
	}

	// The same run on a broken copy must fail, so a clean result above means
	// cfn-lint really linted (and, for template.yaml, transformed) each file.
	broken := []struct {
		name, file, old, new, code string
	}{
		{"detects a deprecated runtime", "template.yaml", "Runtime: provided.al2023", "Runtime: go1.x", "E2533"},
		// Inside a conditional statement of the function role's policy: cfn-lint
		// still resolves the references in an Fn::If.
		{"detects a bad reference in a conditional policy statement", "template.yaml",
			`!Split [",", !Ref AccountRoleArns]`, `!Split [",", !Ref AccountRoleArnz]`, "E1020"},
		{"detects a bad member role session duration", "member-role.yaml", "MaxSessionDuration: 3600", "MaxSessionDuration: 60", "E3034"},
	}
	for _, tc := range broken {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(filepath.Join(root, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			b := bytes.Replace(raw, []byte(tc.old), []byte(tc.new), 1)
			if bytes.Equal(b, raw) {
				t.Fatalf("%s has no `%s` to break", tc.file, tc.old)
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, tc.file), b, 0o644); err != nil {
				t.Fatal(err)
			}
			code, out := cfnLint(t, bin, dir, tc.file)
			if code == 0 || !strings.Contains(out, tc.code) {
				t.Errorf("cfn-lint on %s with %s exited %d without %s:\n%s", tc.file, tc.new, code, tc.code, out)
			}
		})
	}
}

// TestBuildDriftCheckFunction runs the target `sam build` calls and checks the
// artefact Lambda's provided.al2023 arm64 runtime needs: a static linux/arm64
// ELF executable named bootstrap.
func TestBuildDriftCheckFunction(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function binary; skipped in -short mode")
	}
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "functions", "drift-check", "main.go")); errors.Is(err, os.ErrNotExist) {
		t.Skip("functions/drift-check/main.go does not exist yet; nothing to build")
	}
	makeBin := requireTool(t, "make")

	artifacts := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, makeBin, "build-DriftCheckFunction", "ARTIFACTS_DIR="+artifacts)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build-DriftCheckFunction: %v\n%s", err, out)
	}

	path := filepath.Join(artifacts, "bootstrap")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm()&0o111 == 0 {
		t.Errorf("bootstrap mode %v is not executable", info.Mode())
	}
	// Small enough to deploy and start fast (issue 13: at most 12 MiB with
	// every SDK client the configuration may need; issue 20 adds S3 for
	// sharded runs, about 1 MiB, so 13 MiB).
	const maxBootstrap = 13 << 20
	if info.Size() > maxBootstrap {
		t.Errorf("bootstrap is %d bytes (%.2f MiB), more than %d (13 MiB)", info.Size(), float64(info.Size())/(1<<20), maxBootstrap)
	}
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("bootstrap is not an ELF file: %v", err)
	}
	defer f.Close()

	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_AARCH64 {
		t.Errorf("bootstrap is %v %v, want ELFCLASS64 EM_AARCH64", f.Class, f.Machine)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		t.Errorf("bootstrap ELF type %v is not an executable", f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("bootstrap has a PT_INTERP program header: it is dynamically linked")
		}
	}
	needed, err := f.DynString(elf.DT_NEEDED)
	if err != nil {
		t.Fatalf("read DT_NEEDED: %v", err)
	}
	if len(needed) > 0 {
		t.Errorf("bootstrap needs shared libraries %v, want none", needed)
	}
}
