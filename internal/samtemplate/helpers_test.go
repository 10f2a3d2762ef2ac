package samtemplate

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/thumbprint-drift/thumbprint-drift/internal/rehearsal"
)

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

// template is a CloudFormation template of the repository: its source, and
// the JSON CloudFormation receives (transformed, for template.yaml), decoded.
type template struct {
	name string
	raw  []byte
	json []byte
	doc  map[string]any
}

// loadTemplate is template.yaml, the SAM application, as transformed.
func loadTemplate(t *testing.T) *template {
	t.Helper()
	return transformed(t, "template.yaml")
}

// loadCFNFile is the template file name at the repository root, as
// CloudFormation receives it.
func loadCFNFile(t *testing.T, name string) *template {
	t.Helper()
	return transformed(t, name)
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

// functionProps are the properties of the function as the transform wrote
// them: SAM's Globals merged into its own.
func (tp *template) functionProps(t *testing.T, id string) map[string]any {
	t.Helper()
	props, _ := tp.resource(t, id, "AWS::Lambda::Function")["Properties"].(map[string]any)
	return props
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

func strs(v any) []string {
	var out []string
	for _, x := range rehearsal.AsList(v) {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

func ref(id string) map[string]any { return map[string]any{"Ref": id} }

func getAtt(id, attr string) map[string]any {
	return map[string]any{"Fn::GetAtt": []any{id, attr}}
}

func sub(s string) map[string]any { return map[string]any{"Fn::Sub": s} }
