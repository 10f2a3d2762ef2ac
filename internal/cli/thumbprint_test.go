package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

// TestThumbprintUsage: flags and arguments, checked before any network use.
func TestThumbprintUsage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no URL", nil, ExitUsage, "want exactly one URL, got 0"},
		{"two URLs", []string{"a.example", "b.example"}, ExitUsage, "want exactly one URL, got 2"},
		{"unknown output", []string{"--output", "xml", "a.example"}, ExitUsage, `--output "xml"`},
		{"zero handshakes", []string{"--handshakes", "0", "a.example"}, ExitUsage, "--handshakes 0: want 1 to 5"},
		{"six handshakes", []string{"a.example", "--handshakes=6"}, ExitUsage, "--handshakes 6: want 1 to 5"},
		{"negative timeout", []string{"--timeout", "-1s", "a.example"}, ExitUsage, "positive duration"},
		{"unknown flag", []string{"--bogus", "a.example"}, ExitUsage, "flag provided but not defined: -bogus"},
		{"help", []string{"-h"}, ExitOK, "usage: thumbprint-drift thumbprint"},
		{"http URL", []string{"http://x"}, ExitUsage, `URL "http://x": `},
		{"empty URL", []string{""}, ExitUsage, `URL "": `},
		{"URL with a query", []string{"x/?q=1"}, ExitUsage, `URL "x/?q=1": `},
		{"URL with userinfo", []string{"https://u@idp.example"}, ExitUsage, `URL "https://u@idp.example": `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := RunThumbprint(t.Context(), tt.args, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tt.code, tt.stderr)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
		})
	}
}

// TestParseInterleaved: flags before and after the URL, and "--".
func TestParseInterleaved(t *testing.T) {
	tests := []struct {
		args       []string
		positional []string
		output     string
	}{
		{[]string{"--output", "json", "u"}, []string{"u"}, "json"},
		{[]string{"u", "--output", "json"}, []string{"u"}, "json"},
		{[]string{"u", "v", "-output=json"}, []string{"u", "v"}, "json"},
		{[]string{"--", "-u"}, []string{"-u"}, "table"},
		{[]string{"u", "--", "--output", "json"}, []string{"u", "--output", "json"}, "table"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			output := fs.String("output", "table", "")
			got, err := parseInterleaved(fs, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.positional) || *output != tt.output {
				t.Errorf("positional %q output %q; want %q %q", got, *output, tt.positional, tt.output)
			}
		})
	}
}

