// Package config turns the function's environment into a validated Config.
package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Mode says what a run may do with a drifted provider.
type Mode string

// The modes, from least to most invasive.
const (
	// ModeReport writes nothing and publishes nothing.
	ModeReport Mode = "report"
	// ModeAlert writes nothing and publishes an SNS message per alerted outcome.
	ModeAlert Mode = "alert"
	// ModeRemediate replaces drifted lists where safe and publishes alerts.
	ModeRemediate Mode = "remediate"
)

// ParseMode accepts report, alert or remediate (case-insensitive, surrounding
// spaces ignored).
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case ModeReport, ModeAlert, ModeRemediate:
		return m, nil
	default:
		return "", fmt.Errorf("mode %q: want one of report, alert, remediate", s)
	}
}

// Limits of the numeric settings.
const (
	MinConcurrency = 1
	MaxConcurrency = 64
	MinHandshakes  = 1
	MaxHandshakes  = 5
	MinTimeout     = 100 * time.Millisecond
	MaxTimeout     = 5 * time.Minute

	MinAccountConcurrency = 1
	MaxAccountConcurrency = 32
)

// Config is the validated configuration of a run.
type Config struct {
	// TopicARN is where alerts go; empty means log only.
	TopicARN string
	// Mode is the default mode (DRIFT_MODE).
	Mode Mode
	// Concurrency is how many providers are probed at once (CONCURRENCY).
	Concurrency int
	// ProbeTimeout bounds one provider's probe (PROBE_TIMEOUT).
	ProbeTimeout time.Duration
	// ProbeHandshakes is the number of TLS handshakes per host (PROBE_HANDSHAKES).
	ProbeHandshakes int

	// AccountRoleARNs are roles to assume, one per member account
	// (ACCOUNT_ROLE_ARNS). Empty with OrgRoleName empty: the function's own account.
	AccountRoleARNs []string
	// OrgRoleName is a role name assumed in every ACTIVE account of the
	// organisation (ORG_ROLE_NAME).
	OrgRoleName string
	// ExternalID is sent with every AssumeRole (ASSUME_ROLE_EXTERNAL_ID).
	ExternalID string
	// AccountConcurrency is how many accounts are checked at once (ACCOUNT_CONCURRENCY).
	AccountConcurrency int
}

// MultiAccount reports whether the configuration names member accounts.
func (c Config) MultiAccount() bool { return len(c.AccountRoleARNs) > 0 || c.OrgRoleName != "" }

// Default returns the configuration used when the environment sets nothing.
func Default() Config {
	return Config{
		Mode:               ModeRemediate,
		Concurrency:        8,
		ProbeTimeout:       10 * time.Second,
		ProbeHandshakes:    2,
		AccountConcurrency: 4,
	}
}

// Load reads the configuration through getenv (os.Getenv in production). An
// unset or empty variable takes its default; a bad value is an error naming the
// variable and what it accepts.
func Load(getenv func(string) string) (Config, error) {
	c := Default()
	var err error
	if v := strings.TrimSpace(getenv("SNS_TOPIC_ARN")); v != "" {
		if !strings.HasPrefix(v, "arn:") || strings.Count(v, ":") != 5 {
			return Config{}, fmt.Errorf("SNS_TOPIC_ARN %q: want a topic ARN like arn:aws:sns:us-east-1:123456789012:name", v)
		}
		c.TopicARN = v
	}
	if v := getenv("DRIFT_MODE"); strings.TrimSpace(v) != "" {
		if c.Mode, err = ParseMode(v); err != nil {
			return Config{}, fmt.Errorf("DRIFT_MODE: %w", err)
		}
	}
	if c.Concurrency, err = intVar(getenv, "CONCURRENCY", c.Concurrency, MinConcurrency, MaxConcurrency); err != nil {
		return Config{}, err
	}
	if c.ProbeHandshakes, err = intVar(getenv, "PROBE_HANDSHAKES", c.ProbeHandshakes, MinHandshakes, MaxHandshakes); err != nil {
		return Config{}, err
	}
	if v := strings.TrimSpace(getenv("PROBE_TIMEOUT")); v != "" {
		d, perr := time.ParseDuration(v)
		if perr != nil || d < MinTimeout || d > MaxTimeout {
			return Config{}, fmt.Errorf("PROBE_TIMEOUT %q: want a Go duration from %s to %s, like 10s", v, MinTimeout, MaxTimeout)
		}
		c.ProbeTimeout = d
	}
	if c.AccountConcurrency, err = intVar(getenv, "ACCOUNT_CONCURRENCY", c.AccountConcurrency, MinAccountConcurrency, MaxAccountConcurrency); err != nil {
		return Config{}, err
	}
	if v := strings.TrimSpace(getenv("ACCOUNT_ROLE_ARNS")); v != "" {
		if c.AccountRoleARNs, err = ParseRoleARNs(v); err != nil {
			return Config{}, fmt.Errorf("ACCOUNT_ROLE_ARNS: %w", err)
		}
	}
	if v := strings.TrimSpace(getenv("ORG_ROLE_NAME")); v != "" {
		if !roleName.MatchString(v) {
			return Config{}, fmt.Errorf("ORG_ROLE_NAME %q: want an IAM role name (1 to 64 of A-Z a-z 0-9 +=,.@_-)", v)
		}
		c.OrgRoleName = v
	}
	if len(c.AccountRoleARNs) > 0 && c.OrgRoleName != "" {
		return Config{}, fmt.Errorf("ACCOUNT_ROLE_ARNS and ORG_ROLE_NAME are both set: choose one way to name the accounts")
	}
	if v := getenv("ASSUME_ROLE_EXTERNAL_ID"); v != "" {
		if !externalID.MatchString(v) || len(v) > 1224 {
			return Config{}, fmt.Errorf("ASSUME_ROLE_EXTERNAL_ID: want 2 to 1224 of A-Z a-z 0-9 +=,.@:/-")
		}
		c.ExternalID = v
	}
	return c, nil
}

var (
	roleARN    = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$`)
	roleName   = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	externalID = regexp.MustCompile(`^[\w+=,.@:/-]{2,}$`)
)

// ParseRoleARNs splits a comma-separated list of IAM role ARNs, checking each
// and refusing duplicates.
func ParseRoleARNs(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		arn := strings.TrimSpace(part)
		if arn == "" {
			continue
		}
		if !roleARN.MatchString(arn) {
			return nil, fmt.Errorf("%q is not an IAM role ARN (arn:aws:iam::123456789012:role/name)", arn)
		}
		if seen[arn] {
			return nil, fmt.Errorf("%q is listed twice", arn)
		}
		seen[arn] = true
		out = append(out, arn)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no role ARN in %q", s)
	}
	return out, nil
}

func intVar(getenv func(string) string, name string, def, lo, hi int) (int, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s %q: want an integer from %d to %d", name, v, lo, hi)
	}
	return n, nil
}
