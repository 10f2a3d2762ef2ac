package main_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

var update = flag.Bool("update", false, "rewrite golden files")

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// buildBootstrap builds this function for the host, once per test binary.
func buildBootstrap(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "drift-check-test"); buildErr != nil {
			return
		}
		buildErr = testpeer.BuildFunction(context.Background(), filepath.Join("..", ".."), filepath.Join(buildDir, "bootstrap"))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "bootstrap")
}

// syncBuffer collects a process's output safely.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// function is a running bootstrap process driven through a local Runtime API.
type function struct {
	rt   *testpeer.Runtime
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan error
}

func startFunction(t *testing.T, bin string, env []string) *function {
	t.Helper()
	rt, err := testpeer.StartRuntime()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	f := &function{rt: rt, out: &syncBuffer{}, done: make(chan error, 1)}
	f.cmd = exec.Command(bin)
	// env may name the function; the last of duplicate keys wins.
	f.cmd.Env = append(append([]string{"AWS_LAMBDA_FUNCTION_NAME=drift-check"}, env...), "AWS_LAMBDA_RUNTIME_API="+rt.Addr, "HOME="+t.TempDir())
	f.cmd.Stdout, f.cmd.Stderr = f.out, f.out
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { f.done <- f.cmd.Wait() }()
	t.Cleanup(func() {
		_ = f.cmd.Process.Kill()
		<-f.done
	})
	return f
}

func (f *function) invoke(t *testing.T, payload []byte) testpeer.Invocation {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := f.rt.Invoke(ctx, payload, 30*time.Second)
	if err != nil {
		t.Fatalf("invoke: %v\nfunction output:\n%s", err, f.out.String())
	}
	return res
}

