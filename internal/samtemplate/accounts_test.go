package samtemplate

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/thumbprint-drift/thumbprint-drift/internal/rehearsal"
)

// Tests of the template's optional parameters for checking several accounts
// (AccountRoleArns, OrgRoleName, AssumeRoleExternalId, AccountConcurrency):
// their patterns, the Rules that refuse contradictory values, and the function's
// effective permissions for each way of choosing accounts.

const (
	roleA = "arn:aws:iam::111111111111:role/thumbprint-drift-member"
	roleB = "arn:aws-cn:iam::222222222222:role/platform/thumbprint-drift-member"
)

// allowedPattern compiles the AllowedPattern of parameter name in tp.
// CloudFormation matches it against the whole value (Java's String.matches), so
// the compiled expression is anchored here as well.
func allowedPattern(t *testing.T, tp *template, name string) *regexp.Regexp {
	t.Helper()
	pattern, _ := lookup(tp.doc, "Parameters", name, "AllowedPattern").(string)
	if pattern == "" {
		t.Fatalf("parameter %s has no AllowedPattern", name)
	}
	re, err := regexp.Compile(`^(?:` + pattern + `)$`)
	if err != nil {
		t.Fatalf("parameter %s AllowedPattern %q: %v", name, pattern, err)
	}
	return re
}

// checkAccepts checks which values parameter name accepts: its AllowedPattern
// and, where set, MinLength and MaxLength.
func checkAccepts(t *testing.T, tp *template, name string, cases map[string]bool) {
	t.Helper()
	re := allowedPattern(t, tp, name)
	p, _ := lookup(tp.doc, "Parameters", name).(map[string]any)
	for value, want := range cases {
		got := re.MatchString(value)
		if n, ok := p["MinLength"].(int); ok && len(value) < n {
			got = false
		}
		if n, ok := p["MaxLength"].(int); ok && len(value) > n {
			got = false
		}
		if got != want {
			t.Errorf("%s accepts %q = %v, want %v", name, value, got, want)
		}
	}
}

// roleNameCases are shared by every parameter that holds an IAM role name.
var roleNameCases = map[string]bool{
	"thumbprint-drift-member": true,
	"a":                       true,
	"Role_1+=,.@-":            true,
	strings.Repeat("r", 64):   true,
	strings.Repeat("r", 65):   false,
	"":                        false,
	"*":                       false,
	"thumbprint-*":            false,
	"path/name":               false,
	"has space":               false,
}

// externalIDCases: STS accepts 2 to 1224 characters of [\w+=,.@:/-].
var externalIDCases = map[string]bool{
	"":                          true, // unset
	"ab":                        true,
	"9f3c2a7e-0d1b-4c55":        true,
	"team=platform,env:prod/x@": true,
	strings.Repeat("x", 1224):   true,
	"a":                         false,
	strings.Repeat("x", 1225):   false,
	"with space":                false,
	"quote\"":                   false,
}

func TestAccountParameters(t *testing.T) {
	tp := loadTemplate(t)

	t.Run("AccountRoleArns pattern", func(t *testing.T) {
		checkAccepts(t, tp, "AccountRoleArns", map[string]bool{
			"":                                true,
			roleA:                             true,
			roleA + "," + roleB:               true,
			roleA + "," + roleB + "," + roleA: true,
			"arn:aws-us-gov:iam::333333333333:role/x": true,
			// Each item becomes a policy Resource verbatim: no spaces, no empty items.
			roleA + ", " + roleB: false,
			roleA + ",":          false,
			"," + roleA:          false,
			roleA + ",," + roleB: false,
			"*":                  false,
			"arn:aws:iam::*:role/thumbprint-drift-member": false,
			"arn:aws:iam::111111111111:role/*":            false,
			"arn:aws:iam::111111111111:role/":             false,
			"arn:aws:iam::11111111111:role/x":             false,
			"arn:aws:iam::111111111111:user/x":            false,
			"arn:aws:iam::111111111111:root":              false,
			"arn:aws:sts::111111111111:assumed-role/x/y":  false,
			"thumbprint-drift-member":                     false,
		})
	})
	t.Run("OrgRoleName pattern", func(t *testing.T) {
		cases := map[string]bool{"": true} // unset
		for k, v := range roleNameCases {
			if k != "" {
				cases[k] = v
			}
		}
		checkAccepts(t, tp, "OrgRoleName", cases)
	})
	t.Run("AssumeRoleExternalId pattern", func(t *testing.T) {
		checkAccepts(t, tp, "AssumeRoleExternalId", externalIDCases)
	})
	t.Run("AssumeRoleExternalId NoEcho", func(t *testing.T) {
		if got := lookup(tp.doc, "Parameters", "AssumeRoleExternalId", "NoEcho"); got != true {
			t.Errorf("NoEcho = %#v, want true", got)
		}
	})
}

func TestAccountConditions(t *testing.T) {
	tp := loadTemplate(t)
	for cond, param := range map[string]string{
		"HasAccountRoleArns": "AccountRoleArns",
		"HasOrgRoleName":     "OrgRoleName",
	} {
		want := map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{ref(param), ""}}}}
		if got := lookup(tp.doc, "Conditions", cond); !reflect.DeepEqual(got, want) {
			t.Errorf("Conditions.%s = %#v, want %#v", cond, got, want)
		}
	}
}

