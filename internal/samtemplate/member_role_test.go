package samtemplate

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/thumbprint-drift/thumbprint-drift/internal/rehearsal"
)

// Tests of member-role.yaml: the role the central function assumes in each
// member account, deployed as a service-managed StackSet.

const (
	memberRoleFile = "member-role.yaml"
	memberRoleID   = "MemberRole"
)

// memberActions are the calls the engine makes in a member account.
var memberActions = []string{
	"iam:GetOpenIDConnectProvider",
	"iam:ListOpenIDConnectProviders",
	"iam:UpdateOpenIDConnectProviderThumbprint",
}

func loadMemberRole(t *testing.T) (*template, map[string]any) {
	t.Helper()
	tp := loadCFNFile(t, memberRoleFile)
	return tp, tp.resource(t, memberRoleID, "AWS::IAM::Role")
}

func TestMemberRoleTemplate(t *testing.T) {
	tp, role := loadMemberRole(t)
	if tr, ok := tp.doc["Transform"]; ok {
		t.Errorf("Transform = %v: member-role.yaml is plain CloudFormation (StackSets)", tr)
	}
	// The role always; the forwarding of provider changes only when asked for.
	res, _ := tp.doc["Resources"].(map[string]any)
	for id, r := range res {
		if id == memberRoleID {
			if c := lookup(r, "Condition"); c != nil {
				t.Errorf("%s exists only under %v", id, c)
			}
			continue
		}
		if c := lookup(r, "Condition"); c != "ForwardsProviderChanges" {
			t.Errorf("resource %s exists under condition %v, want ForwardsProviderChanges: every other permission is in %s's inline policy", id, c, memberRoleID)
		}
	}

	props, _ := role["Properties"].(map[string]any)
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"RoleName", props["RoleName"], ref("RoleName")},
		{"MaxSessionDuration", props["MaxSessionDuration"], 3600},
		// ORG_ROLE_NAME and the function's policy name role/<name>: no path.
		{"Path", props["Path"], nil},
		{"ManagedPolicyArns", props["ManagedPolicyArns"], nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("%s = %#v, want %#v", tc.name, tc.got, tc.want)
			}
		})
	}
}

func TestMemberRoleParameters(t *testing.T) {
	tp, _ := loadMemberRole(t)
	tests := []struct {
		name   string
		def    any // nil: required
		noEcho bool
	}{
		{name: "CentralFunctionRoleArn"},
		{name: "RoleName", def: "thumbprint-drift-member"},
		{name: "ExternalId", def: "", noEcho: true},
		{name: "CentralEventBusArn", def: ""},
		{name: "SecurityHub", def: "false"},
	}
	params, _ := tp.doc["Parameters"].(map[string]any)
	if len(params) != len(tests) {
		t.Errorf("parameters = %v, want exactly %d", params, len(tests))
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := params[tc.name].(map[string]any)
			if !ok {
				t.Fatalf("parameter %s missing", tc.name)
			}
			if p["Type"] != "String" {
				t.Errorf("Type = %v, want String", p["Type"])
			}
			if !reflect.DeepEqual(p["Default"], tc.def) {
				t.Errorf("Default = %#v, want %#v", p["Default"], tc.def)
			}
			if noEcho := p["NoEcho"] == true; noEcho != tc.noEcho {
				t.Errorf("NoEcho = %v, want %v", p["NoEcho"], tc.noEcho)
			}
		})
	}

	t.Run("CentralFunctionRoleArn pattern", func(t *testing.T) {
		checkAccepts(t, tp, "CentralFunctionRoleArn", map[string]bool{
			"arn:aws:iam::111111111111:role/thumbprint-drift-DriftCheckFunctionRole-AbC123": true,
			"arn:aws-cn:iam::111111111111:role/service-role/x":                              true,
			"": false,
			// Trusting the account root would let any principal in the central
			// account with sts:AssumeRole in; only a role is accepted.
			"arn:aws:iam::111111111111:root":       false,
			"arn:aws:iam::111111111111:user/admin": false,
			"arn:aws:iam::*:role/x":                false,
			"arn:aws:iam::111111111111:role/*":     false,
			"*":                                    false,
			"111111111111":                         false,
			"arn:aws:sts::111111111111:assumed-role/x/drift": false,
		})
	})
	t.Run("RoleName pattern", func(t *testing.T) {
		checkAccepts(t, tp, "RoleName", roleNameCases)
	})
	t.Run("ExternalId pattern", func(t *testing.T) {
		checkAccepts(t, tp, "ExternalId", externalIDCases)
	})
	t.Run("default RoleName suits the central OrgRoleName", func(t *testing.T) {
		def, _ := lookup(tp.doc, "Parameters", "RoleName", "Default").(string)
		if !allowedPattern(t, loadTemplate(t), "OrgRoleName").MatchString(def) {
			t.Errorf("template.yaml's OrgRoleName refuses member-role.yaml's default RoleName %q", def)
		}
	})
}

