package samtemplate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// decodeStrict decodes a JSON file into v, refusing unknown fields and
// trailing data.
func decodeStrict(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if dec.More() {
		t.Fatalf("%s: data after the JSON value", path)
	}
}

func TestScheduledEvent(t *testing.T) {
	var ev struct {
		Version    string          `json:"version"`
		ID         string          `json:"id"`
		DetailType string          `json:"detail-type"`
		Source     string          `json:"source"`
		Account    string          `json:"account"`
		Time       string          `json:"time"`
		Region     string          `json:"region"`
		Resources  []string        `json:"resources"`
		Detail     json.RawMessage `json:"detail"`
	}
	decodeStrict(t, filepath.Join(repoRoot(t), "events", "scheduled.json"), &ev)

	checks := []struct {
		field string
		ok    bool
	}{
		{"version is 0", ev.Version == "0"},
		{"id is a UUID", regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`).MatchString(ev.ID)},
		{"detail-type is Scheduled Event", ev.DetailType == "Scheduled Event"},
		{"source is aws.events", ev.Source == "aws.events"},
		{"account is 12 digits", regexp.MustCompile(`^[0-9]{12}$`).MatchString(ev.Account)},
		{"region is set", regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]$`).MatchString(ev.Region)},
		{"detail is an empty object", string(bytes.Join(bytes.Fields(ev.Detail), nil)) == "{}"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("scheduled.json: want %s: %+v", c.field, ev)
		}
	}
	if _, err := time.Parse(time.RFC3339, ev.Time); err != nil {
		t.Errorf("scheduled.json time: %v", err)
	}
	rule := regexp.MustCompile(`^arn:aws[a-z-]*:events:` + regexp.QuoteMeta(ev.Region) + `:` + ev.Account + `:rule/.+$`)
	if len(ev.Resources) != 1 || !rule.MatchString(ev.Resources[0]) {
		t.Errorf("scheduled.json resources = %v, want the ARN of one rule in %s/%s", ev.Resources, ev.Account, ev.Region)
	}
}

func TestManualEvents(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(repoRoot(t), "events", "manual-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no events/manual-*.json")
	}
	provider := regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/.+$`)
	var sawReport bool
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			var ev struct {
				Mode      string   `json:"mode"`
				Providers []string `json:"providers"`
			}
			decodeStrict(t, path, &ev)
			switch ev.Mode {
			case "remediate", "alert", "report", "":
			default:
				t.Errorf("mode %q is not remediate, alert or report", ev.Mode)
			}
			for _, p := range ev.Providers {
				if !provider.MatchString(p) {
					t.Errorf("provider %q is not an OIDC provider ARN", p)
				}
			}
			if filepath.Base(path) == "manual-report.json" {
				sawReport = true
				if ev.Mode != "report" {
					t.Errorf("manual-report.json mode = %q, want report", ev.Mode)
				}
			}
		})
	}
	if !sawReport {
		t.Error("events/manual-report.json missing")
	}
}

// TestSAMConfig reads samconfig.toml (flat tables of key = value only) and checks
// the deploy defaults carry nothing specific to one account or region.
func TestSAMConfig(t *testing.T) {
	f, err := os.Open(filepath.Join(repoRoot(t), "samconfig.toml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	tables := map[string]map[string]string{"": {}}
	current := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			current = strings.Trim(line, "[]")
			if _, dup := tables[current]; dup {
				t.Fatalf("samconfig.toml:%d: table [%s] repeated", n, current)
			}
			tables[current] = map[string]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("samconfig.toml:%d: not key = value: %q", n, line)
			}
			tables[current][strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}

	if got := tables[""]["version"]; got != "0.1" {
		t.Errorf("version = %q, want 0.1", got)
	}
	deploy, ok := tables["default.deploy.parameters"]
	if !ok {
		t.Fatal("[default.deploy.parameters] missing")
	}
	for k, want := range map[string]string{
		"stack_name":        `"thumbprint-drift"`,
		"capabilities":      `"CAPABILITY_IAM"`,
		"resolve_s3":        "true",
		"confirm_changeset": "true",
	} {
		if got := deploy[k]; got != want {
			t.Errorf("deploy %s = %q, want %s", k, got, want)
		}
	}
	if _, ok := tables["default.build.parameters"]; !ok {
		t.Error("[default.build.parameters] missing")
	}
	accountID := regexp.MustCompile(`\b[0-9]{12}\b`)
	for name, table := range tables {
		for _, k := range []string{"region", "profile", "s3_bucket", "image_repository", "role_arn", "parameter_overrides"} {
			if _, ok := table[k]; ok {
				t.Errorf("[%s] sets %s: that is specific to one account; `sam deploy --guided` asks for it", name, k)
			}
		}
		for k, v := range table {
			if accountID.MatchString(v) {
				t.Errorf("[%s] %s = %s carries an account id", name, k, v)
			}
		}
	}
}