func event(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type report struct {
	Mode    string         `json:"mode"`
	Checked int            `json:"checked"`
	Counts  map[string]int `json:"counts"`
	Results []struct {
		ProviderARN      string   `json:"provider_arn"`
		Outcome          string   `json:"outcome"`
		NewThumbprints   []string `json:"new_thumbprints"`
		BreaksAssumeRole bool     `json:"breaks_assume_role"`
	} `json:"results"`
}

func TestBootstrapThroughRuntimeAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the function binary")
	}
	ctx := context.Background()
	m := peertest.Moto(t)
	q, err := testpeer.NewAlertQueue(ctx, m.Config(), "drift")
	if err != nil {
		t.Fatal(err)
	}
	iamc := iam.NewFromConfig(m.Config())

	// A "public" CA the function trusts through SSL_CERT_FILE, a private one it does not.
	pubRoot, _ := testidp.NewRoot("Demo Public Root")
	pubInt, _ := pubRoot.Intermediate("Demo Public Intermediate")
	privRoot, _ := testidp.NewRoot("Corp Private Root")
	certFile := filepath.Join(t.TempDir(), "roots.pem")
	if err := os.WriteFile(certFile, pubRoot.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	serve := func(ca *testidp.CA, path string) (*testidp.Server, string) {
		leaf, err := ca.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		s, err := testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf, ca)}, Path: path})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, testidp.Thumbprint(ca.DER)
	}
	old := strings.Repeat("0a", 20)
	create := func(url string, tps ...string) string {
		outARN, err := testpeer.CreateProvider(ctx, iamc, &iam.CreateOpenIDConnectProviderInput{Url: aws.String("https://" + url), ThumbprintList: tps, ClientIDList: []string{"sts.amazonaws.com"}})
		if err != nil {
			t.Fatal(err)
		}
		return outARN
	}
	stored := func(arn string) string {
		out, err := iamc.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(out.ThumbprintList, ",")
	}
	pubInt2, _ := pubRoot.Intermediate("Demo Public Intermediate 2")
	sSync, tpSync := serve(pubInt2, "/a-in-sync")
	sPub, tpPub := serve(pubInt, "/b-public")
	sPriv, tpPriv := serve(privRoot, "/c-private")
	arnSync := create(sSync.URL(), tpSync)
	arnPub := create(sPub.URL(), old)
	arnPriv := create(sPriv.URL(), old)

	env := append(os.Environ(), m.Env()...)
	env = append(env, "SSL_CERT_FILE="+certFile, "SNS_TOPIC_ARN="+q.TopicARN, "PROBE_TIMEOUT=5s", "AWS_LAMBDA_LOG_FORMAT=JSON")
	bin := buildBootstrap(t)
	fn := startFunction(t, bin, env)

	// The manual report: nothing written, nothing published.
	res := fn.invoke(t, event(t, "manual-report.json"))
	if res.Error != nil {
		t.Fatalf("manual report failed: %+v\n%s", res.Error, fn.out.String())
	}
	var rep report
	if err := json.Unmarshal(res.Response, &rep); err != nil {
		t.Fatalf("report %s: %v", res.Response, err)
	}
	if rep.Mode != "report" || rep.Checked != 3 || rep.Counts["drift"] != 2 || rep.Counts["in-sync"] != 1 {
		t.Fatalf("manual report %s", res.Response)
	}
	if stored(arnPub) != old || stored(arnPriv) != old {
		t.Fatal("the manual report wrote")
	}
	if msgs, _ := q.Drain(ctx); len(msgs) != 0 {
		t.Fatalf("the manual report published %d messages", len(msgs))
	}

	// The schedule: remediate where safe, alert on the rest.
	res = fn.invoke(t, event(t, "scheduled.json"))
	if res.Error != nil {
		t.Fatalf("scheduled run failed: %+v\n%s", res.Error, fn.out.String())
	}
	if got, want := stored(arnPub), tpPub+","+old; got != want {
		t.Errorf("public provider = %s, want %s", got, want)
	}
	if got := stored(arnPriv); got != old {
		t.Errorf("private provider written: %s", got)
	}
	if got := stored(arnSync); got != tpSync {
		t.Errorf("in-sync provider touched: %s", got)
	}
	msgs, err := q.Drain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, msg := range msgs {
		got[msg.Attr("provider_arn")] = msg.Attr("outcome") + "/" + msg.Attr("severity")
	}
	if want := map[string]string{arnPub: "updated/info", arnPriv: "drift/critical"}; !reflect.DeepEqual(got, want) {
		t.Errorf("messages %v, want %v", got, want)
	}

	// The report, normalised (ports and generated thumbprints vary), against
	// the golden file.
	norm := string(res.Response)
	for from, to := range map[string]string{
		sSync.Host(): "IDP_IN_SYNC", sPub.Host(): "IDP_PUBLIC", sPriv.Host(): "IDP_PRIVATE",
		tpSync: "THUMBPRINT_IN_SYNC", tpPub: "THUMBPRINT_PUBLIC", tpPriv: "THUMBPRINT_PRIVATE",
	} {
		norm = strings.ReplaceAll(norm, from, to)
	}
	var normRep map[string]any
	if err := json.Unmarshal([]byte(norm), &normRep); err != nil {
		t.Fatal(err)
	}
	results := normRep["results"].([]any)
	for _, r := range results {
		if res := r.(map[string]any); res["first_seen"] != nil {
			res["first_seen"] = "FIRST_SEEN" // the run's time, without a state table
		}
	}
	sort.Slice(results, func(i, j int) bool {
		return results[i].(map[string]any)["provider_arn"].(string) < results[j].(map[string]any)["provider_arn"].(string)
	})
	golden(t, "scheduled-report.golden.json", normRep)

	// Logs: one JSON line per provider decision and one EMF metrics line.
	var decisions, emf int
	for _, line := range strings.Split(fn.out.String(), "\n") {
		if strings.Contains(line, `"provider checked"`) {
			decisions++
			var v map[string]any
			if err := json.Unmarshal([]byte(line), &v); err != nil || v["requestId"] == nil {
				t.Errorf("decision log line not JSON with a request id: %s", line)
			}
		}
		// Both runs leave the private provider's breaking drift in place.
		if strings.Contains(line, `"CloudWatchMetrics"`) && strings.Contains(line, `"BreakingDrift":1`) {
			emf++
		}
	}
	if decisions != 6 || emf != 2 {
		t.Errorf("%d decision lines (want 6 over two runs), %d EMF lines with BreakingDrift 1 (want 2)\n%s", decisions, emf, fn.out.String())
	}

	// A second schedule right after: nothing left to do, nothing written.
	res = fn.invoke(t, event(t, "scheduled.json"))
	if err := json.Unmarshal(res.Response, &rep); err != nil || res.Error != nil {
		t.Fatalf("second run: %v %+v", err, res.Error)
	}
	if rep.Counts["in-sync"] != 2 || rep.Counts["drift"] != 1 || rep.Counts["updated"] != 0 {
		t.Errorf("second run counts %v", rep.Counts)
	}
}

