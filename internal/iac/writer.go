// Package iac holds what the function knows of the code that owns a provider
// (DESIGN.md "Infrastructure as code"): who wrote a provider, read from a
// CloudTrail record (the tool, the principal, when); whether a provider is
// owned by code (its managed-by tag, its recorded writer, a revert); and the
// change to make in that code (code_fix). It is pure: no AWS calls, no state.
package iac

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Tool is what made an API call, or what owns a provider.
type Tool string

// The tools a CloudTrail record is recognised as, plus Other, which only a
// thumbprint-drift:managed-by tag names (code the function does not know).
const (
	Terraform      Tool = "terraform"
	CloudFormation Tool = "cloudformation"
	Pulumi         Tool = "pulumi"
	Eksctl         Tool = "eksctl"
	Console        Tool = "console"
	CLI            Tool = "cli"
	Unknown        Tool = "unknown"
	Other          Tool = "other"
)

// Code reports whether t deploys from code: a provider last written by it is
// owned by code, and its next apply sets back a list written behind its back.
func (t Tool) Code() bool {
	switch t {
	case Terraform, CloudFormation, Pulumi, Eksctl:
		return true
	}
	return false
}

// Writer is who last wrote a provider, other than the function: what the
// state table records and a result's last_writer shows.
type Writer struct {
	Tool Tool `json:"tool"`
	// Principal is the caller's ARN (userIdentity.arn: for an assumed role,
	// arn:aws:sts::<account>:assumed-role/<role>/<session>), else its role's,
	// else the AWS service that called.
	Principal string `json:"principal"`
	// At is the call's eventTime.
	At time.Time `json:"at,omitzero"`
	// UserAgent and InvokedBy are the record's, as CloudTrail gave them: the
	// state keeps them; results and messages show the Brief writer.
	UserAgent string `json:"user_agent,omitempty"`
	InvokedBy string `json:"invoked_by,omitempty"`
	// EventName is the IAM call; Thumbprints the list it set (create and
	// thumbprint update), in its order.
	EventName   string   `json:"event_name,omitempty"`
	Thumbprints []string `json:"thumbprints,omitempty"`
}

// Brief is w with only its tool, principal and time: a result's last_writer
// (a user agent is hundreds of bytes, for each provider of a message). nil
// for nil.
func (w *Writer) Brief() *Writer {
	if w == nil {
		return nil
	}
	return &Writer{Tool: w.Tool, Principal: w.Principal, At: w.At}
}

// Newer returns the later of two writers (by At; a known time over an
// unknown one; a when both are unknown or equal), either may be nil.
func Newer(a, b *Writer) *Writer {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case b.At.After(a.At):
		return b
	}
	return a
}

// String names the writer as an alert does: "terraform (arn:..., 2025-01-15T15:41:09Z)".
func (w *Writer) String() string {
	if w == nil {
		return string(Unknown) + " (no CloudTrail event seen)"
	}
	var parts []string
	if w.Principal != "" {
		parts = append(parts, w.Principal)
	}
	if !w.At.IsZero() {
		parts = append(parts, w.At.UTC().Format(time.RFC3339))
	}
	if len(parts) == 0 {
		return string(w.Tool)
	}
	return string(w.Tool) + " (" + strings.Join(parts, ", ") + ")"
}

// The service name CloudFormation's calls carry as invokedBy, source IP and
// user agent; the console's user agent.
const (
	cloudFormationService = "cloudformation.amazonaws.com"
	consoleService        = "console.amazonaws.com"
)

// Call is the part of a CloudTrail record that tells who made it.
type Call struct {
	UserAgent       string
	InvokedBy       string
	SourceIPAddress string
	// FromConsole is sessionCredentialFromConsole.
	FromConsole bool
}

// Classify names the tool that made a call, from its user agent, invokedBy
// and source address (DESIGN.md: terraform, pulumi, cloudformation, eksctl,
// console, cli, else unknown). CloudFormation comes first: it calls with its
// own user agent on behalf of whoever deployed the stack, whatever their tool;
// the console's session credentials come before the CLI's user agent (the CLI
// in CloudShell is a person at the console).
func Classify(c Call) Tool {
	ua := strings.ToLower(c.UserAgent)
	switch {
	case strings.EqualFold(c.InvokedBy, cloudFormationService), strings.EqualFold(c.SourceIPAddress, cloudFormationService),
		strings.Contains(ua, cloudFormationService):
		return CloudFormation
	case strings.Contains(ua, "terraform/"), strings.Contains(ua, "terraform-provider-aws"):
		return Terraform
	case strings.Contains(ua, "pulumi"):
		return Pulumi
	case strings.Contains(ua, "eksctl/"):
		return Eksctl
	case strings.Contains(ua, consoleService), strings.EqualFold(c.SourceIPAddress, consoleService), c.FromConsole:
		return Console
	case strings.Contains(ua, "aws-cli/"):
		return CLI
	}
	return Unknown
}

