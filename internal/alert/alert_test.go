package alert_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
)

var update = flag.Bool("update", false, "rewrite golden files")

const arn = "arn:aws:iam::123456789012:oidc-provider/idp.corp.example:8443/tenant/a"

// golden compares got (JSON) with testdata/name as JSON values.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		var v any
		if err := json.Unmarshal(got, &v); err != nil {
			t.Fatal(err)
		}
		pretty, _ := json.MarshalIndent(v, "", "  ")
		if err := os.WriteFile(path, append(pretty, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("golden %s is not JSON: %v", path, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s differs:\ngot  %s\nwant %s", path, got, want)
	}
}

func TestFixCommandQuotesOddARNs(t *testing.T) {
	got := alert.FixCommand("arn:aws:iam::1:oidc-provider/h/a b", []string{"x"})
	if !strings.Contains(got, "'arn:aws:iam::1:oidc-provider/h/a b'") {
		t.Fatalf("FixCommand = %s", got)
	}
}