func TestBootstrapPublishFailureIsAnInvocationError(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the function binary")
	}
	ctx := context.Background()
	m := peertest.Moto(t)
	iamc := iam.NewFromConfig(m.Config())
	port, _ := testpeer.FreePort()
	unreachable := "127.0.0.1:" + strconv.Itoa(port)
	outARN, err := testpeer.CreateProvider(ctx, iamc, &iam.CreateOpenIDConnectProviderInput{Url: aws.String("https://" + unreachable), ThumbprintList: []string{strings.Repeat("0a", 20)}})
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), m.Env()...)
	env = append(env, "SNS_TOPIC_ARN=arn:aws:sns:us-east-1:123456789012:no-such-topic", "PROBE_TIMEOUT=2s")
	fn := startFunction(t, buildBootstrap(t), env)
	res := fn.invoke(t, event(t, "scheduled.json"))
	if res.Error == nil || !strings.Contains(res.ErrorMessage(), "publish") || !strings.Contains(res.ErrorMessage(), outARN) {
		t.Fatalf("invocation = %+v, want an error naming the failed publish and provider\n%s", res, fn.out.String())
	}
}

// TestBootstrapStateTable: with STATE_TABLE the deployed binary alerts a
// problem once (new), stays silent while it persists, and says at start-up
// where its state is.
func TestBootstrapStateTable(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the function binary")
	}
	ctx := context.Background()
	m := peertest.Moto(t)
	q, err := testpeer.NewAlertQueue(ctx, m.Config(), "drift")
	if err != nil {
		t.Fatal(err)
	}
	if err := testpeer.CreateStateTable(ctx, m.Config(), "drift-state"); err != nil {
		t.Fatal(err)
	}
	ca, _ := testidp.NewRoot("Corp Private Root")
	leaf, _ := ca.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	s, err := testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf, ca)}, Path: "/private"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	outARN, err := testpeer.CreateProvider(ctx, iam.NewFromConfig(m.Config()), &iam.CreateOpenIDConnectProviderInput{
		Url: aws.String("https://" + s.URL()), ThumbprintList: []string{strings.Repeat("0a", 20)}})
	if err != nil {
		t.Fatal(err)
	}
	arn := outARN
	env := append(os.Environ(), m.Env()...)
	env = append(env, "SNS_TOPIC_ARN="+q.TopicARN, "STATE_TABLE=drift-state", "PROBE_TIMEOUT=5s")
	fn := startFunction(t, buildBootstrap(t), env)

	for i, want := range []string{"new", ""} { // then silent while the problem persists
		res := fn.invoke(t, event(t, "scheduled.json"))
		if res.Error != nil {
			t.Fatalf("run %d: %+v\n%s", i+1, res.Error, fn.out.String())
		}
		var rep struct {
			Results []struct {
				ProviderARN string `json:"provider_arn"`
				Transition  string `json:"transition"`
				FirstSeen   string `json:"first_seen"`
			} `json:"results"`
		}
		if err := json.Unmarshal(res.Response, &rep); err != nil || len(rep.Results) != 1 {
			t.Fatalf("run %d: report %s", i+1, res.Response)
		}
		if r := rep.Results[0]; r.ProviderARN != arn || r.Transition != want || r.FirstSeen == "" {
			t.Errorf("run %d: result %+v, want transition %q and first_seen", i+1, r, want)
		}
		msgs, err := q.Drain(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if (len(msgs) == 1) != (want != "") || len(msgs) > 1 {
			t.Errorf("run %d: %d messages for transition %q", i+1, len(msgs), want)
		}
	}
	if logs := fn.out.String(); !strings.Contains(logs, "alert state in DynamoDB table drift-state") || strings.Contains(logs, "STATE_TABLE is empty") {
		t.Errorf("start-up log does not name the state table:\n%s", logs)
	}
}

