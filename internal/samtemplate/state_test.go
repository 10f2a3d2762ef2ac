package samtemplate

import (
	"reflect"
	"strings"
	"testing"
)

// Tests of the alert state table: the DynamoDB table the lifecycle keeps its
// state in (DESIGN.md, "Alert lifecycle (state)").

// stateTable returns the logical id of the template's single DynamoDB table.
func stateTable(t *testing.T, tp *template) string {
	t.Helper()
	tables := tp.resourcesOfType("AWS::DynamoDB::Table")
	if len(tables) != 1 {
		t.Fatalf("DynamoDB tables = %v, want exactly one (the alert state)", tables)
	}
	return tables[0]
}

func TestStateTable(t *testing.T) {
	tp := loadTemplate(t)
	id := stateTable(t, tp)
	table := tp.resource(t, id, "AWS::DynamoDB::Table")
	props, _ := table["Properties"].(map[string]any)
	tests := []struct {
		name string
		got  any
		want any
	}{
		// The table keeps operators from hearing every problem again as new: neither
		// deleting the stack nor replacing the table may drop it.
		{"DeletionPolicy", table["DeletionPolicy"], "Retain"},
		{"UpdateReplacePolicy", table["UpdateReplacePolicy"], "Retain"},
		{"BillingMode", props["BillingMode"], "PAY_PER_REQUEST"},
		{"KeySchema", props["KeySchema"], []any{map[string]any{"AttributeName": "pk", "KeyType": "HASH"}}},
		{"AttributeDefinitions", props["AttributeDefinitions"], []any{map[string]any{"AttributeName": "pk", "AttributeType": "S"}}},
		{"SSESpecification.SSEEnabled", lookup(props, "SSESpecification", "SSEEnabled"), true},
		{"PointInTimeRecoveryEnabled", lookup(props, "PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled"), true},
		{"TimeToLiveSpecification", props["TimeToLiveSpecification"], map[string]any{"AttributeName": "expires_at", "Enabled": true}},
		// A fixed name would make a redeploy after `sam delete` collide with the
		// retained table; the generated one never does.
		{"TableName", props["TableName"], nil},
		{"ProvisionedThroughput", props["ProvisionedThroughput"], nil},
		{"GlobalSecondaryIndexes", props["GlobalSecondaryIndexes"], nil},
		{"StreamSpecification", props["StreamSpecification"], nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("%s %s = %#v, want %#v", id, tc.name, tc.got, tc.want)
			}
		})
	}
}

// TestStateTableGrant checks the function's access to the table: exactly the
// item actions the state store makes, on that table only, always (the table
// always exists).
func TestStateTableGrant(t *testing.T) {
	tp := loadTemplate(t)
	table := getAtt(stateTable(t, tp), "Arn")
	var got []string
	for _, s := range functionStatements(t, tp) {
		for _, r := range s.resources {
			if reflect.DeepEqual(r, table) {
				if s.condition != "" {
					t.Errorf("statement %s on the table exists only under %s", s.sid, s.condition)
				}
				got = append(got, s.actions...)
			}
		}
		for _, a := range s.actions {
			if strings.HasPrefix(a, "dynamodb:") && !reflect.DeepEqual(s.resources, []any{table}) {
				t.Errorf("statement %s grants %s on %#v, want only the state table", s.sid, a, s.resources)
			}
		}
	}
	if want := []string{"dynamodb:BatchGetItem", "dynamodb:UpdateItem"}; !reflect.DeepEqual(got, want) {
		t.Errorf("actions on the state table = %v, want exactly %v", got, want)
	}
}
