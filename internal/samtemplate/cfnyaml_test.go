package samtemplate

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// intrinsicTags are the CloudFormation short-form tags; each becomes the long form
// {"Fn::<name>": value}, except Ref and Condition which keep their own key.
var intrinsicTags = map[string]bool{
	"Ref": true, "Condition": true,
	"Base64": true, "Cidr": true, "FindInMap": true, "GetAtt": true, "GetAZs": true,
	"ImportValue": true, "Join": true, "Select": true, "Split": true, "Sub": true,
	"Transform": true, "And": true, "Equals": true, "If": true, "Not": true, "Or": true,
	"ToJsonString": true, "Length": true,
}

// decodeCFN parses a CloudFormation YAML document into plain Go values
// (map[string]any, []any, string, int, float64, bool, nil), turning short-form
// intrinsic tags such as !Ref and !Sub into their long-form maps.
func decodeCFN(data []byte) (map[string]any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	v, err := nodeValue(&doc)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("top level is %T, not a mapping", v)
	}
	return m, nil
}

func nodeValue(n *yaml.Node) (any, error) {
	var v any
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return nodeValue(n.Content[0])
	case yaml.AliasNode:
		return nodeValue(n.Alias)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: mapping key is not a scalar", k.Line)
			}
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
			}
			x, err := nodeValue(val)
			if err != nil {
				return nil, err
			}
			m[k.Value] = x
		}
		v = m
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			x, err := nodeValue(c)
			if err != nil {
				return nil, err
			}
			s = append(s, x)
		}
		v = s
	case yaml.ScalarNode:
		if isCustomTag(n.Tag) {
			v = n.Value
		} else if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
	default:
		return nil, fmt.Errorf("line %d: unexpected YAML node kind %v", n.Line, n.Kind)
	}
	if !isCustomTag(n.Tag) {
		return v, nil
	}
	name := strings.TrimPrefix(n.Tag, "!")
	if !intrinsicTags[name] {
		return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
	}
	switch name {
	case "Ref", "Condition":
		return map[string]any{name: v}, nil
	case "GetAtt":
		if s, ok := v.(string); ok {
			res, attr, found := strings.Cut(s, ".")
			if !found {
				return nil, fmt.Errorf("line %d: !GetAtt %q has no attribute", n.Line, s)
			}
			v = []any{res, attr}
		}
	}
	return map[string]any{"Fn::" + name: v}, nil
}

// isCustomTag reports whether tag is an application tag (!Ref), not a YAML core
// tag (!!str) or none.
func isCustomTag(tag string) bool {
	return strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!")
}

func TestDecodeCFNShortTags(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want any
	}{
		{"ref", "v: !Ref Topic", map[string]any{"Ref": "Topic"}},
		{"sub scalar", "v: !Sub arn:${AWS::Partition}:x", map[string]any{"Fn::Sub": "arn:${AWS::Partition}:x"}},
		{"sub list", "v: !Sub [\"${A}\", {A: !Ref B}]", map[string]any{"Fn::Sub": []any{"${A}", map[string]any{"A": map[string]any{"Ref": "B"}}}}},
		{"getatt dotted", "v: !GetAtt Key.Arn", map[string]any{"Fn::GetAtt": []any{"Key", "Arn"}}},
		{"getatt nested attribute", "v: !GetAtt Db.Endpoint.Address", map[string]any{"Fn::GetAtt": []any{"Db", "Endpoint.Address"}}},
		{"getatt list", "v: !GetAtt [Key, Arn]", map[string]any{"Fn::GetAtt": []any{"Key", "Arn"}}},
		{"not equals", "v: !Not [!Equals [!Ref E, \"\"]]", map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "E"}, ""}}}}},
		{"if", "v: !If [C, 1, !Ref AWS::NoValue]", map[string]any{"Fn::If": []any{"C", 1, map[string]any{"Ref": "AWS::NoValue"}}}},
		{"condition", "v: !Condition C", map[string]any{"Condition": "C"}},
		{"long form kept", "v: {\"Fn::Join\": [\",\", [a, b]]}", map[string]any{"Fn::Join": []any{",", []any{"a", "b"}}}},
		{"core types", "v: [1, true, \"2012-10-17\", null]", []any{1, true, "2012-10-17", nil}},
		{"explicit core tag", "v: !!str 128", "128"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeCFN([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got["v"], tc.want) {
				t.Errorf("got %#v, want %#v", got["v"], tc.want)
			}
		})
	}
}

func TestDecodeCFNRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown tag":         "v: !Reff Topic",
		"getatt without attr": "v: !GetAtt Key",
		"duplicate key":       "a: 1\na: 2",
		"not a mapping":       "- a",
		"malformed yaml":      "a: [1, 2",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeCFN([]byte(doc)); err == nil {
				t.Errorf("decodeCFN(%q) = nil error, want one", doc)
			}
		})
	}
}

// repoRoot is the module root, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !bytes.Contains(gomod, []byte("module github.com/thumbprint-drift/thumbprint-drift")) {
		t.Fatalf("%s is not the thumbprint-drift module root (go.mod: %v)", root, err)
	}
	return root
}

// template is a CloudFormation template of the repository, raw and decoded.
type template struct {
	raw []byte
	doc map[string]any
}

// loadTemplate loads template.yaml, the SAM application.
func loadTemplate(t *testing.T) *template {
	t.Helper()
	return loadCFNFile(t, "template.yaml")
}

// loadCFNFile loads the CloudFormation template name at the repository root.
func loadCFNFile(t *testing.T, name string) *template {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), name))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := decodeCFN(raw)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &template{raw: raw, doc: doc}
}

// resource returns the resource with logical id id, failing t if it is missing
// or not of type typ.
func (tp *template) resource(t *testing.T, id, typ string) map[string]any {
	t.Helper()
	r, ok := lookup(tp.doc, "Resources", id).(map[string]any)
	if !ok {
		t.Fatalf("resource %s missing", id)
	}
	if got := r["Type"]; got != typ {
		t.Fatalf("resource %s has Type %v, want %s", id, got, typ)
	}
	return r
}

// resourcesOfType returns the logical ids of all resources of type typ.
func (tp *template) resourcesOfType(typ string) []string {
	var ids []string
	res, _ := tp.doc["Resources"].(map[string]any)
	for id, r := range res {
		if m, ok := r.(map[string]any); ok && m["Type"] == typ {
			ids = append(ids, id)
		}
	}
	return ids
}

// isResource reports whether id names a resource of type typ in the template.
func (tp *template) isResource(id any, typ string) bool {
	s, ok := id.(string)
	if !ok {
		return false
	}
	r, ok := lookup(tp.doc, "Resources", s).(map[string]any)
	return ok && r["Type"] == typ
}

// functionProps returns the effective properties of a serverless function:
// Globals.Function merged with the function's own, the way SAM merges them
// (maps merged key by key, lists appended, scalars overridden).
func (tp *template) functionProps(t *testing.T, id string) map[string]any {
	t.Helper()
	fn := tp.resource(t, id, "AWS::Serverless::Function")
	own, _ := fn["Properties"].(map[string]any)
	globals, _ := lookup(tp.doc, "Globals", "Function").(map[string]any)
	merged, _ := mergeGlobals(globals, own).(map[string]any)
	return merged
}

func mergeGlobals(global, local any) any {
	switch g := global.(type) {
	case map[string]any:
		l, ok := local.(map[string]any)
		if !ok {
			break
		}
		out := make(map[string]any, len(g)+len(l))
		for k, v := range g {
			out[k] = v
		}
		for k, v := range l {
			if gv, ok := g[k]; ok {
				out[k] = mergeGlobals(gv, v)
			} else {
				out[k] = v
			}
		}
		return out
	case []any:
		if l, ok := local.([]any); ok {
			return append(append([]any{}, g...), l...)
		}
	}
	if local == nil {
		return global
	}
	return local
}

// lookup walks v through the map keys in path; nil when any step is missing.
func lookup(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// list returns v as a list: itself if it is one, else a one-element list
// (IAM's Action and Resource accept both forms); nil for nil.
func list(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	default:
		return []any{x}
	}
}

func strs(v any) []string {
	var out []string
	for _, x := range list(v) {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

func ref(id string) map[string]any { return map[string]any{"Ref": id} }

func getAtt(id, attr string) map[string]any {
	return map[string]any{"Fn::GetAtt": []any{id, attr}}
}

func sub(s string) map[string]any { return map[string]any{"Fn::Sub": s} }
