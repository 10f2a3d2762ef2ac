package testidp

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
)

// OpenSSLChain runs `openssl s_client -connect addr [-servername name]
// -showcerts [extra...] </dev/null` and returns the PEM blocks it prints, one
// per certificate, in the order the server sent them. serverName "" sends no
// SNI option (as for an IP literal). extra are further s_client options, such
// as "-cipher", "DEFAULT:@SECLEVEL=0" for a legacy server. A missing openssl
// gives an error matching exec.ErrNotFound.
func OpenSSLChain(ctx context.Context, addr, serverName string, extra ...string) ([][]byte, error) {
	args := []string{"s_client", "-connect", addr, "-showcerts"}
	if serverName != "" {
		args = append(args, "-servername", serverName)
	}
	args = append(args, extra...)
	cmd := exec.CommandContext(ctx, "openssl", args...)
	cmd.Stdin = nil // reads /dev/null
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("openssl s_client -connect %s: %w: %s", addr, err, strings.TrimSpace(stderr.String()))
	}
	var blocks [][]byte
	rest := stdout.Bytes()
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			blocks = append(blocks, pem.EncodeToMemory(b))
		}
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("openssl s_client -connect %s printed no certificate", addr)
	}
	return blocks, nil
}

// OpenSSLThumbprint is AWS's documented procedure: the chain from
// `openssl s_client -showcerts`, the LAST certificate printed, its
// `openssl x509 -noout -fingerprint -sha1`, colons stripped, lowercased.
// serverName "" omits -servername; for a host name give the name. extra are
// further s_client options (see OpenSSLChain).
func OpenSSLThumbprint(ctx context.Context, addr, serverName string, extra ...string) (string, error) {
	blocks, err := OpenSSLChain(ctx, addr, serverName, extra...)
	if err != nil {
		return "", err
	}
	return OpenSSLFingerprint(ctx, blocks[len(blocks)-1])
}

// OpenSSLFingerprint runs `openssl x509 -noout -fingerprint -sha1` on one PEM
// certificate and returns the fingerprint without colons, lowercased.
func OpenSSLFingerprint(ctx context.Context, certPEM []byte) (string, error) {
	cmd := exec.CommandContext(ctx, "openssl", "x509", "-noout", "-fingerprint", "-sha1")
	cmd.Stdin = bytes.NewReader(certPEM)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("openssl x509 -fingerprint: %w: %s", err, strings.TrimSpace(string(out)))
	}
	// "SHA1 Fingerprint=AB:CD:..."
	_, fp, ok := strings.Cut(strings.TrimSpace(string(out)), "=")
	if !ok {
		return "", fmt.Errorf("openssl x509 -fingerprint: unexpected output %q", out)
	}
	return strings.ToLower(strings.ReplaceAll(fp, ":", "")), nil
}

// OpenSSLHandshakes reports whether `openssl s_client -connect addr
// [-servername name] [extra...] </dev/null` completes a handshake, as the
// oracle for what a server accepts: extra "-tls1_2" asks whether it accepts
// TLS 1.2. Only a missing openssl or a canceled ctx is an error.
func OpenSSLHandshakes(ctx context.Context, addr, serverName string, extra ...string) (bool, error) {
	args := []string{"s_client", "-connect", addr}
	if serverName != "" {
		args = append(args, "-servername", serverName)
	}
	cmd := exec.CommandContext(ctx, "openssl", append(args, extra...)...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return true, nil
	}
	if _, ok := errors.AsType[*exec.ExitError](err); ok && ctx.Err() == nil {
		return false, nil
	}
	return false, fmt.Errorf("openssl s_client -connect %s: %w: %s", addr, err, strings.TrimSpace(string(out)))
}

// HaveOpenSSL reports whether an openssl binary is on PATH.
func HaveOpenSSL() bool {
	_, err := exec.LookPath("openssl")
	return err == nil
}

// ServerName is the SNI the openssl procedure passes for host:port: the host,
// or "" for an IP literal.
func ServerName(hostport string) string {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if net.ParseIP(host) != nil {
		return ""
	}
	return host
}
