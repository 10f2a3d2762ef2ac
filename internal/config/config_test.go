package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func with(f func(*Config)) Config {
	c := Default()
	f(&c)
	return c
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr string // substring naming the variable
	}{
		{name: "defaults", env: nil, want: Default()},
		{name: "empty values take defaults", env: map[string]string{"DRIFT_MODE": " ", "CONCURRENCY": "", "PROBE_TIMEOUT": ""}, want: Default()},
		{
			name: "all set",
			env: map[string]string{
				"SNS_TOPIC_ARN":    "arn:aws:sns:eu-west-1:123456789012:drift",
				"DRIFT_MODE":       "Alert",
				"CONCURRENCY":      "64",
				"PROBE_TIMEOUT":    "2500ms",
				"PROBE_HANDSHAKES": "5",
			},
			want: with(func(c *Config) {
				c.TopicARN, c.Mode, c.Concurrency, c.ProbeTimeout, c.ProbeHandshakes = "arn:aws:sns:eu-west-1:123456789012:drift", ModeAlert, 64, 2500*time.Millisecond, 5
			}),
		},
		{name: "gov partition topic", env: map[string]string{"SNS_TOPIC_ARN": "arn:aws-us-gov:sns:us-gov-west-1:123456789012:t"},
			want: func() Config {
				c := Default()
				c.TopicARN = "arn:aws-us-gov:sns:us-gov-west-1:123456789012:t"
				return c
			}()},
		{name: "minimums", env: map[string]string{"CONCURRENCY": "1", "PROBE_HANDSHAKES": "1", "PROBE_TIMEOUT": "100ms", "DRIFT_MODE": "report"},
			want: with(func(c *Config) {
				c.Mode, c.Concurrency, c.ProbeTimeout, c.ProbeHandshakes = ModeReport, 1, 100*time.Millisecond, 1
			})},
		{name: "lifecycle and integrations", env: map[string]string{
			"STATE_TABLE": "thumbprint-drift-state", "REALERT_INTERVAL": "90s", "PROBE_FAILURES_TO_ALERT": "1",
			"EXPIRY_WARNING": "0", "ALERT_FORMAT": "Chatbot", "EVENT_BUS_NAME": "default", "SECURITY_HUB": "TRUE",
			"PROBE_CONCURRENCY": "256", "ORG_INCLUDE_MANAGEMENT_ACCOUNT": "true",
		}, want: with(func(c *Config) {
			c.StateTable, c.RealertInterval, c.ProbeFailuresToAlert = "thumbprint-drift-state", 90*time.Second, 1
			c.ExpiryWarning, c.AlertFormat, c.EventBusName, c.SecurityHub = 0, FormatChatbot, "default", true
			c.ProbeConcurrency, c.OrgIncludeManagementAccount = 256, true
		})},
		{name: "realert zero never reminds", env: map[string]string{"REALERT_INTERVAL": "0"}, want: with(func(c *Config) { c.RealertInterval = 0 })},
		{name: "event bus arn", env: map[string]string{"EVENT_BUS_NAME": "arn:aws:events:us-east-1:123456789012:event-bus/security"},
			want: with(func(c *Config) { c.EventBusName = "arn:aws:events:us-east-1:123456789012:event-bus/security" })},
		{name: "realert negative", env: map[string]string{"REALERT_INTERVAL": "-1h"}, wantErr: "REALERT_INTERVAL"},
		{name: "realert without unit", env: map[string]string{"REALERT_INTERVAL": "24"}, wantErr: "REALERT_INTERVAL"},
		{name: "expiry warning days", env: map[string]string{"EXPIRY_WARNING": "30d"}, wantErr: "EXPIRY_WARNING"},
		{name: "probe failures zero", env: map[string]string{"PROBE_FAILURES_TO_ALERT": "0"}, wantErr: "PROBE_FAILURES_TO_ALERT"},
		{name: "probe concurrency too high", env: map[string]string{"PROBE_CONCURRENCY": "257"}, wantErr: "PROBE_CONCURRENCY"},
		{name: "alert format", env: map[string]string{"ALERT_FORMAT": "slack"}, wantErr: "ALERT_FORMAT"},
		{name: "state table too short", env: map[string]string{"STATE_TABLE": "ab"}, wantErr: "STATE_TABLE"},
		{name: "security hub not a bool", env: map[string]string{"SECURITY_HUB": "yes", "STATE_TABLE": "state"}, wantErr: "SECURITY_HUB"},
		{name: "security hub without state", env: map[string]string{"SECURITY_HUB": "true"}, wantErr: "needs STATE_TABLE"},
		{name: "management account flag", env: map[string]string{"ORG_INCLUDE_MANAGEMENT_ACCOUNT": "1"}, wantErr: "ORG_INCLUDE_MANAGEMENT_ACCOUNT"},
		{name: "event bus with a space", env: map[string]string{"EVENT_BUS_NAME": "my bus"}, wantErr: "EVENT_BUS_NAME"},
		{name: "bad mode", env: map[string]string{"DRIFT_MODE": "fix"}, wantErr: "DRIFT_MODE"},
		{name: "ignore is a tag value, not a default mode", env: map[string]string{"DRIFT_MODE": "ignore"}, wantErr: "DRIFT_MODE"},
		{name: "concurrency zero", env: map[string]string{"CONCURRENCY": "0"}, wantErr: "CONCURRENCY"},
		{name: "concurrency too high", env: map[string]string{"CONCURRENCY": "65"}, wantErr: "from 1 to 64"},
		{name: "concurrency not a number", env: map[string]string{"CONCURRENCY": "eight"}, wantErr: "CONCURRENCY"},
		{name: "handshakes zero", env: map[string]string{"PROBE_HANDSHAKES": "0"}, wantErr: "PROBE_HANDSHAKES"},
		{name: "handshakes six", env: map[string]string{"PROBE_HANDSHAKES": "6"}, wantErr: "from 1 to 5"},
		{name: "timeout without unit", env: map[string]string{"PROBE_TIMEOUT": "10"}, wantErr: "PROBE_TIMEOUT"},
		{name: "timeout negative", env: map[string]string{"PROBE_TIMEOUT": "-1s"}, wantErr: "PROBE_TIMEOUT"},
		{name: "timeout too long", env: map[string]string{"PROBE_TIMEOUT": "1h"}, wantErr: "PROBE_TIMEOUT"},
		{name: "topic not an arn", env: map[string]string{"SNS_TOPIC_ARN": "my-topic"}, wantErr: "SNS_TOPIC_ARN"},
		{name: "account roles", env: map[string]string{"ACCOUNT_ROLE_ARNS": " arn:aws:iam::111111111111:role/drift , arn:aws-cn:iam::222222222222:role/path/to/drift,", "ASSUME_ROLE_EXTERNAL_ID": "ext-123", "ACCOUNT_CONCURRENCY": "8"},
			want: with(func(c *Config) {
				c.AccountRoleARNs = []string{"arn:aws:iam::111111111111:role/drift", "arn:aws-cn:iam::222222222222:role/path/to/drift"}
				c.ExternalID, c.AccountConcurrency = "ext-123", 8
			})},
		{name: "org role", env: map[string]string{"ORG_ROLE_NAME": "thumbprint-drift-member"}, want: with(func(c *Config) { c.OrgRoleName = "thumbprint-drift-member" })},
		{name: "account role not a role ARN", env: map[string]string{"ACCOUNT_ROLE_ARNS": "arn:aws:iam::111111111111:user/bob"}, wantErr: "ACCOUNT_ROLE_ARNS"},
		{name: "account role short account", env: map[string]string{"ACCOUNT_ROLE_ARNS": "arn:aws:iam::1111:role/x"}, wantErr: "ACCOUNT_ROLE_ARNS"},
		// The template cannot refuse a repeat, so the function must accept it.
		{name: "account role twice is kept once", env: map[string]string{"ACCOUNT_ROLE_ARNS": "arn:aws:iam::111111111111:role/x,arn:aws:iam::222222222222:role/y,arn:aws:iam::111111111111:role/x"},
			want: with(func(c *Config) {
				c.AccountRoleARNs = []string{"arn:aws:iam::111111111111:role/x", "arn:aws:iam::222222222222:role/y"}
			})},
		{name: "only commas", env: map[string]string{"ACCOUNT_ROLE_ARNS": ",,"}, wantErr: "ACCOUNT_ROLE_ARNS"},
		{name: "both ways of naming accounts", env: map[string]string{"ACCOUNT_ROLE_ARNS": "arn:aws:iam::111111111111:role/x", "ORG_ROLE_NAME": "x"}, wantErr: "both set"},
		{name: "org role name with a slash", env: map[string]string{"ORG_ROLE_NAME": "path/x"}, wantErr: "ORG_ROLE_NAME"},
		{name: "external id too short", env: map[string]string{"ASSUME_ROLE_EXTERNAL_ID": "x"}, wantErr: "ASSUME_ROLE_EXTERNAL_ID"},
		{name: "account concurrency too high", env: map[string]string{"ACCOUNT_CONCURRENCY": "33"}, wantErr: "ACCOUNT_CONCURRENCY"},
		{name: "shards at the edges", env: map[string]string{"SHARD_SIZE": "10", "SHARD_BUCKET": "stack-shardbucket-1a2b3c"},
			want: with(func(c *Config) { c.ShardSize, c.ShardBucket = 10, "stack-shardbucket-1a2b3c" })},
		{name: "shard size largest", env: map[string]string{"SHARD_SIZE": "10000"}, want: with(func(c *Config) { c.ShardSize = 10000 })},
		{name: "shard size zero is one invocation", env: map[string]string{"SHARD_SIZE": "0"}, want: Default()},
		{name: "shard size one below the minimum", env: map[string]string{"SHARD_SIZE": "9"}, wantErr: "SHARD_SIZE"},
		{name: "shard size one", env: map[string]string{"SHARD_SIZE": "1"}, wantErr: "SHARD_SIZE"},
		{name: "shard size one past the maximum", env: map[string]string{"SHARD_SIZE": "10001"}, wantErr: "SHARD_SIZE"},
		{name: "shard size negative", env: map[string]string{"SHARD_SIZE": "-10"}, wantErr: "SHARD_SIZE"},
		{name: "shard bucket upper case", env: map[string]string{"SHARD_BUCKET": "Runs"}, wantErr: "SHARD_BUCKET"},
		{name: "shard bucket too short", env: map[string]string{"SHARD_BUCKET": "ab"}, wantErr: "SHARD_BUCKET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(env(tt.env))
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Load() = %+v, want error containing %q", got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load() error = %q, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load() error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Load() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"report": ModeReport, " ALERT ": ModeAlert, "Remediate": ModeRemediate} {
		got, err := ParseMode(in)
		if err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ignore", "dry-run"} {
		if _, err := ParseMode(in); err == nil {
			t.Errorf("ParseMode(%q) succeeded, want error", in)
		}
	}
}

