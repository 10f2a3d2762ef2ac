package samtemplate

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// pseudoParameters are the values the evaluator gives CloudFormation's pseudo
// parameters: one account in the aws partition.
var pseudoParameters = map[string]string{
	"AWS::Partition": "aws",
	"AWS::AccountId": "123456789012",
	"AWS::Region":    "us-east-1",
	"AWS::StackName": "thumbprint-drift",
}

// noValue is what Ref AWS::NoValue evaluates to: the property or list item that
// holds it is dropped.
type noValue struct{}

// evaluator resolves the parts of a template that depend only on parameters,
// the way CloudFormation would for one set of parameter values: Ref of a
// parameter or pseudo parameter, Fn::Equals, Fn::Not, Fn::And, Fn::Or, Fn::If,
// named Conditions, Fn::Select, Fn::Split and the string form of Fn::Sub. A Ref
// or Fn::GetAtt of a resource is an error unless resources gives it a value:
// the tests use them only where they say what the resource would be.
type evaluator struct {
	tp     *template
	params map[string]string // values given; other parameters take their Default
	// resources holds the physical values of resources: "Id" for Ref Id,
	// "Id.Attr" for Fn::GetAtt [Id, Attr] and ${Id.Attr}.
	resources map[string]string
}

func (tp *template) evaluator(params map[string]string) *evaluator {
	return &evaluator{tp: tp, params: params}
}

// param returns the value of parameter or pseudo parameter name; params may
// override a pseudo parameter (another region, say).
func (e *evaluator) param(name string) (string, error) {
	if v, ok := pseudoParameters[name]; ok {
		if given, ok := e.params[name]; ok {
			return given, nil
		}
		return v, nil
	}
	p, ok := lookup(e.tp.doc, "Parameters", name).(map[string]any)
	if !ok {
		if v, ok := e.resources[name]; ok {
			return v, nil
		}
		return "", fmt.Errorf("%s is not a parameter, and the test gave it no value", name)
	}
	if v, ok := e.params[name]; ok {
		return v, nil
	}
	def, ok := p["Default"]
	if !ok {
		return "", fmt.Errorf("parameter %s has no value and no Default", name)
	}
	return fmt.Sprint(def), nil
}

// condition evaluates the template's named condition.
func (e *evaluator) condition(name string) (bool, error) {
	expr, ok := lookup(e.tp.doc, "Conditions", name).(map[string]any)
	if !ok {
		return false, fmt.Errorf("condition %s is not defined", name)
	}
	return e.bool(expr)
}

func (e *evaluator) bool(expr any) (bool, error) {
	v, err := e.eval(expr)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("%#v is %T, not a condition", expr, v)
	}
	return b, nil
}

func (e *evaluator) str(expr any) (string, error) {
	v, err := e.eval(expr)
	if err != nil {
		return "", err
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case int, float64:
		return fmt.Sprint(x), nil
	}
	return "", fmt.Errorf("%#v is %T, not a string", expr, v)
}

var subVariable = regexp.MustCompile(`\$\{([^}!]+)\}`)

// eval resolves expr; plain scalars stand for themselves.
func (e *evaluator) eval(expr any) (any, error) {
	m, ok := expr.(map[string]any)
	if !ok || len(m) != 1 {
		return expr, nil
	}
	for fn, arg := range m {
		args := list(arg)
		switch fn {
		case "Ref":
			if arg == "AWS::NoValue" {
				return noValue{}, nil
			}
			return e.param(fmt.Sprint(arg))
		case "Fn::GetAtt":
			if len(args) != 2 {
				return nil, fmt.Errorf("Fn::GetAtt needs 2 arguments: %#v", arg)
			}
			name := fmt.Sprint(args[0]) + "." + fmt.Sprint(args[1])
			if v, ok := e.resources[name]; ok {
				return v, nil
			}
			return nil, fmt.Errorf("Fn::GetAtt %s: the test gave it no value", name)
		case "Fn::If":
			if len(args) != 3 {
				return nil, fmt.Errorf("Fn::If needs 3 arguments: %#v", arg)
			}
			on, err := e.condition(fmt.Sprint(args[0]))
			if err != nil {
				return nil, err
			}
			if on {
				return e.eval(args[1])
			}
			return e.eval(args[2])
		case "Fn::Select":
			if len(args) != 2 {
				return nil, fmt.Errorf("Fn::Select needs 2 arguments: %#v", arg)
			}
			i, err := e.str(args[0])
			if err != nil {
				return nil, err
			}
			items, err := e.eval(args[1])
			if err != nil {
				return nil, err
			}
			l, ok := items.([]any)
			n, convErr := strconv.Atoi(i)
			if !ok || convErr != nil || n < 0 || n >= len(l) {
				return nil, fmt.Errorf("Fn::Select %s of %#v: out of range", i, items)
			}
			return e.eval(l[n])
		case "Condition":
			return e.condition(fmt.Sprint(arg))
		case "Fn::Equals":
			if len(args) != 2 {
				return nil, fmt.Errorf("Fn::Equals needs 2 arguments: %#v", arg)
			}
			a, err := e.str(args[0])
			if err != nil {
				return nil, err
			}
			b, err := e.str(args[1])
			if err != nil {
				return nil, err
			}
			return a == b, nil
		case "Fn::Not":
			if len(args) != 1 {
				return nil, fmt.Errorf("Fn::Not needs 1 argument: %#v", arg)
			}
			b, err := e.bool(args[0])
			return !b, err
		case "Fn::And", "Fn::Or":
			if len(args) < 2 || len(args) > 10 {
				return nil, fmt.Errorf("%s needs 2 to 10 arguments: %#v", fn, arg)
			}
			result := fn == "Fn::And"
			for _, x := range args {
				b, err := e.bool(x)
				if err != nil {
					return nil, err
				}
				if fn == "Fn::And" {
					result = result && b
				} else {
					result = result || b
				}
			}
			return result, nil
		case "Fn::Split":
			if len(args) != 2 {
				return nil, fmt.Errorf("Fn::Split needs 2 arguments: %#v", arg)
			}
			sep, ok := args[0].(string)
			if !ok {
				return nil, fmt.Errorf("Fn::Split delimiter %#v is not a string", args[0])
			}
			s, err := e.str(args[1])
			if err != nil {
				return nil, err
			}
			var out []any
			for _, part := range strings.Split(s, sep) {
				out = append(out, part)
			}
			return out, nil
		case "Fn::Sub":
			s, ok := arg.(string)
			if !ok {
				return nil, fmt.Errorf("only the string form of Fn::Sub is evaluated: %#v", arg)
			}
			var err error
			out := subVariable.ReplaceAllStringFunc(s, func(v string) string {
				val, perr := e.param(subVariable.FindStringSubmatch(v)[1])
				if perr != nil && err == nil {
					err = perr
				}
				return val
			})
			return out, err
		}
		return nil, fmt.Errorf("%s is not evaluated by these tests", fn)
	}
	panic("unreachable")
}

