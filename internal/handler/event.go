package handler

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/iac"
	"github.com/thumbprint-drift/thumbprint-drift/internal/oidcprovider"
)

// Kind is what sent an invocation.
type Kind string

// The kinds of invocation.
const (
	// KindSchedule is any EventBridge event but an IAM CloudTrail call (the
	// schedule): every provider, default mode.
	KindSchedule Kind = "schedule"
	// KindManual is {"mode": ..., "providers": [...]} (or an empty payload).
	KindManual Kind = "manual"
	// KindCloudTrail is an IAM API call through CloudTrail and EventBridge:
	// the one provider it names.
	KindCloudTrail Kind = "cloudtrail"
)

// Ignore says why an event checks nothing.
type Ignore string

// The reasons an event checks nothing. Each is logged once; the invocation
// returns an empty report and no error, since retrying would not change it.
const (
	// IgnoreOwnUpdate: the thumbprint update was the function's own (its
	// execution role's session, named after the function, or the member
	// roles' session accounts.SessionName).
	IgnoreOwnUpdate Ignore = "own-update"
	// IgnoreCallFailed: the API call failed (errorCode set); nothing changed.
	IgnoreCallFailed Ignore = "call-failed"
	// IgnoreNoProvider: the event names no OIDC provider ARN.
	IgnoreNoProvider Ignore = "no-provider"
	// IgnoreOtherCall: an IAM call other than the four the rule matches
	// (someone widened the rule). Ignored rather than refused: a refusal
	// is an invocation error, which Lambda retries and then sends to the
	// failure destination, for an event no retry can ever check.
	IgnoreOtherCall Ignore = "unhandled-call"
	// IgnoreOtherAccount: the event's account does not hold the provider it
	// names (IAM never records that; a hand-made event can).
	IgnoreOtherAccount Ignore = "account-mismatch"
	// IgnoreMalformed: a CloudTrail event whose fields cannot be read (no
	// detail, a number where a string belongs, a string where an object
	// does). CloudTrail never sends one; refusing it would only make Lambda
	// retry it into the dead-letter queue, since no retry can read it.
	IgnoreMalformed Ignore = "malformed"
)

// Event is what an invocation payload asks for.
type Event struct {
	Kind Kind
	// Request is the run to make; unused when Ignore is set.
	Request drift.Request
	// Ignore, when set, is why the event checks nothing; Detail says it in a sentence.
	Ignore Ignore
	Detail string
	// Call is the CloudTrail API call (KindCloudTrail only).
	Call *Call
}

// Call is the IAM API call a CloudTrail event records.
type Call struct {
	EventName string `json:"event_name"`
	EventID   string `json:"event_id"`
	// Account is the provider's account: the ARN's, which must be the event's
	// ("account", else detail.recipientAccountId) when it has one.
	Account     string `json:"account_id"`
	ProviderARN string `json:"provider_arn"`
	// Principal is detail.userIdentity.arn; Session the role session name
	// when the caller was an assumed role.
	Principal string `json:"principal"`
	Session   string `json:"session,omitempty"`
	// ErrorCode is set when the call failed.
	ErrorCode string `json:"error_code,omitempty"`
	// Writer is who wrote the provider (tool, principal, time), when the call
	// makes them its last writer (iac.ParseWriter: never the function itself).
	Writer *iac.Writer `json:"writer,omitempty"`
}

// The EventBridge fields of a CloudTrail IAM call.
const (
	cloudTrailDetailType = "AWS API Call via CloudTrail"
	iamSource            = "aws.iam"
)

// The IAM calls the event rule matches: each may change what a provider
// trusts or how the function treats it.
const (
	eventCreate = "CreateOpenIDConnectProvider"
	eventUpdate = "UpdateOpenIDConnectProviderThumbprint"
	eventTag    = "TagOpenIDConnectProvider"
	eventUntag  = "UntagOpenIDConnectProvider"
)

// CloudTrailEventNames are the IAM calls that trigger a check of the
// provider they name, in the order of DESIGN.md.
var CloudTrailEventNames = []string{eventCreate, eventUpdate, eventTag, eventUntag}

// eventBridge is the envelope of an EventBridge event (aws-lambda-go's
// events.CloudWatchEvent, without the time parsing a malformed time would fail).
type eventBridge struct {
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Detail     json.RawMessage `json:"detail"`
}

