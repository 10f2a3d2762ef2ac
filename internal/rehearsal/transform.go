package rehearsal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

// Script is the Python helper, relative to the module root.
const Script = "scripts/cfn.py"

// Transform is the CloudFormation JSON that `sam deploy` submits for the
// template file at root/template (aws-sam-translator through python3
// Script), each function's CodeUri set to codeURI (s3://bucket/key) as `sam
// package` sets it, params the parameter values. A template without a
// Transform comes back as JSON. The error wraps testpeer.ErrMissing when
// python3 or aws-sam-translator is missing.
func Transform(ctx context.Context, root, template, codeURI string, params map[string]string) ([]byte, error) {
	args := []string{filepath.Join(root, Script), "transform", filepath.Join(root, template), codeURI}
	for _, k := range slices.Sorted(maps.Keys(params)) {
		args = append(args, k+"="+params[k])
	}
	out, err := python(ctx, nil, args...)
	if err != nil {
		return nil, fmt.Errorf("transform %s: %w", template, err)
	}
	return out, nil
}

// PythonLiterals turns Python literals (moto_server stores an inline role
// policy given as an object as its str()) into the values they spell.
func PythonLiterals(ctx context.Context, root string, literals []string) ([]any, error) {
	in, err := json.Marshal(literals)
	if err != nil {
		return nil, err
	}
	out, err := python(ctx, in, filepath.Join(root, Script), "literals")
	if err != nil {
		return nil, fmt.Errorf("read Python literals: %w", err)
	}
	var vals []any
	if err := json.Unmarshal(out, &vals); err != nil || len(vals) != len(literals) {
		return nil, fmt.Errorf("read Python literals: %d values for %d literals: %v", len(vals), len(literals), err)
	}
	return vals, nil
}

func python(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	bin, err := exec.LookPath("python3")
	if err != nil {
		return nil, fmt.Errorf("python3: %w", testpeer.ErrMissing)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 2 {
		return nil, fmt.Errorf("%s: %w", strings.TrimSpace(stderr.String()), testpeer.ErrMissing)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
