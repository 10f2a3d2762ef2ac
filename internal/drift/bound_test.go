package drift

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
)

func boundReport(inSync, problems int) *Report {
	var results []Result
	placed := 0
	for i := range inSync + problems {
		r := Result{ProviderARN: fmt.Sprintf("arn:aws:iam::123456789012:oidc-provider/h%04d.example.com", i), URL: "h.example.com",
			Outcome: InSync, Severity: SeverityNone, LiveThumbprints: []string{strings.Repeat("ab", 20)}, StoredThumbprints: []string{strings.Repeat("ab", 20)},
			NewThumbprints: []string{}, Detail: "in sync"}
		if placed < inSync && (i%2 == 0 || problems == 0) {
			placed++
		} else {
			r.Outcome, r.Severity, r.Detail = Drift, SeverityCritical, "not applied"
			problems--
		}
		results = append(results, r)
	}
	return newReport(config.ModeRemediate, results, nil)
}

func reportSize(t *testing.T, r *Report) int {
	t.Helper()
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return len(js)
}

func TestReportBound(t *testing.T) {
	full := reportSize(t, boundReport(40, 10))
	tests := []struct {
		name        string
		inSync      int
		problems    int
		max         int
		wantOmitted int
		wantFits    bool
	}{
		{"under the bound", 40, 10, full + 1, 0, true},
		{"exactly at the bound", 40, 10, full, 0, true},
		{"one byte over: in-sync results leave", 40, 10, full - 1, 2, true},
		{"far over: in-sync results leave, problems stay", 40, 10, full / 10, 40, false},
		{"only problems: all stay", 0, 10, 100, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := boundReport(tt.inSync, tt.problems)
			counts := fmt.Sprint(r.Counts)
			problems := 0
			for _, res := range r.Results {
				if res.Outcome != InSync {
					problems++
				}
			}
			r.Bound(tt.max)
			size := reportSize(t, r)
			if (size <= tt.max) != tt.wantFits {
				t.Errorf("%d bytes, bound %d, want fits %v", size, tt.max, tt.wantFits)
			}
			if tt.wantOmitted == 0 && r.ResultsOmitted != 0 || tt.wantOmitted > 0 && (r.ResultsOmitted == 0 || r.ResultsOmitted > tt.wantOmitted) {
				t.Errorf("results_omitted %d, want up to %d", r.ResultsOmitted, tt.wantOmitted)
			}
			if len(r.Results)+r.ResultsOmitted != tt.inSync+tt.problems {
				t.Errorf("%d results + %d omitted, want %d", len(r.Results), r.ResultsOmitted, tt.inSync+tt.problems)
			}
			left := 0
			for _, res := range r.Results {
				if res.Outcome != InSync {
					left++
				}
			}
			if left != problems {
				t.Errorf("%d problem results left, want all %d", left, problems)
			}
			if fmt.Sprint(r.Counts) != counts || r.Checked != tt.inSync+tt.problems {
				t.Errorf("counts %v checked %d changed", r.Counts, r.Checked)
			}
			if tt.wantOmitted > 0 && tt.wantFits {
				// Left out as few as needed: one more result would not fit.
				back := *r
				back.Results = append(append([]Result{}, r.Results...), boundReport(1, 0).Results[0])
				back.ResultsOmitted--
				if s := reportSize(t, &back); s <= tt.max {
					t.Errorf("left out more than needed: %d bytes with one more", s)
				}
			}
		})
	}
}
