package main_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

// TestResponseFitsWithThousandsOfFailingProviders: the real function binary,
// through the Runtime API (which fails a response over Lambda's 6,291,556
// bytes, as Lambda does), checks 5,000 providers whose identity provider
// answers 503 with a 60 KB reason phrase. Every detail is cut to 1 KiB; the
// problems alone are still over 6 MB, so those past the bound leave,
// summarised in omitted_groups, and the invocation succeeds.
func TestResponseFitsWithThousandsOfFailingProviders(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the function binary over 5,000 providers")
	}
	const n = 5_000
	ctx := context.Background()
	m := peertest.Moto(t)

	reason := strings.Repeat("Service Unavailable ", 3_000) // 60 KB
	root, _ := testidp.NewRoot("Bound Test Root")
	leaf, _ := root.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	s, err := testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf, root)},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			writeRaw(buf, "HTTP/1.1 503 "+reason+"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		})})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ps := make([]testpeer.NewProvider, n)
	for i := range ps {
		ps[i] = testpeer.NewProvider{Account: testpeer.AccountID, URL: fmt.Sprintf("%s/tenant-%04d", s.Host(), i), Thumbprints: []string{strings.Repeat("0b", 20)}}
	}
	if _, err := m.CreateProviders(ctx, ps, 4); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	env, err := testpeer.FunctionEnv(m, dir, "PROBE_TIMEOUT=20s", "CONCURRENCY=16")
	if err != nil {
		t.Fatal(err)
	}
	fn, err := testpeer.StartFunction(buildBootstrap(t), dir, env)
	if err != nil {
		t.Fatal(err)
	}
	defer fn.Stop()
	if _, err := fn.Ready(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	res, err := fn.Invoke(ctx, []byte(`{"mode": "report"}`), 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if res.Error != nil {
		t.Fatalf("invocation failed: %s: %s", res.Error.ErrorType, res.ErrorMessage())
	}
	if len(res.Response) > testpeer.MaxResponseBytes {
		t.Fatalf("response of %d bytes", len(res.Response))
	}
	var rep drift.Report
	if err := json.Unmarshal(res.Response, &rep); err != nil {
		t.Fatal(err)
	}
	t.Logf("response %d bytes: %d results, %d omitted, groups %v", len(res.Response), len(rep.Results), rep.ResultsOmitted, rep.OmittedGroups)
	if rep.Checked != n || rep.Counts[drift.ProbeFailed] != n {
		t.Fatalf("checked %d, counts %v; want %d probe-failed", rep.Checked, rep.Counts, n)
	}
	want := []drift.OmittedGroup{{Outcome: drift.ProbeFailed, Host: s.Host(), Count: rep.ResultsOmitted}}
	if rep.ResultsOmitted == 0 || len(rep.Results)+rep.ResultsOmitted != n || fmt.Sprint(rep.OmittedGroups) != fmt.Sprint(want) {
		t.Errorf("%d results, %d omitted, omitted_groups %v; want problems past the bound in %v", len(rep.Results), rep.ResultsOmitted, rep.OmittedGroups, want)
	}
	for _, r := range rep.Results {
		if len(r.Detail) > alert.MaxDetailBytes || !strings.Contains(r.Detail, "503 Service Unavailable") {
			t.Fatalf("detail of %d bytes: %.200s", len(r.Detail), r.Detail)
		}
	}
}

func writeRaw(w *bufio.ReadWriter, s string) {
	_, _ = w.WriteString(s)
	_ = w.Flush()
}