// TestDurationsIgnoreCaseAndErrorsEchoTheValue: durations ignore case as
// README says (24H is 24h), and an error quotes the value as it was set,
// not lower-cased or trimmed.
func TestDurationsIgnoreCaseAndErrorsEchoTheValue(t *testing.T) {
	ok := []struct {
		name, value string
		want        time.Duration
	}{
		{"REALERT_INTERVAL", "24H", 24 * time.Hour},
		{"REALERT_INTERVAL", " 12h30M ", 12*time.Hour + 30*time.Minute},
		{"EXPIRY_WARNING", "720H", 720 * time.Hour},
		{"PROBE_TIMEOUT", "1500MS", 1500 * time.Millisecond},
		{"PROBE_TIMEOUT", "1M30S", 90 * time.Second},
	}
	for _, tt := range ok {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			c, err := Load(env(map[string]string{tt.name: tt.value}))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]time.Duration{"REALERT_INTERVAL": c.RealertInterval, "EXPIRY_WARNING": c.ExpiryWarning, "PROBE_TIMEOUT": c.ProbeTimeout}[tt.name]
			if got != tt.want {
				t.Errorf("%s = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
	bad := []struct{ name, value string }{
		{"SECURITY_HUB", "Yes"},
		{"ORG_INCLUDE_MANAGEMENT_ACCOUNT", " TRUE-ish"},
		{"ALERT_FORMAT", "Slack"},
		{"REALERT_INTERVAL", "24 Hours"},
		{"EXPIRY_WARNING", "-1H"},
		{"PROBE_TIMEOUT", "10 Sec"},
		{"CONCURRENCY", " 65 "},
		{"STATE_TABLE", "ab"},
		{"ORG_ROLE_NAME", "Path/Role"},
	}
	for _, tt := range bad {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			_, err := Load(env(map[string]string{tt.name: tt.value}))
			want := tt.name + " " + `"` + tt.value + `"`
			if tt.name == "STATE_TABLE" || tt.name == "ORG_ROLE_NAME" {
				want = tt.name + " " + `"` + strings.TrimSpace(tt.value) + `"`
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v, want one quoting %s", err, want)
			}
		})
	}
}