// TestAccountRules evaluates every assertion of the template's Rules for each
// combination of parameters: CloudFormation refuses a stack whose parameters
// fail one, before it changes anything.
func TestAccountRules(t *testing.T) {
	tp := loadTemplate(t)
	rules, _ := tp.doc["Rules"].(map[string]any)
	if len(rules) == 0 {
		t.Fatal("template.yaml has no Rules")
	}
	type assertion struct {
		rule        string
		assert      any
		description string
	}
	var assertions []assertion
	for name, r := range rules {
		if lookup(r, "RuleCondition") != nil {
			t.Errorf("rule %s has a RuleCondition; this test evaluates unconditional rules only", name)
		}
		for _, a := range rehearsal.AsList(lookup(r, "Assertions")) {
			desc, _ := lookup(a, "AssertDescription").(string)
			if desc == "" {
				t.Errorf("rule %s: an assertion has no AssertDescription", name)
			}
			assertions = append(assertions, assertion{name, lookup(a, "Assert"), desc})
		}
	}

	tests := []struct {
		name   string
		params map[string]string
		// refused: the AssertDescription of a failed assertion contains each word.
		refused []string
	}{
		{name: "defaults: this account only"},
		{name: "role list", params: map[string]string{"AccountRoleArns": roleA + "," + roleB}},
		{name: "organisation", params: map[string]string{"OrgRoleName": "thumbprint-drift-member"}},
		{name: "role list with external id", params: map[string]string{"AccountRoleArns": roleA, "AssumeRoleExternalId": "ext-1"}},
		{name: "organisation with external id", params: map[string]string{"OrgRoleName": "m", "AssumeRoleExternalId": "ext-1"}},
		{
			name:    "both role list and organisation",
			params:  map[string]string{"AccountRoleArns": roleA, "OrgRoleName": "thumbprint-drift-member"},
			refused: []string{"AccountRoleArns", "OrgRoleName"},
		},
		{
			name:    "external id without accounts",
			params:  map[string]string{"AssumeRoleExternalId": "ext-1"},
			refused: []string{"AssumeRoleExternalId"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			failed := tp.failedRules(t, tc.params)
			if tc.refused == nil {
				if len(failed) > 0 {
					t.Errorf("refused with %q, want accepted", failed)
				}
				return
			}
			if !slices.ContainsFunc(failed, func(desc string) bool {
				for _, word := range tc.refused {
					if !strings.Contains(desc, word) {
						return false
					}
				}
				return true
			}) {
				t.Errorf("failed assertions %q, want one naming %v", failed, tc.refused)
			}
		})
	}
}

// TestFunctionPermissionsPerAccountMode reads the function's policy as
// moto's CloudFormation created it for each way of choosing accounts and checks the
// permissions for other accounts: none by default, sts:AssumeRole on exactly the
// listed roles, or on the organisation role name plus organizations:ListAccounts
// and organizations:DescribeOrganization.
func TestFunctionPermissionsPerAccountMode(t *testing.T) {
	tp := loadTemplate(t)
	singleAccount := []string{
		"dynamodb:BatchGetItem",
		"dynamodb:UpdateItem",
		"iam:GetOpenIDConnectProvider",
		"iam:ListOpenIDConnectProviders",
		"iam:UpdateOpenIDConnectProviderThumbprint",
		"kms:Decrypt",
		"kms:GenerateDataKey*",
		"logs:CreateLogStream",
		"logs:PutLogEvents",
		"sns:Publish",
		"sqs:SendMessage",
	}
	tests := []struct {
		name   string
		params map[string]string
		// want: the resources of each action beyond the single-account ones.
		want map[string][]any
	}{
		{name: "defaults: this account only", want: map[string][]any{}},
		{
			name:   "one role",
			params: map[string]string{"AccountRoleArns": roleA},
			want:   map[string][]any{"sts:AssumeRole": {roleA}},
		},
		{
			name:   "role list",
			params: map[string]string{"AccountRoleArns": roleA + "," + roleB},
			want:   map[string][]any{"sts:AssumeRole": {roleA, roleB}},
		},
		{
			name:   "organisation",
			params: map[string]string{"OrgRoleName": "thumbprint-drift-member"},
			want: map[string][]any{
				"sts:AssumeRole":                     {"arn:aws:iam::*:role/thumbprint-drift-member"},
				"organizations:ListAccounts":         {"*"},
				"organizations:DescribeOrganization": {"*"},
			},
		},
		{
			name:   "external id changes no permission",
			params: map[string]string{"AssumeRoleExternalId": "ext-1"},
			want:   map[string][]any{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			granted := tp.deploy(t, "", tc.params).grants(functionRoleID)
			got := map[string][]any{}
			var actions []string
			for a, resources := range granted {
				actions = append(actions, a)
				if slices.Contains(singleAccount, a) {
					continue
				}
				for _, r := range resources {
					got[a] = append(got[a], r)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("permissions beyond this account = %#v, want %#v", got, tc.want)
			}
			slices.Sort(actions)
			for _, a := range singleAccount {
				if !slices.Contains(actions, a) {
					t.Errorf("%s missing: the function's own account is always checked", a)
				}
			}
		})
	}
}

// TestParameterGroups keeps the console's parameter form complete: every
// parameter of each template in exactly one group, and no group naming a
// parameter that does not exist.
func TestParameterGroups(t *testing.T) {
	for _, name := range cfnFiles {
		t.Run(name, func(t *testing.T) {
			tp := loadCFNFile(t, name)
			params, _ := tp.doc["Parameters"].(map[string]any)
			seen := map[string]int{}
			for _, g := range rehearsal.AsList(lookup(tp.doc, "Metadata", "AWS::CloudFormation::Interface", "ParameterGroups")) {
				for _, p := range strs(lookup(g, "Parameters")) {
					if _, ok := params[p]; !ok {
						t.Errorf("group %v names %s, which is not a parameter", lookup(g, "Label", "default"), p)
					}
					seen[p]++
				}
			}
			for p := range params {
				if seen[p] != 1 {
					t.Errorf("parameter %s is in %d parameter groups, want 1", p, seen[p])
				}
			}
		})
	}
}
