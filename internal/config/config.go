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

	MinProbeConcurrency = 1
	MaxProbeConcurrency = 256

	MinProbeFailuresToAlert = 1
	MaxProbeFailuresToAlert = 100

	// A sharded run's batches hold MinShardSize to MaxShardSize accounts
	// (SHARD_SIZE; 0 is one invocation for the whole run). 10,000 account ids
	// are about 150 KB of JSON, under the 256 KiB Step Functions passes to a
	// Map iteration.
	MinShardSize = 10
	MaxShardSize = 10000
)

// AlertFormat is the shape of the JSON alert document (ALERT_FORMAT).
type AlertFormat string

// The alert formats.
const (
	// FormatJSON is DESIGN.md's message document.
	FormatJSON AlertFormat = "json"
	// FormatChatbot is an AWS Chatbot custom notification carrying that document.
	FormatChatbot AlertFormat = "chatbot"
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
	// OrgIncludeManagementAccount checks the organisation's management account
	// even when the function runs in another account, a delegated administrator
	// (ORG_INCLUDE_MANAGEMENT_ACCOUNT).
	OrgIncludeManagementAccount bool

	// ProbeConcurrency is how many distinct hosts are probed at once (PROBE_CONCURRENCY).
	ProbeConcurrency int

	// StateTable is the DynamoDB table of alert state (STATE_TABLE); empty: stateless.
	StateTable string
	// RealertInterval is how long after the last alert a problem still there is
	// alerted again as a reminder (REALERT_INTERVAL); 0 never reminds.
	RealertInterval time.Duration
	// ProbeFailuresToAlert is how many consecutive runs must fail to probe a
	// provider before probe-failed is alerted (PROBE_FAILURES_TO_ALERT).
	ProbeFailuresToAlert int
	// ExpiryWarning is the expiring horizon (EXPIRY_WARNING); 0 turns it off.
	ExpiryWarning time.Duration
	// AlertFormat is the JSON alert document's shape (ALERT_FORMAT).
	AlertFormat AlertFormat
	// EventBusName is the EventBridge bus alert events go to (EVENT_BUS_NAME); empty: none.
	EventBusName string
	// SecurityHub imports findings into AWS Security Hub (SECURITY_HUB); needs StateTable.
	SecurityHub bool

	// ShardSize is how many accounts a sharded run's batch holds (SHARD_SIZE):
	// 0, or MinShardSize to MaxShardSize. It is read by the sharded payloads
	// only: an invocation without one runs as one invocation, whatever it is.
	ShardSize int
	// ShardBucket is the S3 bucket of a sharded run's batches and results
	// (SHARD_BUCKET); empty when the template does not shard.
	ShardBucket string
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
		AccountConcurrency: 16,

		ProbeConcurrency:     64,
		RealertInterval:      24 * time.Hour,
		ProbeFailuresToAlert: 2,
		ExpiryWarning:        720 * time.Hour,
		AlertFormat:          FormatJSON,
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
	if raw := getenv("PROBE_TIMEOUT"); strings.TrimSpace(raw) != "" {
		d, perr := ParseDuration(raw)
		if perr != nil || d < MinTimeout || d > MaxTimeout {
			return Config{}, fmt.Errorf("PROBE_TIMEOUT %q: want a Go duration from %s to %s, like 10s", raw, MinTimeout, MaxTimeout)
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
		if err := CheckRoleName(v); err != nil {
			return Config{}, fmt.Errorf("ORG_ROLE_NAME %w", err)
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
	if c.OrgIncludeManagementAccount, err = boolVar(getenv, "ORG_INCLUDE_MANAGEMENT_ACCOUNT", false); err != nil {
		return Config{}, err
	}
	if c.ProbeConcurrency, err = intVar(getenv, "PROBE_CONCURRENCY", c.ProbeConcurrency, MinProbeConcurrency, MaxProbeConcurrency); err != nil {
		return Config{}, err
	}
	if v := strings.TrimSpace(getenv("STATE_TABLE")); v != "" {
		if err := CheckTableName(v); err != nil {
			return Config{}, fmt.Errorf("STATE_TABLE %w", err)
		}
		c.StateTable = v
	}
	if c.RealertInterval, err = durationVar(getenv, "REALERT_INTERVAL", c.RealertInterval, "24h"); err != nil {
		return Config{}, err
	}
	if c.ProbeFailuresToAlert, err = intVar(getenv, "PROBE_FAILURES_TO_ALERT", c.ProbeFailuresToAlert, MinProbeFailuresToAlert, MaxProbeFailuresToAlert); err != nil {
		return Config{}, err
	}
	if c.ExpiryWarning, err = durationVar(getenv, "EXPIRY_WARNING", c.ExpiryWarning, "720h"); err != nil {
		return Config{}, err
	}
	if raw := getenv("ALERT_FORMAT"); strings.TrimSpace(raw) != "" {
		switch f := AlertFormat(strings.ToLower(strings.TrimSpace(raw))); f {
		case FormatJSON, FormatChatbot:
			c.AlertFormat = f
		default:
			return Config{}, fmt.Errorf("ALERT_FORMAT %q: want json or chatbot", raw)
		}
	}
	if v := strings.TrimSpace(getenv("EVENT_BUS_NAME")); v != "" {
		if !eventBus.MatchString(v) {
			return Config{}, fmt.Errorf("EVENT_BUS_NAME %q: want an EventBridge bus name or ARN (1 to 256 of A-Z a-z 0-9 ._-/, or arn:...:event-bus/name)", v)
		}
		c.EventBusName = v
	}
	if c.SecurityHub, err = boolVar(getenv, "SECURITY_HUB", false); err != nil {
		return Config{}, err
	}
	if c.ShardSize, err = intVar(getenv, "SHARD_SIZE", 0, 0, MaxShardSize); err != nil {
		return Config{}, err
	}
	if c.ShardSize > 0 && c.ShardSize < MinShardSize {
		return Config{}, fmt.Errorf("SHARD_SIZE %d: want 0 or an integer from %d to %d", c.ShardSize, MinShardSize, MaxShardSize)
	}
	if v := strings.TrimSpace(getenv("SHARD_BUCKET")); v != "" {
		if !bucketName.MatchString(v) {
			return Config{}, fmt.Errorf("SHARD_BUCKET %q: want an S3 bucket name (3 to 63 of a-z 0-9 .-, starting and ending with a letter or digit)", v)
		}
		c.ShardBucket = v
	}
	if c.SecurityHub && c.StateTable == "" {
		return Config{}, fmt.Errorf("SECURITY_HUB=true needs STATE_TABLE: findings are created, updated and closed from the alert state")
	}
	return c, nil
}

// boolVar reads true or false (case-insensitive); unset or empty is def.
func boolVar(getenv func(string) string, name string, def bool) (bool, error) {
	raw := getenv(name)
	switch strings.ToLower(strings.TrimSpace(raw)) {
	case "":
		return def, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	default:
		return false, fmt.Errorf("%s %q: want true or false", name, raw)
	}
}

// durationVar reads a non-negative Go duration ("0" turns the feature off);
// unset or empty is def.
func durationVar(getenv func(string) string, name string, def time.Duration, example string) (time.Duration, error) {
	raw := getenv(name)
	if strings.TrimSpace(raw) == "" {
		return def, nil
	}
	d, err := ParseDuration(raw)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s %q: want a Go duration like %s, or 0 for off", name, raw, example)
	}
	return d, nil
}

// ParseDuration reads a Go duration ignoring case and surrounding spaces
// (24H, 1M30S, 1500MS), as README promises for every duration setting.
func ParseDuration(s string) (time.Duration, error) {
	return time.ParseDuration(strings.ToLower(strings.TrimSpace(s)))
}

// CheckTableName checks a DynamoDB table name (STATE_TABLE, --state-table);
// the error quotes it and says what is accepted, for the caller to prefix
// with the setting's name.
func CheckTableName(v string) error {
	if !tableName.MatchString(v) {
		return fmt.Errorf("%q: want a DynamoDB table name (3 to 255 of A-Z a-z 0-9 _.-)", v)
	}
	return nil
}

// CheckRoleName checks an IAM role name (ORG_ROLE_NAME, --org-role-name): a
// name, not a path; the error quotes it, for the caller to prefix with the
// setting's name.
func CheckRoleName(v string) error {
	if !roleName.MatchString(v) {
		return fmt.Errorf("%q: want an IAM role name (1 to 64 of A-Z a-z 0-9 +=,.@_-; no path)", v)
	}
	return nil
}

var (
	roleARN    = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$`)
	roleName   = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	externalID = regexp.MustCompile(`^[\w+=,.@:/-]{2,}$`)
	tableName  = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)
	bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	eventBus   = regexp.MustCompile(`^([A-Za-z0-9._/-]{1,256}|arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/[A-Za-z0-9._/-]{1,256})$`)
)

// ParseRoleARNs splits a comma-separated list of IAM role ARNs, checking each.
// A repeated ARN is kept once: the template's AccountRoleArns pattern cannot
// refuse repeats (a regular expression has no memory of earlier items), and a
// value the template admits must never stop the function from starting.
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
			continue
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
	raw := getenv(name)
	v := strings.TrimSpace(raw)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s %q: want an integer from %d to %d", name, raw, lo, hi)
	}
	return n, nil
}
