package handler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/handler"
)

var update = flag.Bool("update", false, "rewrite golden files")

// ownFunction is the function name in events/cloudtrail-own-update.json: the
// session name Lambda gives the execution role of a function SAM named.
const ownFunction = "thumbprint-drift-DriftCheckFunction-Ab3dEf6hIj9k"

// parsed is what a test compares: an Event as JSON.
type parsed struct {
	Kind      handler.Kind   `json:"kind"`
	Mode      config.Mode    `json:"mode,omitempty"`
	Providers []string       `json:"providers,omitempty"`
	Ignore    handler.Ignore `json:"ignore,omitempty"`
	Detail    string         `json:"detail,omitempty"`
	Call      *handler.Call  `json:"call,omitempty"`
}

func view(ev handler.Event) parsed {
	return parsed{Kind: ev.Kind, Mode: ev.Request.Mode, Providers: ev.Request.Providers, Ignore: ev.Ignore, Detail: ev.Detail, Call: ev.Call}
}

// TestParseEventFixtures parses every sample payload under events/ and
// compares the result, as JSON, with testdata/<name>.parsed.json.
func TestParseEventFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "events", "*.json"))
	if err != nil || len(files) < 8 {
		t.Fatalf("sample events: %v %v", files, err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			ev, err := handler.ParseEvent(readEvent(t, name+".json"), ownFunction)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".parsed.json", view(ev))
		})
	}
}

// patch returns the sample event name with edit applied to its detail (and
// the whole event).
func patch(t *testing.T, name string, edit func(event, detail map[string]any)) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(readEvent(t, name), &ev); err != nil {
		t.Fatal(err)
	}
	detail, _ := ev["detail"].(map[string]any)
	edit(ev, detail)
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func identity(d map[string]any) map[string]any { return d["userIdentity"].(map[string]any) }

