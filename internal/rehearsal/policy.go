package rehearsal

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Statement is one statement of an IAM policy, as far as the rehearsal
// evaluates it: Effect, Action or NotAction, Resource or NotResource.
// Conditions are kept but not evaluated (README, Deploy: what the rehearsal
// cannot prove).
type Statement struct {
	Sid         string
	Effect      string
	Action      []string
	NotAction   []string
	Resource    []string
	NotResource []string
	Principal   map[string][]string // trust policies: "AWS", "Service"; "*" as {"*": ["*"]}
	Condition   map[string]any
}

// ParsePolicy reads a policy document (decoded JSON, or a string holding
// it). Statements that are null (an AWS::NoValue where a condition was false)
// are left out, as CloudFormation leaves them out.
func ParsePolicy(doc any) ([]Statement, error) {
	if s, ok := doc.(string); ok {
		if err := json.Unmarshal([]byte(s), &doc); err != nil {
			return nil, fmt.Errorf("policy document: %w", err)
		}
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("policy document is %T, not an object", doc)
	}
	var out []Statement
	for i, raw := range AsList(m["Statement"]) {
		if raw == nil {
			continue
		}
		sm, ok := raw.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("statement %d is %T, not an object", i, raw)
		}
		s := Statement{
			Sid: str(sm["Sid"]), Effect: str(sm["Effect"]),
			Action: strList(sm["Action"]), NotAction: strList(sm["NotAction"]),
			Resource: strList(sm["Resource"]), NotResource: strList(sm["NotResource"]),
		}
		s.Condition, _ = sm["Condition"].(map[string]any)
		switch p := sm["Principal"].(type) {
		case string:
			s.Principal = map[string][]string{p: {p}}
		case map[string]any:
			s.Principal = map[string][]string{}
			for k, v := range p {
				s.Principal[k] = strList(v)
			}
		}
		if s.Effect != "Allow" && s.Effect != "Deny" {
			return nil, fmt.Errorf("statement %d (%s): Effect %q", i, s.Sid, s.Effect)
		}
		out = append(out, s)
	}
	return out, nil
}

// Allows reports whether the statements allow action (service:Action) on
// resource (an ARN, or "*"): some Allow statement matches and no Deny does.
// by names the statement that decided.
func Allows(stmts []Statement, action, resource string) (allowed bool, by string) {
	for _, s := range stmts {
		if s.Effect == "Deny" && s.matches(action, resource) {
			return false, "denied by " + s.name()
		}
	}
	for _, s := range stmts {
		if s.Effect == "Allow" && s.matches(action, resource) {
			return true, s.name()
		}
	}
	return false, "no statement allows it"
}

func (s Statement) name() string {
	if s.Sid != "" {
		return s.Sid
	}
	return fmt.Sprintf("%s %v on %v", s.Effect, s.Action, s.Resource)
}

func (s Statement) matches(action, resource string) bool {
	actionOK := anyMatch(s.Action, action, true)
	if s.NotAction != nil {
		actionOK = !anyMatch(s.NotAction, action, true)
	}
	resourceOK := anyMatch(s.Resource, resource, false)
	if s.NotResource != nil {
		resourceOK = !anyMatch(s.NotResource, resource, false)
	}
	return actionOK && resourceOK
}

func anyMatch(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if Wildcard(p, s, fold) {
			return true
		}
	}
	return false
}

// Wildcard matches s against an IAM pattern: * any run of characters, ? any
// one; fold compares case-insensitively (actions; ARNs are case-sensitive).
// A resource "*" asked for (an action without a resource) matches only a
// pattern "*".
func Wildcard(pattern, s string, fold bool) bool {
	if fold {
		pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	}
	if s == "*" && !fold {
		return pattern == "*"
	}
	// Iterative glob match with backtracking to the last star.
	p, i, star, mark := 0, 0, -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p, mark = star+1, mark+1
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// AsList returns v as a list: itself if it is one, else a one-element list
// (IAM's Action and Resource accept both forms); nil for nil.
func AsList(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	default:
		return []any{x}
	}
}

func strList(v any) []string {
	if v == nil {
		return nil
	}
	out := []string{}
	for _, x := range AsList(v) {
		if x != nil {
			out = append(out, fmt.Sprint(x))
		}
	}
	return out
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}
