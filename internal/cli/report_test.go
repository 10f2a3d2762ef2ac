package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
)

// check --output json prints the function's report: every detail at most
// alert.MaxDetailBytes (DESIGN.md "Invocation and result"), and every result,
// since no response bound applies to standard output.
func TestWriteReportCutsDetails(t *testing.T) {
	tests := []struct {
		name   string
		detail string
		cut    bool
	}{
		{"short", "TLS handshake failed", false},
		{"at the bound", strings.Repeat("d", alert.MaxDetailBytes), false},
		{"one past the bound", strings.Repeat("d", alert.MaxDetailBytes+1), true},
		{"an issuer 5 KiB long", "issuer " + strings.Repeat("x", 5<<10) + " does not match", true},
	}
	rep := &drift.Report{Mode: "report", Counts: map[drift.Outcome]int{}}
	for _, tt := range tests {
		rep.Results = append(rep.Results, drift.Result{ProviderARN: "arn:aws:iam::111111111111:oidc-provider/" + tt.name, Outcome: drift.ProbeFailed, Detail: tt.detail})
		rep.Counts[drift.ProbeFailed]++
	}
	rep.Accounts = []drift.AccountSummary{{AccountID: "222222222222", Error: "assume role: " + strings.Repeat("e", 3<<10)}}
	rep.Checked = len(rep.Results)

	var out bytes.Buffer
	if err := WriteReport(&out, rep); err != nil {
		t.Fatal(err)
	}
	var got drift.Report
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("not the report's JSON: %v\n%s", err, out.String()[:200])
	}
	if len(got.Results) != len(tests) {
		t.Fatalf("%d results printed, want all %d", len(got.Results), len(tests))
	}
	for i, tt := range tests {
		d := got.Results[i].Detail
		switch {
		case len(d) > alert.MaxDetailBytes:
			t.Errorf("%s: detail of %d bytes printed", tt.name, len(d))
		case tt.cut && !strings.HasSuffix(d, alert.DetailCutMarker):
			t.Errorf("%s: cut detail without the marker", tt.name)
		case !tt.cut && d != tt.detail:
			t.Errorf("%s: detail within the bound changed", tt.name)
		}
	}
	if e := got.Accounts[0].Error; len(e) > alert.MaxDetailBytes || !strings.HasSuffix(e, alert.DetailCutMarker) {
		t.Errorf("account error of %d bytes printed", len(e))
	}
	if !strings.Contains(out.String(), "\n  \"mode\": \"report\"") {
		t.Errorf("not indented:\n%s", out.String()[:100])
	}
}