func TestEvaluator(t *testing.T) {
	doc, err := decodeCFN([]byte(`
Parameters:
  Names: {Type: String, Default: ""}
  Role: {Type: String, Default: member}
  Size: {Type: Number, Default: 4}
Conditions:
  HasNames: !Not [!Equals [!Ref Names, ""]]
  Both: !And [!Condition HasNames, !Equals [!Ref Role, member]]
`))
	if err != nil {
		t.Fatal(err)
	}
	tp := &template{doc: doc}
	tests := []struct {
		name   string
		params map[string]string
		expr   string
		want   any
	}{
		{"default", nil, "!Ref Role", "member"},
		{"number default", nil, "!Ref Size", "4"},
		{"given", map[string]string{"Role": "x"}, "!Ref Role", "x"},
		{"pseudo", nil, "!Ref AWS::Partition", "aws"},
		{"pseudo given", map[string]string{"AWS::Region": "eu-west-1"}, "!Ref AWS::Region", "eu-west-1"},
		{"condition false", nil, "!Condition HasNames", false},
		{"condition true", map[string]string{"Names": "a"}, "!Condition HasNames", true},
		{"and", map[string]string{"Names": "a"}, "!Condition Both", true},
		{"or", nil, "!Or [!Condition HasNames, !Equals [!Ref Size, 4]]", true},
		{"split", map[string]string{"Names": "a,b"}, `!Split [",", !Ref Names]`, []any{"a", "b"}},
		{"sub", nil, "!Sub arn:${AWS::Partition}:iam::*:role/${Role}", "arn:aws:iam::*:role/member"},
		{"sub literal", nil, "!Sub ${!Role}", "${!Role}"},
		{"scalar", nil, "plain", "plain"},
		{"if true", map[string]string{"Names": "a"}, "!If [HasNames, !Ref Names, none]", "a"},
		{"if false", nil, "!If [HasNames, !Ref Names, !Ref AWS::NoValue]", noValue{}},
		{"select", map[string]string{"Names": "arn:aws:x"}, `!Select [0, !Split [":", !Ref Names]]`, "arn"},
		{"resource ref", nil, "!Ref Table", "table-1"},
		{"resource getatt", nil, "!GetAtt Table.Arn", "arn:aws:dynamodb:us-east-1:123456789012:table/table-1"},
		{"resource in sub", nil, "!Sub ${Table}/${Table.Arn}", "table-1/arn:aws:dynamodb:us-east-1:123456789012:table/table-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := decodeCFN([]byte("v: " + tc.expr))
			if err != nil {
				t.Fatal(err)
			}
			e := tp.evaluator(tc.params)
			e.resources = map[string]string{"Table": "table-1", "Table.Arn": "arn:aws:dynamodb:us-east-1:123456789012:table/table-1"}
			got, err := e.eval(v["v"])
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s = %#v, want %#v", tc.expr, got, tc.want)
			}
		})
	}
	for _, expr := range []string{"!Ref Missing", "!GetAtt Key.Arn", "!Not [a]", "!Sub [x, {}]", "!Condition Nope", `!Sub "${Nope}"`, "!Select [2, [a, b]]", "!If [Nope, a, b]"} {
		t.Run("refuses "+expr, func(t *testing.T) {
			v, err := decodeCFN([]byte("v: " + expr))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := tp.evaluator(nil).eval(v["v"]); err == nil {
				t.Errorf("%s = %#v, want an error", expr, got)
			}
		})
	}
}