func TestBootstrapBadEnvironmentStopsStartUp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the function binary")
	}
	bin := buildBootstrap(t)
	for _, tt := range []struct{ name, env, variable string }{
		{"concurrency", "CONCURRENCY=0", "CONCURRENCY"},
		{"mode", "DRIFT_MODE=fix", "DRIFT_MODE"},
		{"timeout", "PROBE_TIMEOUT=ten", "PROBE_TIMEOUT"},
		{"handshakes", "PROBE_HANDSHAKES=9", "PROBE_HANDSHAKES"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// No AWS endpoint at all: a call would fail loudly; none must be made.
			env := append(os.Environ(), tt.env, "AWS_ENDPOINT_URL=http://127.0.0.1:1", "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=x")
			fn := startFunction(t, bin, env)
			select {
			case err := <-fn.done:
				fn.done <- err
				if err == nil {
					t.Fatal("bootstrap exited 0 on a bad environment")
				}
			case <-time.After(30 * time.Second):
				t.Fatal("bootstrap kept running with a bad environment")
			}
			if fn.rt.Polls() != 0 {
				t.Error("bootstrap asked for an event despite a bad environment")
			}
			if out := fn.out.String(); !strings.Contains(out, tt.variable) || !strings.Contains(out, "bad configuration") {
				t.Errorf("output does not name %s:\n%s", tt.variable, out)
			}
		})
	}
}

// golden compares v with testdata/name as JSON values.
func golden(t *testing.T, name string, v any) {
	t.Helper()
	path := filepath.Join("testdata", name)
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wantRaw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	var want any
	if err := json.Unmarshal(wantRaw, &want); err != nil {
		t.Fatal(err)
	}
	var gotV any
	_ = json.Unmarshal(got, &gotV)
	if !reflect.DeepEqual(gotV, want) {
		t.Fatalf("%s differs:\ngot  %s\nwant %s", path, got, wantRaw)
	}
}