// cloudTrailDetail is the part of a CloudTrail record the function reads.
type cloudTrailDetail struct {
	EventName          string `json:"eventName"`
	EventID            string `json:"eventID"`
	ErrorCode          string `json:"errorCode"`
	ErrorMessage       string `json:"errorMessage"`
	RecipientAccountID string `json:"recipientAccountId"`
	UserIdentity       *struct {
		Type        string `json:"type"`
		PrincipalID string `json:"principalId"`
		ARN         string `json:"arn"`
	} `json:"userIdentity"`
	RequestParameters *struct {
		OpenIDConnectProviderArn string `json:"openIDConnectProviderArn"`
	} `json:"requestParameters"`
	ResponseElements *struct {
		OpenIDConnectProviderArn string `json:"openIDConnectProviderArn"`
	} `json:"responseElements"`
}

// ParseEvent reads an invocation payload. functionName is the function's own
// name (AWS_LAMBDA_FUNCTION_NAME): Lambda names the execution role's session
// after it, so CloudTrail shows the function's own updates under it.
//
//   - An EventBridge event with source aws.iam and detail-type "AWS API Call
//     via CloudTrail" is a CloudTrail call: CreateOpenIDConnectProvider,
//     UpdateOpenIDConnectProviderThumbprint, TagOpenIDConnectProvider and
//     UntagOpenIDConnectProvider check just the provider they name, in its
//     account, in the default mode. A failed call, a call without a provider,
//     another IAM call, and the function's own thumbprint updates check
//     nothing (Event.Ignore says why).
//   - Any other EventBridge event (it carries "source" and "detail-type"; the
//     schedule) checks every provider in the default mode.
//   - Anything else must be a manual payload with only "mode" and
//     "providers"; an unknown key is refused rather than guessed at, since a
//     typo in "mode" would otherwise run the default mode, which may write.
//
// A CloudTrail event whose fields cannot be read is acknowledged
// (IgnoreMalformed). A payload that is none of these, a manual payload with
// an unknown key, an empty "providers" list or an entry that is not an OIDC
// provider ARN, an EventBridge event carrying a manual key ("mode",
// "providers"), and data after the JSON object are refused with ErrBadEvent
// naming the key.
func ParseEvent(payload []byte, functionName string) (Event, error) {
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return Event{Kind: KindManual}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	var probe map[string]json.RawMessage
	if err := dec.Decode(&probe); err != nil {
		return Event{}, fmt.Errorf("%w: want a JSON object: %v", ErrBadEvent, err)
	}
	if probe == nil {
		return Event{}, fmt.Errorf("%w: want a JSON object, not null followed by more data", ErrBadEvent)
	}
	if off := dec.InputOffset(); off < int64(len(trimmed)) {
		return Event{}, fmt.Errorf("%w: trailing data after the JSON object at byte %d: %.40q", ErrBadEvent, off, trimmed[off:])
	}
	_, hasType := probe["detail-type"]
	_, hasSource := probe["source"]
	if hasType && hasSource {
		for _, key := range []string{"mode", "providers"} {
			if _, ok := probe[key]; ok {
				return Event{}, fmt.Errorf(`%w: key %q: an EventBridge event (it has "source" and "detail-type") runs as the schedule or a CloudTrail check, never with a %s; `+
					`send a manual payload {"mode": ..., "providers": [...]} instead`, ErrBadEvent, key, key)
			}
		}
		var source, detailType string
		if json.Unmarshal(probe["source"], &source) == nil && json.Unmarshal(probe["detail-type"], &detailType) == nil &&
			source == iamSource && detailType == cloudTrailDetailType {
			return parseCloudTrail(probe, functionName)
		}
		var eb eventBridge
		if err := json.Unmarshal(trimmed, &eb); err != nil {
			return Event{}, fmt.Errorf("%w: EventBridge event: %v", ErrBadEvent, err)
		}
		return Event{Kind: KindSchedule}, nil
	}
	return parseManual(trimmed)
}

func parseManual(payload []byte) (Event, error) {
	var m struct {
		Mode      string    `json:"mode"`
		Providers *[]string `json:"providers"`
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Event{}, fmt.Errorf(`%w: want an EventBridge event or {"mode": "report|alert|remediate", "providers": ["arn:..."]}: %v`, ErrBadEvent, err)
	}
	ev := Event{Kind: KindManual}
	if m.Mode != "" {
		mode, err := config.ParseMode(m.Mode)
		if err != nil {
			return Event{}, fmt.Errorf("%w: key \"mode\": %v", ErrBadEvent, err)
		}
		ev.Request.Mode = mode
	}
	if m.Providers != nil && len(*m.Providers) == 0 {
		return Event{}, fmt.Errorf(`%w: key "providers": an empty list checks nothing; leave the key out to check every provider`, ErrBadEvent)
	}
	if m.Providers != nil {
		for _, arn := range *m.Providers {
			if _, err := oidcprovider.ParseARN(arn); err != nil {
				return Event{}, fmt.Errorf("%w: key \"providers\": %v", ErrBadEvent, err)
			}
			ev.Request.Providers = append(ev.Request.Providers, arn)
		}
	}
	return ev, nil
}