func TestParseCloudTrail(t *testing.T) {
	const (
		gha   = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
		eks   = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
		check = handler.Ignore("")
	)
	memberSession := func(_, d map[string]any) {
		id := identity(d)
		id["arn"] = "arn:aws:sts::123456789012:assumed-role/thumbprint-drift-member/thumbprint-drift"
		id["principalId"] = "AROA2EXAMPLEMEMBER001:thumbprint-drift"
	}
	tests := []struct {
		name         string
		payload      []byte
		functionName string
		ignore       handler.Ignore
		provider     string // the one provider checked, when ignore is empty
		session      string
	}{
		{"update by someone else", readEvent(t, "cloudtrail-update-thumbprint.json"), ownFunction, check, gha, "GitHubActions"},
		{"own update: execution role session named after the function", readEvent(t, "cloudtrail-own-update.json"), ownFunction, handler.IgnoreOwnUpdate, "", ownFunction},
		{"own update: member role session", patch(t, "cloudtrail-own-update.json", memberSession), "other-function", handler.IgnoreOwnUpdate, "", "thumbprint-drift"},
		{"own update: session from principalId when arn is missing", patch(t, "cloudtrail-own-update.json", func(_, d map[string]any) {
			delete(identity(d), "arn")
		}), ownFunction, handler.IgnoreOwnUpdate, "", ownFunction},
		{"another function's update is checked", readEvent(t, "cloudtrail-own-update.json"), "drift-check", check, gha, ownFunction},
		{"no function name: only the member session is own", readEvent(t, "cloudtrail-own-update.json"), "", check, gha, ownFunction},
		{"own session name on a tag call is checked", patch(t, "cloudtrail-own-update.json", func(_, d map[string]any) {
			d["eventName"] = "TagOpenIDConnectProvider"
		}), ownFunction, check, gha, ownFunction},
		{"own session name on a create is checked", patch(t, "cloudtrail-create.json", memberSession), ownFunction, check, "arn:aws:iam::123456789012:oidc-provider/gitlab.example.com", "thumbprint-drift"},
		{"an IAM user named like the function is not an assumed role", patch(t, "cloudtrail-own-update.json", func(_, d map[string]any) {
			id := identity(d)
			id["type"] = "IAMUser"
			id["arn"] = "arn:aws:iam::123456789012:user/thumbprint-drift"
			id["principalId"] = "AIDA2EXAMPLE:thumbprint-drift"
		}), ownFunction, check, gha, ""},
		{"failed update", patch(t, "cloudtrail-update-thumbprint.json", func(_, d map[string]any) {
			d["errorCode"] = "InvalidInput"
			d["errorMessage"] = "Thumbprint list must contain at most 5 entries."
		}), ownFunction, handler.IgnoreCallFailed, "", "GitHubActions"},
		{"failed create: no ARN, errorCode", patch(t, "cloudtrail-create.json", func(_, d map[string]any) {
			d["errorCode"] = "EntityAlreadyExistsException"
			d["errorMessage"] = "Provider with url https://gitlab.example.com already exists."
			d["responseElements"] = nil
		}), ownFunction, handler.IgnoreCallFailed, "", "alice@example.com"},
		{"tag without request parameters", patch(t, "cloudtrail-tag.json", func(_, d map[string]any) {
			d["requestParameters"] = nil
		}), ownFunction, handler.IgnoreNoProvider, "", ""},
		{"create without response elements", patch(t, "cloudtrail-create.json", func(_, d map[string]any) {
			delete(d, "responseElements")
		}), ownFunction, handler.IgnoreNoProvider, "", "alice@example.com"},
		{"create reads the response, not the request", patch(t, "cloudtrail-create.json", func(_, d map[string]any) {
			d["requestParameters"].(map[string]any)["openIDConnectProviderArn"] = gha
		}), ownFunction, check, "arn:aws:iam::123456789012:oidc-provider/gitlab.example.com", "alice@example.com"},
		{"ARN of another resource", patch(t, "cloudtrail-tag.json", func(_, d map[string]any) {
			d["requestParameters"].(map[string]any)["openIDConnectProviderArn"] = "arn:aws:iam::123456789012:saml-provider/corp"
		}), ownFunction, handler.IgnoreNoProvider, "", ""},
		{"ARN with a short account", patch(t, "cloudtrail-tag.json", func(_, d map[string]any) {
			d["requestParameters"].(map[string]any)["openIDConnectProviderArn"] = "arn:aws:iam::12345:oidc-provider/x.example.com"
		}), ownFunction, handler.IgnoreNoProvider, "", ""},
		{"event account differs from the provider's", patch(t, "cloudtrail-tag.json", func(e, _ map[string]any) {
			e["account"] = "210987654321"
		}), ownFunction, handler.IgnoreOtherAccount, "", ""},
		{"no envelope account: recipientAccountId", patch(t, "cloudtrail-tag.json", func(e, d map[string]any) {
			delete(e, "account")
			d["recipientAccountId"] = "210987654321"
		}), ownFunction, handler.IgnoreOtherAccount, "", ""},
		{"no account anywhere: the ARN's", patch(t, "cloudtrail-tag.json", func(e, d map[string]any) {
			delete(e, "account")
			delete(d, "recipientAccountId")
		}), ownFunction, check, eks, ""},
		{"member account event forwarded to the central bus", patch(t, "cloudtrail-tag.json", func(e, d map[string]any) {
			e["account"] = "111111111111"
			d["recipientAccountId"] = "111111111111"
			d["requestParameters"].(map[string]any)["openIDConnectProviderArn"] = "arn:aws:iam::111111111111:oidc-provider/token.actions.githubusercontent.com"
		}), ownFunction, check, "arn:aws:iam::111111111111:oidc-provider/token.actions.githubusercontent.com", ""},
		{"other partition", patch(t, "cloudtrail-tag.json", func(e, d map[string]any) {
			d["requestParameters"].(map[string]any)["openIDConnectProviderArn"] = "arn:aws-cn:iam::123456789012:oidc-provider/x.example.cn"
		}), ownFunction, check, "arn:aws-cn:iam::123456789012:oidc-provider/x.example.cn", ""},
		{"another IAM call is ignored", patch(t, "cloudtrail-tag.json", func(_, d map[string]any) {
			d["eventName"] = "DeleteOpenIDConnectProvider"
		}), ownFunction, handler.IgnoreOtherCall, "", ""},
		{"AddClientID is not a trigger", patch(t, "cloudtrail-tag.json", func(_, d map[string]any) {
			d["eventName"] = "AddClientIDToOpenIDConnectProvider"
		}), ownFunction, handler.IgnoreOtherCall, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := handler.ParseEvent(tt.payload, tt.functionName)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind != handler.KindCloudTrail || ev.Call == nil {
				t.Fatalf("ParseEvent = %+v, want a CloudTrail call", ev)
			}
			if ev.Ignore != tt.ignore {
				t.Fatalf("Ignore = %q (%s), want %q", ev.Ignore, ev.Detail, tt.ignore)
			}
			if tt.ignore != "" && ev.Detail == "" {
				t.Error("ignored without a detail")
			}
			var want drift.Request
			if tt.provider != "" {
				// The run carries the call's writer, for its one provider.
				want.Providers, want.Writer = []string{tt.provider}, ev.Call.Writer
			}
			if !reflect.DeepEqual(ev.Request, want) {
				t.Errorf("Request = %+v, want %+v", ev.Request, want)
			}
			if ev.Call.Session != tt.session {
				t.Errorf("Session = %q, want %q", ev.Call.Session, tt.session)
			}
		})
	}
}

