// Package testpeer starts the real peers that tests and the demo talk to:
// moto_server for IAM, SNS, SQS and STS on a free loopback port.
package testpeer

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// motoDynamoDB runs moto_server with its DynamoDB writes atomic and its
// transactions' table copies made once (moto_dynamodb.py says why).
//
//go:embed moto_dynamodb.py
var motoDynamoDB string

// ErrMissing means the peer's program is not installed.
var ErrMissing = errors.New("peer not installed")

// Region and credentials that moto accepts; the account is moto's default.
const (
	Region    = "us-east-1"
	AccessKey = "testing"
	SecretKey = "testing"
	AccountID = "123456789012"
)

// Moto is a running moto_server.
type Moto struct {
	// Endpoint is its base URL, http://127.0.0.1:PORT.
	Endpoint string
	cmd      *exec.Cmd
	done     chan struct{}
}

// StartMoto starts moto_server on a free port of 127.0.0.1 and waits until it
// answers. Stop it with Close.
func StartMoto(ctx context.Context) (*Moto, error) {
	return startMoto(ctx, nil)
}

// startMoto is StartMoto with env added to moto_server's environment.
func startMoto(ctx context.Context, env []string) (*Moto, error) {
	if _, err := exec.LookPath("moto_server"); err != nil {
		return nil, fmt.Errorf("moto_server (pip install 'moto[server]'): %w", ErrMissing)
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		return nil, fmt.Errorf("python3, moto_server's interpreter: %w", ErrMissing)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	// moto_server's own main, with DynamoDB's writes fixed (motoDynamoDB).
	cmd := exec.Command(python, "-c", motoDynamoDB, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = nil, nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if os.Getenv("MOTO_LOG") != "" {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	m := &Moto{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(m.done) }()
	if err := m.waitReady(ctx, 60*time.Second); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func (m *Moto) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.Endpoint+"/moto-api/", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-m.done:
			return fmt.Errorf("moto_server exited before it was ready")
		case <-ctx.Done():
			return fmt.Errorf("moto_server not ready at %s: %w", m.Endpoint, ctx.Err())
		case <-tick.C:
		}
	}
}

// Reset clears all of moto's state.
func (m *Moto) Reset(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, m.Endpoint+"/moto-api/reset", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reset moto: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reset moto: status %d", resp.StatusCode)
	}
	return nil
}

// Close stops moto_server and its children and waits for them.
func (m *Moto) Close() {
	if m.cmd.Process != nil {
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-m.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
			<-m.done
		}
	}
}

// Env returns the environment variables that point the SDK's standard chain
// (and awscli) at this moto_server.
func (m *Moto) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + m.Endpoint,
		"AWS_REGION=" + Region,
		"AWS_DEFAULT_REGION=" + Region,
		"AWS_ACCESS_KEY_ID=" + AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + SecretKey,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Config returns an SDK configuration for this moto_server with static
// credentials, the standard retryer and few attempts.
func (m *Moto) Config() aws.Config {
	return aws.Config{
		Region:           Region,
		Credentials:      credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
		BaseEndpoint:     aws.String(m.Endpoint),
		RetryMode:        aws.RetryModeStandard,
		RetryMaxAttempts: 3,
	}
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
