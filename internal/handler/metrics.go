package handler

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
)

// MetricNamespace is the CloudWatch namespace of the function's metrics.
const MetricNamespace = "ThumbprintDrift"

// Metrics are the counts of one run, by CloudWatch metric name.
func Metrics(rep *drift.Report) map[string]int {
	m := map[string]int{
		"ProvidersChecked": rep.Checked - rep.Counts[drift.AccountFailed],
		// A revert is drift left in place (DESIGN.md: severity as drift).
		"Drift":         rep.Counts[drift.Drift] + rep.Counts[drift.Reverted],
		"Updated":       rep.Counts[drift.Updated],
		"ProbeFailed":   rep.Counts[drift.ProbeFailed],
		"UpdateFailed":  rep.Counts[drift.UpdateFailed],
		"BreakingDrift": 0,
		"AccountFailed": rep.Counts[drift.AccountFailed],
	}
	for _, r := range rep.Results {
		// Breaking drift still in place after the run.
		if r.BreaksAssumeRole && (r.Outcome == drift.Drift || r.Outcome == drift.Reverted || r.Outcome == drift.UpdateFailed) {
			m["BreakingDrift"]++
		}
	}
	return m
}

var metricNames = []string{"ProvidersChecked", "Drift", "BreakingDrift", "Updated", "ProbeFailed", "UpdateFailed", "AccountFailed"}

// WriteMetrics writes one CloudWatch Embedded Metric Format line with the run's
// counts, dimension FunctionName, then one line per transition sent:
// TransitionsSent (sent, the results of delivered messages by transition),
// dimensions FunctionName and Transition.
func WriteMetrics(w io.Writer, functionName string, rep *drift.Report, sent map[alert.Transition]int) error {
	if err := writeCounts(w, functionName, rep); err != nil {
		return err
	}
	for _, t := range alert.Transitions {
		n := sent[t]
		if n == 0 {
			continue
		}
		line := map[string]any{
			"_aws": map[string]any{
				"Timestamp": time.Now().UnixMilli(),
				"CloudWatchMetrics": []map[string]any{{
					"Namespace":  MetricNamespace,
					"Dimensions": [][]string{{"FunctionName", "Transition"}},
					"Metrics":    []map[string]string{{"Name": "TransitionsSent", "Unit": "Count"}},
				}},
			},
			"FunctionName":    functionName,
			"Transition":      string(t),
			"TransitionsSent": n,
		}
		b, err := json.Marshal(line)
		if err != nil {
			return fmt.Errorf("encode metrics: %w", err)
		}
		if _, err := fmt.Fprintf(w, "%s\n", b); err != nil {
			return err
		}
	}
	return nil
}

func writeCounts(w io.Writer, functionName string, rep *drift.Report) error {
	type metric struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	}
	defs := make([]metric, 0, len(metricNames))
	for _, n := range metricNames {
		defs = append(defs, metric{Name: n, Unit: "Count"})
	}
	line := map[string]any{
		"_aws": map[string]any{
			"Timestamp": time.Now().UnixMilli(),
			"CloudWatchMetrics": []map[string]any{{
				"Namespace":  MetricNamespace,
				"Dimensions": [][]string{{"FunctionName"}},
				"Metrics":    defs,
			}},
		},
		"FunctionName": functionName,
	}
	for n, v := range Metrics(rep) {
		line[n] = v
	}
	b, err := json.Marshal(line)
	if err != nil {
		return fmt.Errorf("encode metrics: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
