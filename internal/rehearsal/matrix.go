// Package rehearsal rehearses a deploy of the SAM application on this machine
// (make rehearse; DESIGN.md, "Deploy rehearsal"): for each parameter set of
// Matrix, template.yaml is transformed with aws-sam-translator (what `sam
// deploy` submits), created as a stack in moto_server's CloudFormation, the
// real function binary runs one scheduled event with the environment and the
// role the stack gave it, every AWS call it made is checked against the
// policies of the role that made it, and the stack is deleted. In
// organisation sets, member-role.yaml is created in a member account and the
// function assumes the role that stack created.
package rehearsal

import "strings"

// Set is one parameter set of the matrix.
type Set struct {
	// Name is how the output names the set.
	Name string
	// Params are template.yaml's parameter values; the others take their
	// Default. In a value, {member} is the member account's id, {org} the
	// organisation's id and {account} the stack's own account.
	Params map[string]string
	// Region of the stack; "" is us-east-1, where IAM's CloudTrail events arrive.
	Region string
}

// Matrix is every set the rehearsal runs: each changes which resources or
// policy statements the stack has. A set with OrgRoleName or AccountRoleArns
// also creates member-role.yaml in a member account (same ExternalId and
// SecurityHub; CentralEventBusArn the central stack's ProviderChangeBusArn).
var Matrix = []Set{
	{Name: "defaults"},
	{Name: "organisation", Params: map[string]string{"OrgRoleName": "thumbprint-drift-member", "AssumeRoleExternalId": "rehearsal-external-id", "OrganizationId": "{org}"}},
	{Name: "security-hub-and-bus", Params: map[string]string{"SecurityHub": "true", "EventBusName": "thumbprint-drift-alerts"}},
	{Name: "alert-email", Params: map[string]string{"AlertEmail": "ops@example.com", "AlertFormat": "chatbot", "DriftMode": "alert"}},
	// Sharded: the schedule starts the state machine; the function runs plan,
	// check and notify with the stack's bucket.
	{Name: "sharded", Params: map[string]string{"OrgRoleName": "thumbprint-drift-member", "ShardSize": "20"}},
	{Name: "account-roles-eu", Region: "eu-west-1", Params: map[string]string{"AccountRoleArns": "arn:aws:iam::{member}:role/thumbprint-drift-member", "SecurityHub": "true", "EventBusName": "arn:aws:events:eu-west-1:{account}:event-bus/thumbprint-drift-alerts"}},
}

// SetNamed is the set of Matrix called name.
func SetNamed(name string) (Set, bool) {
	for _, s := range Matrix {
		if s.Name == name {
			return s, true
		}
	}
	return Set{}, false
}

func (s Set) region() string {
	if s.Region == "" {
		return "us-east-1"
	}
	return s.Region
}

// memberRoleName is the role member-role.yaml creates in the member account,
// "" when the set checks only the stack's own account.
func (s Set) memberRoleName() string {
	if n := s.Params["OrgRoleName"]; n != "" {
		return n
	}
	if arns := s.Params["AccountRoleArns"]; arns != "" {
		first, _, _ := strings.Cut(arns, ",")
		_, name, _ := strings.Cut(first, ":role/")
		return name
	}
	return ""
}
