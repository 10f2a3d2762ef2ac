package samtemplate

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/handler"
	"github.com/thumbprint-drift/thumbprint-drift/internal/rehearsal"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

// Tests of the CloudWatch dashboard: its body is valid JSON once CloudFormation
// substitutes the Fn::Sub variables, and it shows what DESIGN.md lists: checks
// and outcomes over time, breaking drift, transitions sent, run duration,
// errors, dead-letter depth.

type dashboardWidget struct {
	Type       string `json:"type"`
	X          int    `json:"x"`
	Y          int    `json:"y"`
	Width      int    `json:"width"`
	Height     int    `json:"height"`
	Properties struct {
		Title   string  `json:"title"`
		Region  string  `json:"region"`
		View    string  `json:"view"`
		Stacked bool    `json:"stacked"`
		Stat    string  `json:"stat"`
		Period  int     `json:"period"`
		Metrics [][]any `json:"metrics"`
		Annots  struct {
			Horizontal []struct {
				Label string  `json:"label"`
				Value float64 `json:"value"`
			} `json:"horizontal"`
		} `json:"annotations"`
	} `json:"properties"`
}

// metricID is a metric row without its options: namespace, name, then
// dimension name and value pairs.
func metricID(row []any) string {
	var parts []string
	for _, v := range row {
		if s, ok := v.(string); ok {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " ")
}

// dashboard returns the template's dashboard widgets, its body substituted the
// way CloudFormation would in the stack pseudoParameters describes.
func dashboard(t *testing.T, tp *template) (fn, queue string, widgets []dashboardWidget) {
	t.Helper()
	ids := tp.resourcesOfType("AWS::CloudWatch::Dashboard")
	if len(ids) != 1 {
		t.Fatalf("dashboards = %v, want one", ids)
	}
	// The body as CloudFormation substituted it in a stack moto created.
	st := tp.deploy(t, "", nil)
	fn = st.Outputs["DriftCheckFunctionName"]
	queueArn := st.Outputs["DeadLetterQueueArn"]
	queue = queueArn[strings.LastIndex(queueArn, ":")+1:]
	name := st.Outputs["DashboardName"]
	if name != st.Name+"-"+testpeer.Region {
		t.Errorf("DashboardName = %q, want <stack>-<region>: dashboards are global to the account", name)
	}
	cfg := engine(t).Config()
	out, err := rehearsal.Query(context.Background(), cfg, "monitoring", "GetDashboard", "2010-08-01", map[string]string{"DashboardName": name})
	if err != nil {
		t.Fatalf("get dashboard %s: %v", name, err)
	}
	var answer struct {
		Body string `xml:"GetDashboardResult>DashboardBody"`
	}
	if err := xml.Unmarshal(out, &answer); err != nil {
		t.Fatalf("GetDashboard answer: %v\n%s", err, out)
	}
	body := answer.Body
	if fn == "" || queue == "" || body == "" {
		t.Fatalf("function %q, queue %q, dashboard body %q: want all from the stack", fn, queue, body)
	}
	if strings.Contains(body, "${") {
		t.Errorf("DashboardBody keeps an unsubstituted variable: %s", body)
	}
	var doc struct {
		Widgets []dashboardWidget `json:"widgets"`
	}
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("DashboardBody is not the expected JSON: %v\n%s", err, body)
	}
	return fn, queue, doc.Widgets
}