func TestParseEventNotCloudTrail(t *testing.T) {
	for _, tt := range []struct {
		name    string
		payload []byte
	}{
		{"CloudTrail call of another service", patch(t, "cloudtrail-tag.json", func(e, _ map[string]any) { e["source"] = "aws.s3" })},
		{"IAM event of another detail-type", patch(t, "cloudtrail-tag.json", func(e, _ map[string]any) { e["detail-type"] = "AWS Console Sign In via CloudTrail" })},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := handler.ParseEvent(tt.payload, ownFunction)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ev, handler.Event{Kind: handler.KindSchedule}) {
				t.Fatalf("ParseEvent = %+v, want the schedule", ev)
			}
		})
	}
}

// TestParseEventMalformedCloudTrail: a CloudTrail event (source aws.iam,
// detail-type of a CloudTrail call) whose fields cannot be read is
// acknowledged as malformed, never refused (a refusal is retried into the
// dead-letter queue, and no retry can read it); a payload that cannot be
// told to be a CloudTrail event at all is refused.
func TestParseEventMalformedCloudTrail(t *testing.T) {
	const envelope = `{"version":"0","detail-type":"AWS API Call via CloudTrail","source":"aws.iam","account":"123456789012"`
	for _, tt := range []struct {
		name    string
		payload []byte
		refused bool
	}{
		{name: "no detail", payload: []byte(envelope + `}`)},
		{name: "detail null", payload: []byte(envelope + `,"detail":null}`)},
		{name: "detail a string", payload: []byte(envelope + `,"detail":"UpdateOpenIDConnectProviderThumbprint"}`)},
		{name: "detail a list", payload: []byte(envelope + `,"detail":[]}`)},
		{name: "eventName a number", payload: []byte(envelope + `,"detail":{"eventName":7}}`)},
		{name: "requestParameters a string", payload: []byte(envelope + `,"detail":{"eventName":"TagOpenIDConnectProvider","requestParameters":"arn:aws:iam::123456789012:oidc-provider/x"}}`)},
		{name: "ARN a list", payload: []byte(envelope + `,"detail":{"eventName":"TagOpenIDConnectProvider","requestParameters":{"openIDConnectProviderArn":["arn:aws:iam::123456789012:oidc-provider/x"]}}}`)},
		{name: "ARN a number", payload: patch(t, "cloudtrail-tag.json", func(_, d map[string]any) { d["requestParameters"] = map[string]any{"openIDConnectProviderArn": 42} })},
		{name: "userIdentity a list", payload: patch(t, "cloudtrail-update-thumbprint.json", func(_, d map[string]any) { d["userIdentity"] = []any{} })},
		{name: "userIdentity a string", payload: patch(t, "cloudtrail-update-thumbprint.json", func(_, d map[string]any) { d["userIdentity"] = "AROAEXAMPLE" })},
		{name: "errorCode an object", payload: patch(t, "cloudtrail-update-thumbprint.json", func(_, d map[string]any) { d["errorCode"] = map[string]any{} })},
		{name: "account a number", payload: patch(t, "cloudtrail-update-thumbprint.json", func(e, _ map[string]any) { e["account"] = 123456789012 })},
		{name: "source a number: not known to be CloudTrail", payload: []byte(`{"detail-type":"Scheduled Event","source":1,"detail":{}}`), refused: true},
		{name: "truncated: not JSON", payload: readEvent(t, "cloudtrail-tag.json")[:400], refused: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := handler.ParseEvent(tt.payload, ownFunction)
			if tt.refused {
				if !errors.Is(err, handler.ErrBadEvent) {
					t.Fatalf("ParseEvent = %+v, %v; want ErrBadEvent", ev, err)
				}
				return
			}
			if err != nil || ev.Kind != handler.KindCloudTrail || ev.Ignore != handler.IgnoreMalformed || ev.Detail == "" || len(ev.Request.Providers) != 0 {
				t.Fatalf("ParseEvent = %+v, %v; want a CloudTrail event ignored as malformed, with a detail", ev, err)
			}
		})
	}
}