// parseCloudTrail narrows the run to the provider a CloudTrail IAM call names.
// One that cannot be read is acknowledged (IgnoreMalformed), never refused.
func parseCloudTrail(fields map[string]json.RawMessage, functionName string) (Event, error) {
	malformed := func(format string, args ...any) (Event, error) {
		return Event{Kind: KindCloudTrail, Ignore: IgnoreMalformed,
			Detail: fmt.Sprintf(format, args...) + "; CloudTrail never sends such a record, and no retry can read it"}, nil
	}
	var eb eventBridge
	if raw, ok := fields["account"]; ok && json.Unmarshal(raw, &eb.Account) != nil {
		return malformed("CloudTrail event: \"account\" is %.40s, not a string", raw)
	}
	eb.Detail = fields["detail"]
	var d cloudTrailDetail
	if detail := bytes.TrimSpace(eb.Detail); len(detail) == 0 || bytes.Equal(detail, []byte("null")) {
		return malformed("CloudTrail event without detail")
	}
	if err := json.Unmarshal(eb.Detail, &d); err != nil {
		return malformed("CloudTrail event detail: %v", err)
	}
	call := &Call{EventName: d.EventName, EventID: d.EventID, Account: eb.Account, ErrorCode: d.ErrorCode}
	if call.Account == "" {
		call.Account = d.RecipientAccountID
	}
	if id := d.UserIdentity; id != nil {
		call.Principal = id.ARN
		call.Session = iac.AssumedRoleSession(id.Type, id.ARN, id.PrincipalID)
	}
	// A record whose writer fields have odd types still names its provider:
	// it is checked, without a writer.
	call.Writer, _ = iac.ParseWriter(eb.Detail, functionName, accounts.SessionName)
	switch d.EventName {
	case eventCreate:
		if d.ResponseElements != nil {
			call.ProviderARN = d.ResponseElements.OpenIDConnectProviderArn
		}
	case eventUpdate, eventTag, eventUntag:
		if d.RequestParameters != nil {
			call.ProviderARN = d.RequestParameters.OpenIDConnectProviderArn
		}
	}
	ev := Event{Kind: KindCloudTrail, Call: call}
	ignore := func(why Ignore, format string, args ...any) (Event, error) {
		ev.Ignore, ev.Detail = why, fmt.Sprintf(format, args...)
		return ev, nil
	}
	switch {
	case !isCloudTrailEventName(d.EventName):
		return ignore(IgnoreOtherCall, "%q is not one of the calls that trigger a check (%s); the schedule still checks every provider",
			d.EventName, strings.Join(CloudTrailEventNames, ", "))
	case d.ErrorCode != "":
		return ignore(IgnoreCallFailed, "%s failed (%s: %s): nothing changed", d.EventName, d.ErrorCode, d.ErrorMessage)
	case call.ProviderARN == "":
		return ignore(IgnoreNoProvider, "%s names no OIDC provider ARN", d.EventName)
	}
	account, ok := providerAccount(call.ProviderARN)
	switch {
	case !ok:
		return ignore(IgnoreNoProvider, "%s names %q, not an OIDC provider ARN", d.EventName, call.ProviderARN)
	case call.Account != "" && call.Account != account:
		return ignore(IgnoreOtherAccount, "the event comes from account %s but names a provider of account %s", call.Account, account)
	case d.EventName == eventUpdate && call.Session != "" && (call.Session == functionName || call.Session == accounts.SessionName):
		return ignore(IgnoreOwnUpdate, "thumbprint update made by this function (role session %q): already checked", call.Session)
	}
	call.Account = account
	ev.Request.Providers, ev.Request.Writer = []string{call.ProviderARN}, call.Writer
	return ev, nil
}

func isCloudTrailEventName(name string) bool {
	for _, n := range CloudTrailEventNames {
		if n == name {
			return true
		}
	}
	return false
}

// providerAccount returns the account of an OIDC provider ARN.
func providerAccount(arn string) (string, bool) {
	a, err := oidcprovider.ParseARN(arn)
	return a.Account, err == nil
}