// The IAM calls that write a provider: the first two set its list.
const (
	eventCreate = "CreateOpenIDConnectProvider"
	eventUpdate = "UpdateOpenIDConnectProviderThumbprint"
	eventTag    = "TagOpenIDConnectProvider"
	eventUntag  = "UntagOpenIDConnectProvider"
)

// record is the part of a CloudTrail record (an EventBridge event's detail)
// ParseWriter reads. Fields CloudTrail documents as strings but a hand-made
// event may get wrong are read leniently: a writer is evidence, never a
// reason to refuse an event.
type record struct {
	EventName                    string          `json:"eventName"`
	EventTime                    string          `json:"eventTime"`
	ErrorCode                    json.RawMessage `json:"errorCode"`
	UserAgent                    string          `json:"userAgent"`
	SourceIPAddress              string          `json:"sourceIPAddress"`
	SessionCredentialFromConsole json.RawMessage `json:"sessionCredentialFromConsole"`
	UserIdentity                 struct {
		Type           string `json:"type"`
		PrincipalID    string `json:"principalId"`
		ARN            string `json:"arn"`
		InvokedBy      string `json:"invokedBy"`
		SessionContext struct {
			SessionIssuer struct {
				ARN string `json:"arn"`
			} `json:"sessionIssuer"`
		} `json:"sessionContext"`
	} `json:"userIdentity"`
	RequestParameters struct {
		ThumbprintList []string `json:"thumbprintList"`
	} `json:"requestParameters"`
}

// ParseWriter reads who made the call a CloudTrail record (an EventBridge
// event's detail) holds, when that call makes them the provider's last
// writer; nil when it does not:
//
//   - the function's own calls are never a writer: those of an assumed role
//     whose session is one of ownSessions (the function's name, the member
//     roles' session);
//   - a failed call changed nothing;
//   - a create or a thumbprint update sets the list: its caller is the writer;
//   - a tag or untag call leaves the list alone: its caller is recorded only
//     when a tool that deploys from code made it (evidence the provider is in
//     code); a person tagging from the console does not take ownership away
//     from the code that wrote the list;
//   - any other call writes nothing the function cares for.
//
// An error says the record is not a JSON object of the documented shape.
func ParseWriter(detail []byte, ownSessions ...string) (*Writer, error) {
	var r record
	if err := json.Unmarshal(detail, &r); err != nil {
		return nil, fmt.Errorf("read the writer of a CloudTrail record: %w", err)
	}
	if e := bytes.TrimSpace(r.ErrorCode); len(e) > 0 && !bytes.Equal(e, []byte("null")) && !bytes.Equal(e, []byte(`""`)) {
		return nil, nil
	}
	id := r.UserIdentity
	if session := AssumedRoleSession(id.Type, id.ARN, id.PrincipalID); session != "" {
		for _, own := range ownSessions {
			if own != "" && session == own {
				return nil, nil
			}
		}
	}
	w := &Writer{
		Tool: Classify(Call{UserAgent: r.UserAgent, InvokedBy: id.InvokedBy, SourceIPAddress: r.SourceIPAddress,
			FromConsole: strings.Contains(strings.ToLower(string(r.SessionCredentialFromConsole)), "true")}),
		UserAgent: r.UserAgent,
		InvokedBy: id.InvokedBy,
		EventName: r.EventName,
	}
	switch r.EventName {
	case eventCreate, eventUpdate:
		w.Thumbprints = r.RequestParameters.ThumbprintList
	case eventTag, eventUntag:
		if !w.Tool.Code() {
			return nil, nil
		}
	default:
		return nil, nil
	}
	w.Principal = firstOf(id.ARN, id.SessionContext.SessionIssuer.ARN, id.InvokedBy, id.PrincipalID, id.Type)
	if t, err := time.Parse(time.RFC3339, r.EventTime); err == nil {
		w.At = t.UTC()
	}
	return w, nil
}

// AssumedRoleSession is the role session name of a CloudTrail userIdentity
// of type AssumedRole (the last part of
// arn:aws:sts::<account>:assumed-role/<role>/<session>, else what follows the
// role id in principalId); empty for any other identity. Neither role names
// nor session names contain "/".
func AssumedRoleSession(typ, arn, principalID string) string {
	if typ != "AssumedRole" {
		return ""
	}
	if _, rest, ok := strings.Cut(arn, ":assumed-role/"); ok {
		if _, session, ok := strings.Cut(rest, "/"); ok && session != "" {
			return session
		}
	}
	_, session, _ := strings.Cut(principalID, ":")
	return session
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