func TestInvokeCloudTrail(t *testing.T) {
	rep := &drift.Report{Mode: config.ModeAlert, Checked: 1, Counts: map[drift.Outcome]int{drift.InSync: 1},
		Results: []drift.Result{{ProviderARN: "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com", Outcome: drift.InSync}}}
	for _, tt := range []struct {
		name      string
		event     []byte
		wantRun   []string // the providers asked for; nil: the engine must not run
		wantLevel string
		wantMsg   string
	}{
		{"a change by someone else checks its provider", readEvent(t, "cloudtrail-update-thumbprint.json"),
			[]string{"arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"}, "INFO", "checking the provider of a CloudTrail event"},
		{"a create checks the new provider", readEvent(t, "cloudtrail-create.json"),
			[]string{"arn:aws:iam::123456789012:oidc-provider/gitlab.example.com"}, "INFO", "checking the provider of a CloudTrail event"},
		{"the function's own update checks nothing", readEvent(t, "cloudtrail-own-update.json"), nil, "INFO", "event not checked"},
		{"a failed call checks nothing", patch(t, "cloudtrail-tag.json", func(_, d map[string]any) { d["errorCode"] = "NoSuchEntity" }), nil, "INFO", "event not checked"},
		{"another call checks nothing, with a warning", patch(t, "cloudtrail-tag.json", func(_, d map[string]any) { d["eventName"] = "DeleteOpenIDConnectProvider" }), nil, "WARN", "event not checked"},
		{"detail null is acknowledged, with a warning", []byte(`{"version":"0","detail-type":"AWS API Call via CloudTrail","source":"aws.iam","account":"123456789012","detail":null}`), nil, "WARN", "event not checked"},
		{"a number for the ARN is acknowledged", patch(t, "cloudtrail-tag.json", func(_, d map[string]any) { d["requestParameters"] = map[string]any{"openIDConnectProviderArn": 42} }), nil, "WARN", "event not checked"},
		{"a number for the account is acknowledged", patch(t, "cloudtrail-tag.json", func(e, _ map[string]any) { e["account"] = 123456789012 }), nil, "WARN", "event not checked"},
		{"a string userIdentity is acknowledged", patch(t, "cloudtrail-update-thumbprint.json", func(_, d map[string]any) { d["userIdentity"] = "AROAEXAMPLE" }), nil, "WARN", "event not checked"},
		{"a string requestParameters is acknowledged", patch(t, "cloudtrail-tag.json", func(_, d map[string]any) { d["requestParameters"] = "arn:aws:iam::123456789012:oidc-provider/x" }), nil, "WARN", "event not checked"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs, metrics bytes.Buffer
			r := &fakeRunner{report: rep}
			h := handler.New(r, nil, slog.New(slog.NewJSONHandler(&logs, nil)), &metrics, ownFunction, config.ModeAlert)
			got, err := h.Invoke(context.Background(), tt.event)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			var first map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
				t.Fatalf("log %q: %v", lines[0], err)
			}
			if first["level"] != tt.wantLevel || first["msg"] != tt.wantMsg || first["event_name"] == "" || first["event_id"] == "" {
				t.Errorf("log line %s, want %s %q with the call's fields", lines[0], tt.wantLevel, tt.wantMsg)
			}
			if tt.wantRun != nil {
				if r.got == nil || !reflect.DeepEqual(r.got.Providers, tt.wantRun) || r.got.Mode != "" {
					t.Fatalf("engine ran with %+v, want providers %v in the default mode", r.got, tt.wantRun)
				}
				if got != rep {
					t.Errorf("report %+v is not the engine's", got)
				}
				return
			}
			if r.got != nil {
				t.Fatalf("engine ran with %+v for an event that checks nothing", r.got)
			}
			if len(lines) != 1 || first["reason"] == "" || first["detail"] == "" {
				t.Errorf("want one log line with reason and detail, got:\n%s", logs.String())
			}
			if metrics.Len() != 0 {
				t.Errorf("metrics written for an event that checks nothing: %s", metrics.String())
			}
			b, _ := json.Marshal(got)
			var gotJSON, wantJSON any
			_ = json.Unmarshal(b, &gotJSON)
			_ = json.Unmarshal([]byte(`{"mode":"alert","checked":0,"results":[],
				"counts":{"in-sync":0,"expiring":0,"updated":0,"drift":0,"reverted":0,"probe-failed":0,"update-failed":0,"skipped":0}}`), &wantJSON)
			if !reflect.DeepEqual(gotJSON, wantJSON) {
				t.Errorf("report %s, want an empty report", b)
			}
		})
	}
}

