package handler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/handler"
)

func readEvent(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseEvent(t *testing.T) {
	const p = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
	tests := []struct {
		name    string
		payload []byte
		want    drift.Request
		wantErr bool
	}{
		{"scheduled event checks all in the default mode", readEvent(t, "scheduled.json"), drift.Request{}, false},
		{"manual report", readEvent(t, "manual-report.json"), drift.Request{Mode: config.ModeReport}, false},
		{"manual narrowed", readEvent(t, "manual-report-narrowed.json"), drift.Request{Mode: config.ModeReport, Providers: []string{p}}, false},
		{"any EventBridge event with a mode-like detail is still a schedule", []byte(`{"source":"aws.events","detail-type":"Scheduled Event","detail":{"mode":"remediate"}}`), drift.Request{}, false},
		{"empty payload", nil, drift.Request{}, false},
		{"null", []byte("null"), drift.Request{}, false},
		{"empty object", []byte("{}"), drift.Request{}, false},
		{"mode alert", []byte(`{"mode":"ALERT"}`), drift.Request{Mode: config.ModeAlert}, false},
		{"typo in key refused", []byte(`{"modes":"report"}`), drift.Request{}, true},
		{"bad mode refused", []byte(`{"mode":"ignore"}`), drift.Request{}, true},
		{"provider not an ARN", []byte(`{"providers":["token.actions.githubusercontent.com"]}`), drift.Request{}, true},
		{"not an object", []byte(`["x"]`), drift.Request{}, true},
		{"malformed JSON", []byte(`{"mode":`), drift.Request{}, true},
		{"providers not a list", []byte(`{"providers":"arn:aws:iam::1:oidc-provider/x"}`), drift.Request{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := handler.ParseEvent(tt.payload, "drift-fn")
			if tt.wantErr {
				if !errors.Is(err, handler.ErrBadEvent) {
					t.Fatalf("ParseEvent = %+v, %v; want ErrBadEvent", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Ignore != "" || got.Call != nil {
				t.Fatalf("ParseEvent = %+v, want a run", got)
			}
			if !reflect.DeepEqual(got.Request, tt.want) {
				t.Fatalf("ParseEvent = %+v, want %+v", got.Request, tt.want)
			}
		})
	}
}

type fakeRunner struct {
	got    *drift.Request
	report *drift.Report
	err    error
}

func (f *fakeRunner) Run(_ context.Context, req drift.Request) (*drift.Report, error) {
	f.got = &req
	return f.report, f.err
}

func TestInvoke(t *testing.T) {
	rep := &drift.Report{Mode: config.ModeRemediate, Checked: 3,
		Counts: map[drift.Outcome]int{drift.Drift: 2, drift.UpdateFailed: 1},
		Results: []drift.Result{
			{Outcome: drift.Drift, BreaksAssumeRole: true},
			{Outcome: drift.Drift},
			{Outcome: drift.UpdateFailed, BreaksAssumeRole: true},
		}}

	t.Run("bad payload touches nothing", func(t *testing.T) {
		r := &fakeRunner{report: rep}
		if _, err := handler.New(r, nil, nil, nil, "f", "").Invoke(context.Background(), []byte(`{"mode":"yes"}`)); !errors.Is(err, handler.ErrBadEvent) {
			t.Fatalf("err = %v", err)
		}
		if r.got != nil {
			t.Fatal("engine ran on a bad payload")
		}
	})

	t.Run("metrics line and error after the report", func(t *testing.T) {
		var metrics bytes.Buffer
		runErr := errors.New("update failed")
		r := &fakeRunner{report: rep, err: runErr}
		got, err := handler.New(r, nil, nil, &metrics, "drift-fn", "").Invoke(context.Background(), readEvent(t, "scheduled.json"))
		if !errors.Is(err, runErr) || got != rep {
			t.Fatalf("Invoke = %v, %v", got, err)
		}
		var line map[string]any
		if err := json.Unmarshal(metrics.Bytes(), &line); err != nil {
			t.Fatalf("metrics line %q: %v", metrics.String(), err)
		}
		want := map[string]float64{"ProvidersChecked": 3, "Drift": 2, "BreakingDrift": 2, "Updated": 0, "ProbeFailed": 0, "UpdateFailed": 1}
		for k, v := range want {
			if line[k] != v {
				t.Errorf("metric %s = %v, want %v", k, line[k], v)
			}
		}
		if line["FunctionName"] != "drift-fn" {
			t.Errorf("FunctionName = %v", line["FunctionName"])
		}
		aws := line["_aws"].(map[string]any)
		cw := aws["CloudWatchMetrics"].([]any)[0].(map[string]any)
		if cw["Namespace"] != handler.MetricNamespace || len(cw["Metrics"].([]any)) != 7 {
			t.Errorf("EMF metadata %v", cw)
		}
	})
}

func TestTransitionsSentMetric(t *testing.T) {
	rep := &drift.Report{Counts: map[drift.Outcome]int{}}
	sent := map[alert.Transition]int{alert.TransitionNew: 3, alert.TransitionResolved: 1}
	var buf bytes.Buffer
	if err := handler.WriteMetrics(&buf, "drift-fn", rep, sent); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d EMF lines, want the counts and one per transition sent:\n%s", len(lines), buf.String())
	}
	got := map[string]float64{}
	for _, l := range lines[1:] {
		var line struct {
			AWS struct {
				CloudWatchMetrics []struct {
					Namespace  string
					Dimensions [][]string
					Metrics    []struct{ Name, Unit string }
				}
			} `json:"_aws"`
			FunctionName, Transition string
			TransitionsSent          float64
		}
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatal(err)
		}
		cw := line.AWS.CloudWatchMetrics[0]
		if cw.Namespace != handler.MetricNamespace || fmt.Sprint(cw.Dimensions) != "[[FunctionName Transition]]" || cw.Metrics[0].Name != "TransitionsSent" || line.FunctionName != "drift-fn" {
			t.Errorf("EMF line %s", l)
		}
		got[line.Transition] = line.TransitionsSent
	}
	if fmt.Sprint(got) != "map[new:3 resolved:1]" {
		t.Errorf("TransitionsSent %v", got)
	}
}

// bigReport is a report of inSync in-sync results and one drift whose Url
// pads the response to exactly size bytes (ResponseSize).
func bigReport(t *testing.T, inSync, size int) *drift.Report {
	t.Helper()
	rep := &drift.Report{Mode: config.ModeRemediate, Checked: inSync + 1, Counts: map[drift.Outcome]int{drift.InSync: inSync, drift.Drift: 1}}
	tp := "abababababababababababababababababababab"
	for i := range inSync {
		rep.Results = append(rep.Results, drift.Result{
			ProviderARN: fmt.Sprintf("arn:aws:iam::%012d:oidc-provider/token.actions.githubusercontent.com", i),
			URL:         "token.actions.githubusercontent.com", Outcome: drift.InSync, Severity: drift.SeverityNone,
			LiveThumbprints: []string{tp}, StoredThumbprints: []string{tp}, NewThumbprints: []string{}, PubliclyTrusted: true,
		})
	}
	rep.Results = append(rep.Results, drift.Result{ProviderARN: "arn:aws:iam::123456789012:oidc-provider/idp.example", Outcome: drift.Drift,
		Severity: drift.SeverityCritical, BreaksAssumeRole: true, Detail: "not applied"})
	n := handler.ResponseSize(rep)
	if n > size {
		t.Fatalf("report of %d in-sync results is %d bytes, over %d", inSync, n, size)
	}
	rep.Results[inSync].URL = "idp.example/" + strings.Repeat("x", size-n-len("idp.example/"))
	if n := handler.ResponseSize(rep); n != size {
		t.Fatalf("padded report is %d bytes, want %d", n, size)
	}
	return rep
}

// The response stays within Lambda's 6 MB (6,291,556 bytes, as the runtime
// posts it): a report at the limit is returned whole; one byte past it,
// in-sync results leave it and results_omitted counts them.
func TestInvokeBoundsTheResponse(t *testing.T) {
	const inSync = 14400 // about 6.2 MB of in-sync results
	tests := []struct {
		name string
		size int
		want func(*testing.T, *drift.Report)
	}{
		{"at Lambda's limit", 6_291_556, func(t *testing.T, r *drift.Report) {
			if r.ResultsOmitted != 0 || len(r.Results) != inSync+1 {
				t.Errorf("results_omitted %d, %d results", r.ResultsOmitted, len(r.Results))
			}
		}},
		{"one byte past it", 6_291_557, func(t *testing.T, r *drift.Report) {
			if r.ResultsOmitted < 1 || r.ResultsOmitted > 2 || len(r.Results)+r.ResultsOmitted != inSync+1 || len(r.OmittedGroups) != 0 {
				t.Errorf("results_omitted %d, %d results, groups %v; want one or two in-sync results left out", r.ResultsOmitted, len(r.Results), r.OmittedGroups)
			}
		}},
	}
	if handler.MaxResponseBytes != 6_291_556 {
		t.Fatalf("MaxResponseBytes %d, want Lambda's 6,291,556", handler.MaxResponseBytes)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := bigReport(t, inSync, tt.size)
			got, err := handler.New(&fakeRunner{report: rep}, nil, nil, nil, "f", "").Invoke(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if n := handler.ResponseSize(got); n > handler.MaxResponseBytes {
				t.Fatalf("response of %d bytes, over %d", n, handler.MaxResponseBytes)
			}
			if last := got.Results[len(got.Results)-1]; last.Outcome != drift.Drift || got.Counts[drift.InSync] != inSync {
				t.Errorf("the drift result left, or counts changed: %v", got.Counts)
			}
			tt.want(t, got)
		})
	}
}

// TestMetricsCountReverted: a revert is drift left in place (DESIGN.md:
// severity as drift), and breaking when the thumbprint is enforced.
func TestMetricsCountReverted(t *testing.T) {
	rep := &drift.Report{Checked: 2, Counts: map[drift.Outcome]int{drift.Reverted: 1, drift.Drift: 1}, Results: []drift.Result{
		{ProviderARN: "arn:aws:iam::123456789012:oidc-provider/a", Outcome: drift.Reverted, BreaksAssumeRole: true},
		{ProviderARN: "arn:aws:iam::123456789012:oidc-provider/b", Outcome: drift.Drift},
	}}
	if m := handler.Metrics(rep); m["Drift"] != 2 || m["BreakingDrift"] != 1 {
		t.Errorf("Metrics = %v, want Drift 2 (one reverted), BreakingDrift 1", m)
	}
}