// TestThumbprintCommand runs the built CLI against a local identity provider:
// the printed thumbprint is the openssl procedure's, and trust follows
// SSL_CERT_FILE (Go loads the system pool once per process, hence a subprocess).
func TestThumbprintCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	bin := tpBuildCLI(t)
	dir := t.TempDir()

	root, err := testidp.NewRoot("CLI Test Root")
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.Intermediate("CLI Test Intermediate")
	if err != nil {
		t.Fatal(err)
	}
	const name = "idp.example.test"
	leaf, err := inter.Leaf([]string{"127.0.0.1", name}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf, inter)}, Path: "/id/ABC"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	rootFile := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(rootFile, root.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyDir := filepath.Join(dir, "no-certs")
	if err := os.Mkdir(emptyDir, 0o700); err != nil {
		t.Fatal(err)
	}
	trusted := []string{"SSL_CERT_FILE=" + rootFile, "SSL_CERT_DIR=" + emptyDir}

	// The openssl procedure, and the SHA-1 of the intermediate's DER.
	want := testidp.Thumbprint(inter.DER)
	peertest.Tool(t, "openssl")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	oracle, err := testidp.OpenSSLThumbprint(ctx, srv.Host(), "")
	if err != nil {
		t.Fatal(err)
	}
	if oracle != want {
		t.Fatalf("openssl procedure gives %s, SHA-1 of the intermediate is %s", oracle, want)
	}

	t.Run("json, trusted through SSL_CERT_FILE", func(t *testing.T) {
		res := tpRunJSON(t, bin, trusted, "thumbprint", "--output", "json", srv.URL())
		if !slices.Equal(res.LiveThumbprints, []string{oracle}) || !res.PubliclyTrusted || !res.DiscoveryVerified {
			t.Errorf("thumbprints %v trusted %v discovery verified %v; want [%s], true, true", res.LiveThumbprints, res.PubliclyTrusted, res.DiscoveryVerified, oracle)
		}
	})
	t.Run("json, not trusted without it", func(t *testing.T) {
		res := tpRunJSON(t, bin, []string{"SSL_CERT_DIR=" + emptyDir}, "thumbprint", "--output=json", "https://"+srv.URL())
		if !slices.Equal(res.LiveThumbprints, []string{oracle}) || res.PubliclyTrusted {
			t.Errorf("thumbprints %v trusted %v; want [%s], false", res.LiveThumbprints, res.PubliclyTrusted, oracle)
		}
		if c := res.Hosts[0].Chains[0]; c.Verified || !strings.Contains(c.VerifyError, "unknown authority") {
			t.Errorf("chain verified %v (%q), want an unknown authority", c.Verified, c.VerifyError)
		}
	})
	t.Run("json, flags after the URL", func(t *testing.T) {
		// 3, not 1: with 1 or 2 the host sees the same two handshakes (the
		// discovery's and the TLS 1.2 check's), and both count.
		res := tpRunJSON(t, bin, trusted, "thumbprint", srv.URL(), "--handshakes", "3", "--output", "json")
		if res.Hosts[0].Handshakes != 3 || !slices.Equal(res.LiveThumbprints, []string{oracle}) {
			t.Errorf("handshakes %d thumbprints %v; want 3, [%s]", res.Hosts[0].Handshakes, res.LiveThumbprints, oracle)
		}
	})
	t.Run("table", func(t *testing.T) {
		for _, tt := range []struct {
			env     []string
			trusted string
		}{
			{trusted, "publicly_trusted  true"},
			{nil, "publicly_trusted  false\n\nNot every chain verified"},
		} {
			stdout, _ := tpRun(t, bin, tt.env, ExitOK, "thumbprint", srv.URL())
			for _, line := range []string{
				"issuer            https://" + srv.URL() + "\n",
				"live thumbprints  " + oracle + "\n",
				oracle + "  <- thumbprint",
				"CN=CLI Test Intermediate",
				tt.trusted,
			} {
				if !strings.Contains(stdout, line) {
					t.Errorf("table lacks %q:\n%s", line, stdout)
				}
			}
		}
	})
	t.Run("through HTTPS_PROXY", func(t *testing.T) {
		named := tpStartNamed(t, inter, leaf, name)
		px, err := testidp.StartProxy(testidp.ProxyOptions{Resolve: map[string]string{name + ":443": named.Host()}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { px.Close() })
		env := append([]string{"HTTPS_PROXY=" + px.URL().String()}, trusted...)
		res := tpRunJSON(t, bin, env, "thumbprint", "--output", "json", name)
		if !slices.Equal(res.LiveThumbprints, []string{oracle}) || !res.PubliclyTrusted {
			t.Errorf("thumbprints %v trusted %v; want [%s], true", res.LiveThumbprints, res.PubliclyTrusted, oracle)
		}
		if got := px.Connects(); len(got) != 2 {
			t.Errorf("CONNECTs %v, want 2 (the discovery and the TLS 1.2 check, the 2 handshakes)", got)
		}
		// NO_PROXY sends the probe direct, where the name does not resolve.
		env = append(env, "NO_PROXY="+name)
		before := len(px.Connects())
		tpRun(t, bin, env, ExitError, "thumbprint", "--timeout", "5s", name)
		if got := px.Connects(); len(got) != before {
			t.Errorf("CONNECTs %v despite NO_PROXY", got[before:])
		}
	})
	t.Run("probe failure", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		_, stderr := tpRun(t, bin, nil, ExitError, "thumbprint", addr)
		if !strings.Contains(stderr, "discovery https://"+addr+"/.well-known/openid-configuration: connection refused") {
			t.Errorf("stderr %q does not name the step, URL and problem", stderr)
		}
	})
}

// tpStartNamed serves leaf's chain for a name-mapped issuer (https://name).
func tpStartNamed(t *testing.T, inter *testidp.CA, leaf *testidp.Leaf, name string) *testidp.Server {
	t.Helper()
	s, err := testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf, inter)}, IssuerHost: name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// tpBuildCLI builds cmd/thumbprint-drift into a temporary directory.
func tpBuildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "thumbprint-drift")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "github.com/thumbprint-drift/thumbprint-drift/cmd/thumbprint-drift")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// tpRun runs the CLI with the environment minus proxy and trust settings, plus env.
func tpRun(t *testing.T, bin string, env []string, code int, args ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "REQUEST_METHOD":
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	got := 0
	if ee, ok := err.(*exec.ExitError); ok {
		got = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if got != code {
		t.Fatalf("%v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, got, code, stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String()
}

// tpRunJSON runs the thumbprint command with --output json: the probe's
// result under the report's field names (live_thumbprints, not thumbprints).
func tpRunJSON(t *testing.T, bin string, env []string, args ...string) *ProbeOutput {
	t.Helper()
	stdout, _ := tpRun(t, bin, env, ExitOK, args...)
	var res ProbeOutput
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("output is not a ProbeOutput: %v\n%s", err, stdout)
	}
	if res.Result == nil || len(res.Hosts) == 0 || len(res.Hosts[0].Chains) == 0 {
		t.Fatalf("no chains in %s", stdout)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal([]byte(stdout), &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"url", "live_thumbprints", "publicly_trusted"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("JSON lacks the report's %q:\n%s", k, stdout)
		}
	}
	if _, ok := keys["thumbprints"]; ok {
		t.Errorf("JSON has \"thumbprints\", want only the report's \"live_thumbprints\":\n%s", stdout)
	}
	return &res
}
