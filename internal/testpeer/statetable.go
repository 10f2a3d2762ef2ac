package testpeer

import (
	"context"
	"fmt"
	"slices"
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
// claims). UpdateItem calls on one key are serialised here, and a
// TransactWriteItems call with the calls on each of its keys; calls on
// different keys run at once. (The moto that StartMoto starts serialises
// its writes too: this client keeps tests true on any moto.) It counts the
// calls.
type AtomicDynamo struct {
	*dynamodb.Client

	mu              sync.Mutex
	items           map[string]*sync.Mutex
	gets, upds, txs int
	failRecords     int
}

// FailRecords makes the next n records fail (the writes that store what was
// sent: their update names #outcome; a transaction holding some fails
// whole), as a state write failing between delivery and record.
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
	unlock, fail := d.lock(&d.upds, []map[string]dbtypes.AttributeValue{in.Key}, []*string{in.UpdateExpression})
	if fail != nil {
		return nil, fail
	}
	defer unlock()
	return d.Client.UpdateItem(ctx, in, optFns...)
}

// TransactWriteItems passes the call once no other call on its keys runs.
func (d *AtomicDynamo) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	var keys []map[string]dbtypes.AttributeValue
	var exprs []*string
	for _, it := range in.TransactItems {
		if it.Update != nil {
			keys, exprs = append(keys, it.Update.Key), append(exprs, it.Update.UpdateExpression)
		}
	}
	unlock, fail := d.lock(&d.txs, keys, exprs)
	if fail != nil {
		return nil, fail
	}
	defer unlock()
	return d.Client.TransactWriteItems(ctx, in, optFns...)
}

// lock counts a write call in count, and locks its keys (in order, so that
// two calls never wait for each other); fail is the injected failure of a
// call holding a record (then nothing is locked).
func (d *AtomicDynamo) lock(count *int, keys []map[string]dbtypes.AttributeValue, exprs []*string) (unlock func(), fail error) {
	d.mu.Lock()
	*count++
	records := 0
	for _, e := range exprs {
		if strings.Contains(aws.ToString(e), "#outcome") {
			records++
		}
	}
	if records > 0 && d.failRecords > 0 {
		d.failRecords = max(d.failRecords-records, 0)
		d.mu.Unlock()
		return nil, &smithy.GenericAPIError{Code: "InternalServerError", Message: "injected: the state write failed"}
	}
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = fmt.Sprint(k["pk"])
	}
	slices.Sort(names)
	names = slices.Compact(names)
	held := make([]*sync.Mutex, len(names))
	for i, key := range names {
		item, ok := d.items[key]
		if !ok {
			item = &sync.Mutex{}
			d.items[key] = item
		}
		held[i] = item
	}
	d.mu.Unlock()
	for _, m := range held {
		m.Lock()
	}
	return func() {
		for _, m := range held {
			m.Unlock()
		}
	}, nil
}

// Calls returns and resets the BatchGetItem, UpdateItem and
// TransactWriteItems counts.
func (d *AtomicDynamo) Calls() (gets, updates, transacts int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	gets, updates, transacts = d.gets, d.upds, d.txs
	d.gets, d.upds, d.txs = 0, 0, 0
	return gets, updates, transacts
}