func TestDashboard(t *testing.T) {
	tp := loadTemplate(t)
	fn, queue, widgets := dashboard(t, tp)
	ns := handler.MetricNamespace
	own := func(name string, dims ...string) string {
		return strings.Join(append([]string{ns, name, "FunctionName", fn}, dims...), " ")
	}
	lambda := func(name string) string { return "AWS/Lambda " + name + " FunctionName " + fn }
	stateMachine := "arn:aws:states:" + testpeer.Region + ":" + testpeer.AccountID + ":stateMachine:" + tp.deploy(t, "", nil).Name + "-shards"
	states := func(name string) string { return "AWS/States " + name + " StateMachineArn " + stateMachine }

	byTitle := map[string][]string{}
	for _, w := range widgets {
		for _, row := range w.Properties.Metrics {
			byTitle[w.Properties.Title] = append(byTitle[w.Properties.Title], metricID(row))
		}
	}

	var outcomes []string
	for name := range handler.Metrics(&drift.Report{}) {
		if name != "BreakingDrift" {
			outcomes = append(outcomes, own(name))
		}
	}
	slices.Sort(outcomes)
	tests := []struct {
		title string // a word of the widget's title
		want  []string
	}{
		// Every count the function writes after a run, breaking drift on its own.
		{"outcomes", outcomes},
		{"Breaking drift", []string{own("BreakingDrift")}},
		{"Transitions", []string{
			own("TransitionsSent", "Transition", "new"), own("TransitionsSent", "Transition", "changed"),
			own("TransitionsSent", "Transition", "reminder"), own("TransitionsSent", "Transition", "resolved"),
			own("TransitionsSent", "Transition", "applied"),
		}},
		{"duration", []string{lambda("Duration")}},
		{"Errors", []string{lambda("Errors")}},
		{"Dead-letter", []string{"AWS/SQS ApproximateNumberOfMessagesVisible QueueName " + queue}},
		// Sharded runs: the state machine's executions by outcome, by the
		// name the template gives it.
		{"executions", []string{states("ExecutionsStarted"), states("ExecutionsSucceeded"), states("ExecutionsFailed"),
			states("ExecutionsTimedOut"), states("ExecutionsAborted")}},
	}
	for _, tc := range tests {
		t.Run(tc.title, func(t *testing.T) {
			var found bool
			for title, metrics := range byTitle {
				if !strings.Contains(title, tc.title) {
					continue
				}
				found = true
				for _, m := range tc.want {
					if !slices.Contains(metrics, m) {
						t.Errorf("widget %q lacks metric %q; it has %q", title, m, metrics)
					}
				}
			}
			if !found {
				t.Errorf("no widget titled with %q among %v", tc.title, keys(byTitle))
			}
		})
	}

	t.Run("layout and region", func(t *testing.T) {
		for i, w := range widgets {
			if w.Type != "metric" || w.Properties.Region != testpeer.Region || w.Properties.View != "timeSeries" {
				t.Errorf("widget %q: type %q region %q view %q, want a time series metric widget of the stack's region", w.Properties.Title, w.Type, w.Properties.Region, w.Properties.View)
			}
			if w.X < 0 || w.Width < 1 || w.X+w.Width > 24 || w.Height < 1 {
				t.Errorf("widget %q at x %d width %d height %d: outside the 24-column grid", w.Properties.Title, w.X, w.Width, w.Height)
			}
			for _, o := range widgets[i+1:] {
				if o.X < w.X+w.Width && w.X < o.X+o.Width && o.Y < w.Y+w.Height && w.Y < o.Y+o.Height {
					t.Errorf("widgets %q and %q overlap", w.Properties.Title, o.Properties.Title)
				}
			}
		}
	})
	t.Run("duration shows the timeout", func(t *testing.T) {
		timeout, _ := tp.functionProps(t, functionID)["Timeout"].(int)
		for _, w := range widgets {
			if !strings.Contains(w.Properties.Title, "duration") {
				continue
			}
			var values []float64
			for _, a := range w.Properties.Annots.Horizontal {
				values = append(values, a.Value)
			}
			if !slices.Contains(values, float64(timeout*1000)) {
				t.Errorf("duration widget annotations %v lack the function's timeout %d ms", values, timeout*1000)
			}
		}
	})
	t.Run("breaking drift shows the alarm threshold", func(t *testing.T) {
		threshold := lookup(tp.resource(t, "BreakingDriftAlarm", "AWS::CloudWatch::Alarm"), "Properties", "Threshold")
		for _, w := range widgets {
			if strings.Contains(w.Properties.Title, "Breaking drift") {
				var values []string
				for _, a := range w.Properties.Annots.Horizontal {
					values = append(values, fmt.Sprint(a.Value))
				}
				if !slices.Contains(values, fmt.Sprint(threshold)) {
					t.Errorf("breaking drift annotations %v lack the alarm threshold %v", values, threshold)
				}
			}
		}
	})
	t.Run("output", func(t *testing.T) {
		ids := tp.resourcesOfType("AWS::CloudWatch::Dashboard")
		if got := lookup(tp.doc, "Outputs", "DashboardName", "Value"); !reflect.DeepEqual(got, ref(ids[0])) {
			t.Errorf("output DashboardName = %#v, want Ref %s", got, ids[0])
		}
	})
}

func keys(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