func TestMemberRoleTrust(t *testing.T) {
	tp, role := loadMemberRole(t)
	stmts := statements(t, lookup(role, "Properties", "AssumeRolePolicyDocument"))
	if len(stmts) != 1 {
		t.Fatalf("trust policy has %d statements, want 1", len(stmts))
	}
	s := stmts[0]
	if s.condition != "" {
		t.Errorf("trust statement exists only under %s; it must always apply", s.condition)
	}
	if s.effect != "Allow" || !slices.Equal(s.actions, []string{"sts:AssumeRole"}) {
		t.Errorf("trust statement = %s %v, want Allow [sts:AssumeRole]", s.effect, s.actions)
	}
	for _, k := range []string{"NotPrincipal", "NotAction", "Resource"} {
		if _, ok := s.raw[k]; ok {
			t.Errorf("trust statement uses %s", k)
		}
	}
	// The only principal: the central function's role, by ARN (an AWS principal,
	// not a service, not a federated identity, not the account root).
	if got, want := s.raw["Principal"], map[string]any{"AWS": ref("CentralFunctionRoleArn")}; !reflect.DeepEqual(got, want) {
		t.Errorf("Principal = %#v, want %#v", got, want)
	}

	wantCond := map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{ref("ExternalId"), ""}}}}
	if got := lookup(tp.doc, "Conditions", "HasExternalId"); !reflect.DeepEqual(got, wantCond) {
		t.Errorf("Conditions.HasExternalId = %#v, want %#v", got, wantCond)
	}
	wantExternalID := map[string]any{"StringEquals": map[string]any{"sts:ExternalId": ref("ExternalId")}}
	if got, want := s.raw["Condition"], map[string]any{"Fn::If": []any{"HasExternalId", wantExternalID, ref("AWS::NoValue")}}; !reflect.DeepEqual(got, want) {
		t.Errorf("trust Condition = %#v, want %#v", got, want)
	}
	for _, tc := range []struct {
		externalID string
		want       bool
	}{{"", false}, {"ext-1", true}} {
		if on := tp.condition(t, "", map[string]string{"ExternalId": tc.externalID}, "HasExternalId"); on != tc.want {
			t.Errorf("ExternalId %q: sts:ExternalId required = %v, want %v", tc.externalID, on, tc.want)
		}
	}
}

func TestMemberRolePolicy(t *testing.T) {
	_, role := loadMemberRole(t)
	policies := rehearsal.AsList(lookup(role, "Properties", "Policies"))
	if len(policies) != 1 {
		t.Fatalf("inline policies = %d, want 1", len(policies))
	}
	stmts := statements(t, lookup(policies[0], "PolicyDocument"))

	var got []string
	for _, s := range stmts {
		if s.condition == "ImportsFindings" && s.sid == "ImportFindings" {
			continue // TestMemberRoleImportsFindings
		}
		got = append(got, s.actions...)
		t.Run(s.sid, func(t *testing.T) {
			if s.condition != "" {
				t.Errorf("statement exists only under %s", s.condition)
			}
			if s.effect != "Allow" {
				t.Errorf("Effect = %s, want Allow", s.effect)
			}
			for _, k := range []string{"NotAction", "NotResource", "Principal", "NotPrincipal", "Condition"} {
				if _, ok := s.raw[k]; ok {
					t.Errorf("statement uses %s", k)
				}
			}
			for _, a := range s.actions {
				if strings.Contains(a, "*") {
					t.Errorf("action %q has a wildcard", a)
				}
				want := []any{sub(oidcProviderID)}
				if a == "iam:ListOpenIDConnectProviders" {
					want = []any{"*"} // list actions cannot be scoped
				}
				if !reflect.DeepEqual(s.resources, want) {
					t.Errorf("%s on %#v, want only %#v", a, s.resources, want)
				}
			}
		})
	}
	slices.Sort(got)
	if !slices.Equal(got, memberActions) {
		t.Errorf("member role actions = %v, want exactly %v", got, memberActions)
	}
}

// TestMemberRoleMatchesFunction keeps the member role and the function's own
// policy in step: the engine makes the same IAM calls in every account.
func TestMemberRoleMatchesFunction(t *testing.T) {
	var fnIAM []string
	for _, s := range functionStatements(t, loadTemplate(t)) {
		for _, a := range s.actions {
			if strings.HasPrefix(a, "iam:") {
				fnIAM = append(fnIAM, a)
			}
		}
	}
	slices.Sort(fnIAM)
	if fnIAM = slices.Compact(fnIAM); !slices.Equal(fnIAM, memberActions) {
		t.Errorf("function IAM actions = %v, member role's = %v: keep them equal", fnIAM, memberActions)
	}
}

// TestMemberRoleStackSetReady checks what a service-managed StackSet needs: the
// same template in every account, so no account-specific value and no export
// name that every account would share.
func TestMemberRoleStackSetReady(t *testing.T) {
	tp, _ := loadMemberRole(t)
	accountID := regexp.MustCompile(`\b[0-9]{12}\b`)
	for i, line := range strings.Split(string(tp.raw), "\n") {
		if accountID.MatchString(line) {
			t.Errorf("%s:%d carries an account id: %s", memberRoleFile, i+1, strings.TrimSpace(line))
		}
	}
	outputs, _ := tp.doc["Outputs"].(map[string]any)
	var roleArn bool
	for name, o := range outputs {
		if lookup(o, "Export") != nil {
			t.Errorf("output %s has an Export: every account of the StackSet would export the same name", name)
		}
		if reflect.DeepEqual(lookup(o, "Value"), getAtt(memberRoleID, "Arn")) {
			roleArn = true
		}
	}
	if !roleArn {
		t.Errorf("no output with the role ARN (GetAtt %s.Arn)", memberRoleID)
	}
	// The fixed role name needs CAPABILITY_NAMED_IAM, and IAM is global: the
	// template tells the operator both, with the commands.
	for _, want := range []string{
		"CAPABILITY_NAMED_IAM",
		"--permission-model SERVICE_MANAGED",
		"--auto-deployment Enabled=true,RetainStacksOnAccountRemoval=false",
		"create-stack-instances",
		"--deployment-targets OrganizationalUnitIds=",
		"ONE region",
	} {
		if !strings.Contains(string(tp.raw), want) {
			t.Errorf("%s does not mention %q", memberRoleFile, want)
		}
	}
}