// withProvider returns the sample event name naming arn: wherever the
// CloudTrail record carries openIDConnectProviderArn (the request's, or a
// create's response).
func withProvider(t *testing.T, name, arn string) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(event(t, name), &ev); err != nil {
		t.Fatal(err)
	}
	detail := ev["detail"].(map[string]any)
	n := 0
	for _, k := range []string{"requestParameters", "responseElements"} {
		if m, ok := detail[k].(map[string]any); ok {
			if _, ok := m["openIDConnectProviderArn"]; ok {
				m["openIDConnectProviderArn"] = arn
				n++
			}
		}
	}
	if n != 1 {
		t.Fatalf("%s: %d provider ARNs replaced, want 1", name, n)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ownFunction is the function name whose execution role session made the
// update in events/cloudtrail-own-update.json.
const ownFunction = "thumbprint-drift-DriftCheckFunction-Ab3dEf6hIj9k"

// TestBootstrapCloudTrailEvents invokes the real function with each sample
// CloudTrail event, pointed at one of several drifted providers: only that
// provider is read, probed, written and alerted. The function's own update
// touches nothing: no AWS call, no handshake, no message.
func TestBootstrapCloudTrailEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the function binary")
	}
	ctx := context.Background()
	m := peertest.Moto(t)
	q, err := testpeer.NewAlertQueue(ctx, m.Config(), "drift-events")
	if err != nil {
		t.Fatal(err)
	}
	// Every AWS call of the function passes this proxy, which counts them.
	proxy, err := testpeer.StartFaultProxy(m.Endpoint, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	iamc := iam.NewFromConfig(m.Config())

	root, _ := testidp.NewRoot("Events Public Root")
	inter, _ := root.Intermediate("Events Public Intermediate")
	certFile := filepath.Join(t.TempDir(), "roots.pem")
	if err := os.WriteFile(certFile, root.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	leaf, err := inter.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	events := []string{"cloudtrail-create.json", "cloudtrail-update-thumbprint.json", "cloudtrail-tag.json", "cloudtrail-untag.json", "cloudtrail-own-update.json"}
	paths := []string{"/create", "/update", "/tag", "/untag", "/own", "/bystander"}
	idp, err := testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf, inter)}, Path: paths[0], Paths: paths[1:]})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	live := testidp.Thumbprint(inter.DER)

	// Every provider has drifted on a publicly trusted chain: any run that
	// reached one would replace its list.
	old := strings.Repeat("0a", 20)
	arns := make([]string, len(paths))
	for i, p := range paths {
		outARN, err := testpeer.CreateProvider(ctx, iamc, &iam.CreateOpenIDConnectProviderInput{
			Url: aws.String("https://" + idp.Host() + p), ThumbprintList: []string{old}, ClientIDList: []string{"sts.amazonaws.com"}})
		if err != nil {
			t.Fatal(err)
		}
		arns[i] = outARN
	}
	stored := func(arn string) string {
		out, err := iamc.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(out.ThumbprintList, ",")
	}
	lists := func() map[string]string {
		got := map[string]string{}
		for _, arn := range arns {
			got[arn] = stored(arn)
		}
		return got
	}

	env := append(os.Environ(), m.Env()...)
	env = append(env, "AWS_ENDPOINT_URL="+proxy.URL, "SSL_CERT_FILE="+certFile, "SNS_TOPIC_ARN="+q.TopicARN,
		"PROBE_TIMEOUT=5s", "AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_FUNCTION_NAME="+ownFunction)
	fn := startFunction(t, buildBootstrap(t), env)

	for i, name := range events[:4] {
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			before := lists()
			res := fn.invoke(t, withProvider(t, name, arns[i]))
			if res.Error != nil {
				t.Fatalf("invocation failed: %+v\n%s", res.Error, fn.out.String())
			}
			var rep report
			if err := json.Unmarshal(res.Response, &rep); err != nil {
				t.Fatalf("report %s: %v", res.Response, err)
			}
			// Terraform's update makes the provider owned by code: drift,
			// not written (TestBootstrapIaCWriters); the others are fixed.
			outcome := "updated"
			if name == "cloudtrail-update-thumbprint.json" {
				outcome = "drift"
			}
			if rep.Mode != "remediate" || rep.Checked != 1 || len(rep.Results) != 1 || rep.Results[0].ProviderARN != arns[i] || rep.Results[0].Outcome != outcome {
				t.Fatalf("report %s, want only %s %s", res.Response, arns[i], outcome)
			}
			want := before
			if outcome == "updated" {
				want[arns[i]] = live + "," + old
			}
			if got := lists(); !reflect.DeepEqual(got, want) {
				t.Errorf("stored lists %v, want %v", got, want)
			}
			msgs, err := q.Drain(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != 1 || msgs[0].Attr("provider_arn") != arns[i] {
				t.Errorf("%d messages %+v, want one for %s", len(msgs), msgs, arns[i])
			}
		})
	}
	if n := proxy.Seen("ListOpenIDConnectProviders"); n != 0 {
		t.Errorf("a narrowed run listed the providers (%d calls)", n)
	}

	t.Run("own update", func(t *testing.T) {
		before, calls, handshakes := lists(), proxy.Injected(testpeer.Pass), idp.Handshakes()
		res := fn.invoke(t, withProvider(t, "cloudtrail-own-update.json", arns[4]))
		if res.Error != nil {
			t.Fatalf("invocation failed: %+v\n%s", res.Error, fn.out.String())
		}
		var got, want any
		_ = json.Unmarshal(res.Response, &got)
		_ = json.Unmarshal([]byte(`{"mode":"remediate","checked":0,"results":[],
			"counts":{"in-sync":0,"expiring":0,"updated":0,"drift":0,"reverted":0,"probe-failed":0,"update-failed":0,"skipped":0}}`), &want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("report %s, want an empty report", res.Response)
		}
		if n := proxy.Injected(testpeer.Pass) - calls; n != 0 {
			t.Errorf("%d AWS calls for the function's own update, want none", n)
		}
		if n := idp.Handshakes() - handshakes; n != 0 {
			t.Errorf("%d handshakes for the function's own update, want none", n)
		}
		if after := lists(); !reflect.DeepEqual(after, before) {
			t.Errorf("stored lists changed: %v, want %v", after, before)
		}
		if msgs, _ := q.Drain(ctx); len(msgs) != 0 {
			t.Errorf("%d messages for the function's own update", len(msgs))
		}
		var ignored int
		for _, line := range strings.Split(fn.out.String(), "\n") {
			if strings.Contains(line, `"event not checked"`) && strings.Contains(line, `"own-update"`) && strings.Contains(line, arns[4]) {
				ignored++
			}
		}
		if ignored != 1 {
			t.Errorf("%d log lines saying the own update was not checked, want 1\n%s", ignored, fn.out.String())
		}
	})
	if got := stored(arns[5]); got != old {
		t.Errorf("the bystander provider, named by no event, was written: %s", got)
	}
}
