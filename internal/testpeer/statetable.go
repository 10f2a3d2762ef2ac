package testpeer

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// CreateStateTable creates the alert state table as template.yaml does:
// partition key pk (String) only, on-demand, TTL on expires_at.
func CreateStateTable(ctx context.Context, cfg aws.Config, name string) error {
	db := dynamodb.NewFromConfig(cfg)
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []dbtypes.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: dbtypes.ScalarAttributeTypeS}},
		KeySchema:            []dbtypes.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: dbtypes.KeyTypeHash}},
		BillingMode:          dbtypes.BillingModePayPerRequest,
	})
	if err != nil {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	_, err = db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(name),
		TimeToLiveSpecification: &dbtypes.TimeToLiveSpecification{AttributeName: aws.String("expires_at"), Enabled: aws.Bool(true)},
	})
	if err != nil {
		return fmt.Errorf("enable TTL on %s: %w", name, err)
	}
	return nil
}

// AtomicDynamo is a DynamoDB client that gives moto the per-item atomicity
// DynamoDB guarantees: moto checks a ConditionExpression and applies the
// update without a lock, so two conditional UpdateItem calls on one item at
// the same instant can both pass (measured: 25 of 200 pairs of identical
// claims). UpdateItem calls on one key are serialised here; calls on
// different keys run at once. It counts the calls.
type AtomicDynamo struct {
	*dynamodb.Client

	mu          sync.Mutex
	items       map[string]*sync.Mutex
	gets, upds  int
	failRecords int
}

// FailRecords makes the next n records fail (the writes that store what was
// sent: their update names #outcome), as a state write failing between
// delivery and record.
func (d *AtomicDynamo) FailRecords(n int) {
	d.mu.Lock()
	d.failRecords = n
	d.mu.Unlock()
}

// NewAtomicDynamo wraps the client of cfg.
func NewAtomicDynamo(cfg aws.Config) *AtomicDynamo {
	return &AtomicDynamo{Client: dynamodb.NewFromConfig(cfg), items: map[string]*sync.Mutex{}}
}

// BatchGetItem counts and passes the call.
func (d *AtomicDynamo) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	d.mu.Lock()
	d.gets++
	d.mu.Unlock()
	return d.Client.BatchGetItem(ctx, in, optFns...)
}

// UpdateItem passes the call, one at a time per key.
func (d *AtomicDynamo) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	key := fmt.Sprint(in.Key["pk"])
	d.mu.Lock()
	d.upds++
	fail := d.failRecords > 0 && strings.Contains(aws.ToString(in.UpdateExpression), "#outcome")
	if fail {
		d.failRecords--
	}
	item, ok := d.items[key]
	if !ok {
		item = &sync.Mutex{}
		d.items[key] = item
	}
	d.mu.Unlock()
	if fail {
		return nil, &smithy.GenericAPIError{Code: "InternalServerError", Message: "injected: the state write failed"}
	}
	item.Lock()
	defer item.Unlock()
	return d.Client.UpdateItem(ctx, in, optFns...)
}

// Calls returns and resets the BatchGetItem and UpdateItem counts.
func (d *AtomicDynamo) Calls() (gets, updates int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	gets, updates = d.gets, d.upds
	d.gets, d.upds = 0, 0
	return gets, updates
}
