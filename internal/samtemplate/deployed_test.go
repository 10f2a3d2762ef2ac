package samtemplate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/thumbprint-drift/thumbprint-drift/internal/rehearsal"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

// The tests read what CloudFormation deploys, not a parser of their own: the
// template as aws-sam-translator transforms it (the JSON `sam deploy`
// submits; produced once per test binary through python3, cached in a
// temporary directory), and, where a value depends on parameters (conditions,
// rules, resolved policies and environment), what moto_server's
// CloudFormation engine made of it for those parameters.

// codeURI is where the transformed template says the code is, as `sam
// package` sets CodeUri.
const (
	codeBucket = "thumbprint-drift-artifacts"
	codeKey    = "drift-check.zip"
	codeURI    = "s3://" + codeBucket + "/" + codeKey
)

var (
	cacheMu    sync.Mutex
	cacheDir   string
	cache      = map[string]*template{}
	engineMu   sync.Mutex
	engineM    *testpeer.Moto
	stackCache = map[string]*deployed{}
	probeCache = map[string]map[string]bool{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if engineM != nil {
		engineM.Close()
	}
	if cacheDir != "" {
		os.RemoveAll(cacheDir)
	}
	os.Exit(code)
}

// transformed is the template file name at the repository root as
// aws-sam-translator transforms it with every parameter at its default
// (a template without a Transform as CloudFormation reads it), and its source.
func transformed(t *testing.T, name string) *template {
	t.Helper()
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if tp, ok := cache[name]; ok {
		return tp
	}
	root := repoRoot(t)
	if cacheDir == "" {
		dir, err := os.MkdirTemp("", "samtemplate-transformed-")
		if err != nil {
			t.Fatal(err)
		}
		cacheDir = dir
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := rehearsal.Transform(ctx, root, name, codeURI, nil)
	if errors.Is(err, testpeer.ErrMissing) {
		peertest.Missing(t, "python3 with aws-sam-translator (pip install cfn-lint)")
	}
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(cacheDir, strings.TrimSuffix(name, filepath.Ext(name))+".json")
	if err := os.WriteFile(file, out, 0o600); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("transformed %s: %v", name, err)
	}
	doc, _ := wholeNumbers(v).(map[string]any)
	tp := &template{name: name, raw: raw, json: out, doc: doc}
	cache[name] = tp
	return tp
}

// engine is the test binary's moto_server, started on first use.
func engine(t *testing.T) *testpeer.Moto {
	t.Helper()
	engineMu.Lock()
	defer engineMu.Unlock()
	if engineM != nil {
		return engineM
	}
	m, err := testpeer.StartMoto(context.Background())
	if errors.Is(err, testpeer.ErrMissing) {
		peertest.Missing(t, "moto_server")
	}
	if err != nil {
		t.Fatal(err)
	}
	cfg := m.Config()
	if err := rehearsal.PutObject(context.Background(), cfg, codeBucket, codeKey, []byte("PK\x05\x06"+strings.Repeat("\x00", 18))); err != nil {
		m.Close()
		t.Fatal(err)
	}
	engineM = m
	return m
}

// key is a stable name of params for caches.
func key(region string, params map[string]string) string {
	var b strings.Builder
	b.WriteString(region)
	for _, k := range slices.Sorted(maps.Keys(params)) {
		fmt.Fprintf(&b, "\x00%s=%s", k, params[k])
	}
	return b.String()
}

// conditions are the values CloudFormation gives tp's Conditions, and its
// Rules' assertions (named "Rule <rule> <index>"), for params (the others
// at their Default) in region: moto_server's CloudFormation evaluates them in
// a probe stack that has tp's Parameters and Conditions, the assertions as
// further conditions, and one output per condition.
func (tp *template) conditions(t *testing.T, region string, params map[string]string) map[string]bool {
	t.Helper()
	if region == "" {
		region = testpeer.Region
	}
	// Only the parameters the conditions and rules refer to make a difference:
	// the probe is created once per distinct value of those.
	referred := map[string]string{}
	refs(map[string]any{"c": tp.doc["Conditions"], "r": tp.doc["Rules"]}, func(name string) {
		if v, ok := params[name]; ok {
			referred[name] = v
		}
	})
	// Parameters without a Default need a value to create the probe; the
	// conditions do not refer to them.
	for name, p := range asMap(tp.doc["Parameters"]) {
		if _, has := asMap(p)["Default"]; !has && referred[name] == "" {
			if _, given := referred[name]; !given {
				referred[name] = "probe"
			}
		}
	}
	params = referred
	k := tp.name + "\x00" + key(region, params)
	engineMu.Lock()
	got, ok := probeCache[k]
	engineMu.Unlock()
	if ok {
		return got
	}
	m := engine(t)
	conds := map[string]any{}
	maps.Copy(conds, asMap(tp.doc["Conditions"]))
	rules := asMap(tp.doc["Rules"])
	for name, r := range rules {
		if lookup(r, "RuleCondition") != nil {
			t.Fatalf("rule %s has a RuleCondition; the probe handles unconditional rules only", name)
		}
		for i, a := range rehearsal.AsList(lookup(r, "Assertions")) {
			conds[fmt.Sprintf("Rule %s %d", name, i)] = lookup(a, "Assert")
		}
	}
	// Condition names of a probe must be alphanumeric: map them.
	names := slices.Sorted(maps.Keys(conds))
	probeConds, outputs := map[string]any{}, map[string]any{}
	for i, n := range names {
		c := conds[n]
		if strings.HasPrefix(n, "Rule ") {
			n = fmt.Sprintf("ProbeRule%d", i)
		}
		probeConds[n] = c
		outputs[fmt.Sprintf("O%d", i)] = map[string]any{"Value": map[string]any{"Fn::If": []any{n, "true", "false"}}}
	}
	probe := map[string]any{
		"AWSTemplateFormatVersion": "2010-09-09",
		"Parameters":               tp.doc["Parameters"],
		"Conditions":               probeConds,
		"Resources":                map[string]any{"Probe": map[string]any{"Type": "AWS::SQS::Queue"}},
		"Outputs":                  outputs,
	}
	body, err := json.Marshal(probe)
	if err != nil {
		t.Fatal(err)
	}
	cfg := m.Config()
	cfg.Region = region
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfn := cloudformation.NewFromConfig(cfg)
	s, err := rehearsal.CreateStack(ctx, cfn, fmt.Sprintf("probe-%d", time.Now().UnixNano()), body, params)
	if err != nil {
		t.Fatalf("probe of %s's conditions for %v: %v", tp.name, params, err)
	}
	got = map[string]bool{}
	for i, n := range names {
		v, ok := s.Outputs[fmt.Sprintf("O%d", i)]
		if !ok {
			t.Fatalf("probe: no output for condition %s", n)
		}
		got[n] = v == "true"
	}
	if _, err := rehearsal.DeleteStack(ctx, cfn, s); err != nil {
		t.Fatal(err)
	}
	engineMu.Lock()
	probeCache[k] = got
	engineMu.Unlock()
	return got
}

// condition is one named condition of tp for params in region.
func (tp *template) condition(t *testing.T, region string, params map[string]string, name string) bool {
	t.Helper()
	got, ok := tp.conditions(t, region, params)[name]
	if !ok {
		t.Fatalf("%s has no condition %s", tp.name, name)
	}
	return got
}

// conditionIn is condition name for params, where params may name the
// stack's region as "AWS::Region" (moto derives "AWS::Partition" from it).
func (tp *template) conditionIn(t *testing.T, params map[string]string, name string) bool {
	t.Helper()
	p := maps.Clone(params)
	region := p["AWS::Region"]
	delete(p, "AWS::Region")
	delete(p, "AWS::Partition")
	return tp.condition(t, region, p, name)
}

// failedRules are the AssertDescription of every Rules assertion that fails
// for params.
func (tp *template) failedRules(t *testing.T, params map[string]string) []string {
	t.Helper()
	conds := tp.conditions(t, "", params)
	var failed []string
	for name, r := range asMap(tp.doc["Rules"]) {
		for i, a := range rehearsal.AsList(lookup(r, "Assertions")) {
			if !conds[fmt.Sprintf("Rule %s %d", name, i)] {
				failed = append(failed, fmt.Sprint(lookup(a, "AssertDescription")))
			}
		}
	}
	slices.Sort(failed)
	return failed
}

// deployed is a stack of template.yaml (or another template) as moto's
// CloudFormation created it for a set of parameters.
type deployed struct {
	*rehearsal.Stack
	// Policies are the statements of each role of the stack as IAM holds
	// them (rehearsal.TrustPolicy for its trust policy), by logical id.
	Policies map[string]map[string][]rehearsal.Statement
	// Env is the function's environment as Lambda holds it (template.yaml).
	Env map[string]string
}

// deploy creates tp's stack in moto for params in region (cached per binary)
// and reads back its roles' policies and the function's environment. account
// "" is moto's default account.
func (tp *template) deploy(t *testing.T, region string, params map[string]string) *deployed {
	t.Helper()
	if region == "" {
		region = testpeer.Region
	}
	k := tp.name + "\x00" + key(region, params)
	engineMu.Lock()
	d, ok := stackCache[k]
	engineMu.Unlock()
	if ok {
		return d
	}
	m := engine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root := repoRoot(t)
	body, err := rehearsal.Transform(ctx, root, tp.name, codeURI, params)
	if err != nil {
		t.Fatal(err)
	}
	cfg := m.Config()
	cfg.Region = region
	if region != testpeer.Region {
		if err := rehearsal.PutObject(ctx, cfg, codeBucket, codeKey, []byte("PK\x05\x06"+strings.Repeat("\x00", 18))); err != nil {
			t.Fatal(err)
		}
	}
	// The stack of the defaults has the Makefile's default STACK_NAME.
	name := "thumbprint-drift"
	if len(params) > 0 || region != testpeer.Region || tp.name != "template.yaml" {
		name = fmt.Sprintf("td%d", time.Now().UnixNano()%1e12)
	}
	s, err := rehearsal.CreateStack(ctx, cloudformation.NewFromConfig(cfg), name, body, params)
	if err != nil {
		t.Fatalf("create %s with %v: %v", tp.name, params, err)
	}
	d = &deployed{Stack: s, Policies: map[string]map[string][]rehearsal.Statement{}}
	iamc := iam.NewFromConfig(cfg)
	for id, r := range s.Resources {
		if r.Type != "AWS::IAM::Role" {
			continue
		}
		p, err := rehearsal.RolePolicies(ctx, root, iamc, r.PhysicalID)
		if err != nil {
			t.Fatal(err)
		}
		d.Policies[id] = p
	}
	if fn := s.Physical(functionID); fn != "" {
		fc, err := rehearsal.GetFunctionConfiguration(ctx, cfg, fn)
		if err != nil {
			t.Fatal(err)
		}
		d.Env = fc.Environment.Variables
	}
	engineMu.Lock()
	stackCache[k] = d
	engineMu.Unlock()
	return d
}

// statements are every statement of role's policies but its trust policy.
func (d *deployed) statements(role string) []rehearsal.Statement {
	var out []rehearsal.Statement
	for name, st := range d.Policies[role] {
		if name != rehearsal.TrustPolicy {
			out = append(out, st...)
		}
	}
	return out
}

// grants are the actions role's policies allow, each with the resources it
// is allowed on, in the policies' order.
func (d *deployed) grants(role string) map[string][]string {
	out := map[string][]string{}
	for _, s := range d.statements(role) {
		if s.Effect != "Allow" {
			continue
		}
		for _, a := range s.Action {
			out[a] = append(out[a], s.Resource...)
		}
	}
	return out
}

// wholeNumbers turns the JSON numbers of v into int where they are whole,
// float64 otherwise, as the template's YAML writes them.
func wholeNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, y := range x {
			x[k] = wholeNumbers(y)
		}
	case []any:
		for i, y := range x {
			x[i] = wholeNumbers(y)
		}
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return int(n)
		}
		f, _ := x.Float64()
		return f
	}
	return v
}

// refs calls f with the name of every Ref in v.
func refs(v any, f func(string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, y := range x {
			if name, ok := y.(string); ok && k == "Ref" {
				f(name)
			}
			refs(y, f)
		}
	case []any:
		for _, y := range x {
			refs(y, f)
		}
	}
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}
