package testpeer

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// AWSCall is one AWS API call as an AWSProxy saw it on the wire, named as IAM
// policies name it: the signing service ("iam", "events", "securityhub"),
// the action ("UpdateOpenIDConnectProviderThumbprint") and the ARNs of the
// resources it acts on ("*" for actions IAM cannot scope to a resource).
type AWSCall struct {
	// Principal is the role ARN whose credentials signed the call ("" when the
	// access key is not one the proxy learnt).
	Principal string
	// Account and Region are where the call acts.
	Account, Region string
	Service, Action string
	Resources       []string
	// Status is moto's HTTP status.
	Status int
}

// IAMAction is "service:Action", as a policy's Action names it.
func (c AWSCall) IAMAction() string { return c.Service + ":" + c.Action }

// describeCall names the action and resources of a request to service signed
// for account and region; body is its body. An action it cannot name is
// "unknown <METHOD> <path>", which no policy allows.
func describeCall(r *http.Request, body []byte, service, account, region string) (action string, resources []string) {
	arn := func(kind, rest string) string {
		return "arn:aws:" + kind + ":" + region + ":" + account + ":" + rest
	}
	if target := r.Header.Get("X-Amz-Target"); target != "" { // JSON protocols
		_, action, _ = strings.Cut(target, ".")
		var in struct {
			TableName     string
			RequestItems  map[string]json.RawMessage
			TransactItems []map[string]struct{ TableName string }
			Entries       []struct{ EventBusName string }
		}
		_ = json.Unmarshal(body, &in)
		switch service {
		case "dynamodb":
			if action == "TransactWriteItems" {
				return transactWriteAction(in.TransactItems, arn)
			}
			if in.TableName != "" {
				resources = append(resources, arn("dynamodb", "table/"+in.TableName))
			}
			for table := range in.RequestItems {
				resources = append(resources, arn("dynamodb", "table/"+table))
			}
		case "events":
			for _, e := range in.Entries {
				resources = append(resources, busARN(e.EventBusName, arn))
			}
		}
		return action, star(resources)
	}
	if service == "securityhub" { // REST JSON
		if r.Method == http.MethodPost && r.URL.Path == "/findings/import" {
			var in struct{ Findings []struct{ ProductArn string } }
			_ = json.Unmarshal(body, &in)
			for _, f := range in.Findings {
				resources = append(resources, f.ProductArn)
			}
			return "BatchImportFindings", star(resources)
		}
		return "unknown " + r.Method + " " + r.URL.Path, nil
	}
	if service == "s3" { // REST, path style: /bucket[/key]
		bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		switch {
		case key == "" && r.Method == http.MethodGet:
			return "ListBucket", []string{"arn:aws:s3:::" + bucket}
		case key != "" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			return "GetObject", []string{"arn:aws:s3:::" + bucket + "/" + key}
		case key != "" && r.Method == http.MethodPut:
			return "PutObject", []string{"arn:aws:s3:::" + bucket + "/" + key}
		case key != "" && r.Method == http.MethodDelete:
			return "DeleteObject", []string{"arn:aws:s3:::" + bucket + "/" + key}
		}
		return "unknown " + r.Method + " " + r.URL.Path, nil
	}
	form, _ := url.ParseQuery(string(body)) // query protocols
	action = form.Get("Action")
	if action == "" {
		return "unknown " + r.Method + " " + r.URL.Path, nil
	}
	for _, field := range []string{"OpenIDConnectProviderArn", "RoleArn", "TopicArn", "TargetArn"} {
		if v := form.Get(field); v != "" {
			resources = append(resources, v)
		}
	}
	return action, star(resources)
}

// transactWriteAction names a TransactWriteItems call as IAM authorises it:
// each action by its own item action on its table (an Update by
// dynamodb:UpdateItem). A call of Update actions only is UpdateItem on their
// tables; one holding another action (Put, Delete, ConditionCheck) is an
// unknown action, which no policy allows.
func transactWriteAction(items []map[string]struct{ TableName string }, arn func(kind, rest string) string) (string, []string) {
	var resources []string
	for _, it := range items {
		for op, target := range it {
			if op != "Update" {
				return "unknown TransactWriteItems holding " + op, nil
			}
			if t := arn("dynamodb", "table/"+target.TableName); !slices.Contains(resources, t) {
				resources = append(resources, t)
			}
		}
	}
	if len(resources) == 0 {
		return "unknown TransactWriteItems without actions", nil
	}
	return "UpdateItem", resources
}

// busARN is the ARN of the event bus an entry names: by ARN, by name, or the
// default bus when it names none.
func busARN(name string, arn func(kind, rest string) string) string {
	switch {
	case strings.HasPrefix(name, "arn:"):
		return name
	case name == "":
		name = "default"
	}
	return arn("events", "event-bus/"+name)
}

// star is resources, or "*" for a call that names none.
func star(resources []string) []string {
	if len(resources) == 0 {
		return []string{"*"}
	}
	return resources
}