// golden compares v, as JSON, with testdata/name; -update rewrites it.
func golden(t *testing.T, name string, v any) {
	t.Helper()
	path := filepath.Join("testdata", name)
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wantRaw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	var want, gotV any
	if err := json.Unmarshal(wantRaw, &want); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	_ = json.Unmarshal(got, &gotV)
	if !reflect.DeepEqual(gotV, want) {
		t.Fatalf("%s differs:\ngot  %s\nwant %s", path, got, wantRaw)
	}
}

// TestParseEventManualEdges: the edges of a manual payload are refused with
// an error naming the key (or the trailing data), nothing run: an empty
// providers list (it would run every provider), a schedule-shaped event
// with a manual key (it would run as the schedule, ignoring it), data after
// the object, and providers entries the CLI would refuse.
func TestParseEventManualEdges(t *testing.T) {
	const schedule = `{"version":"0","id":"x","detail-type":"Scheduled Event","source":"aws.events","account":"123456789012","detail":{}`
	for _, tt := range []struct {
		name, payload, names string
	}{
		{"empty providers list", `{"providers": []}`, `key "providers": an empty list`},
		{"empty providers list with a mode", `{"mode": "report", "providers": []}`, `key "providers"`},
		{"schedule with a mode", schedule + `,"mode":"report"}`, `key "mode"`},
		{"schedule with providers", schedule + `,"providers":["arn:aws:iam::123456789012:oidc-provider/x"]}`, `key "providers"`},
		{"CloudTrail event with a mode", `{"detail-type":"AWS API Call via CloudTrail","source":"aws.iam","mode":"remediate","detail":{}}`, `key "mode"`},
		{"trailing object", `{"mode": "report"} {"mode": "remediate"}`, "trailing data after the JSON object"},
		{"trailing bracket", `{"mode": "report"}]`, "trailing data after the JSON object"},
		{"null then data", `null {"mode": "report"}`, "want a JSON object"},
		{"account of 5 digits", `{"providers": ["arn:aws:iam::12345:oidc-provider/idp.example"]}`, `key "providers": "arn:aws:iam::12345:oidc-provider/idp.example": not an IAM OIDC provider ARN`},
		{"a Url with a scheme", `{"providers": ["arn:aws:iam::123456789012:oidc-provider/https://idp.example"]}`, `key "providers"`},
		{"a space in the Url", `{"providers": ["arn:aws:iam::123456789012:oidc-provider/idp.example/a b"]}`, `key "providers"`},
		{"bad mode", `{"mode": "ignore"}`, `key "mode"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := handler.ParseEvent([]byte(tt.payload), ownFunction)
			if !errors.Is(err, handler.ErrBadEvent) || !strings.Contains(err.Error(), tt.names) {
				t.Fatalf("ParseEvent = %+v, %v; want ErrBadEvent naming %s", ev, err, tt.names)
			}
		})
	}
}
