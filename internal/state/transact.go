package state

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"
)

// MaxTransactItems is TransactWriteItems' limit on actions per call.
const MaxTransactItems = 100

// transactConcurrency bounds WriteAll's calls in flight.
const transactConcurrency = 4

// WriteAll makes the writes ws, each with its own condition as alone (Save,
// Claim, Record, Release), grouped in TransactWriteItems calls of at most
// MaxTransactItems writes on distinct keys; a key written twice is written
// again in a later call, in ws's order. errs[i] is the error of ws[i]: nil,
// ErrConflict (wrapped) when its condition failed, or the call's failure.
//
// A transaction is all or nothing, ws are not: when a condition fails, the
// transaction is cancelled and its writes whose conditions held are sent
// again without the ones that failed; a write cancelled for another reason
// (another transaction on the item, throttling) is sent alone, with
// UpdateItem, as is a group of one (1 write unit where a transaction's item
// costs 2). The SDK gives each TransactWriteItems call a ClientRequestToken,
// so a retried attempt whose first one landed is not applied twice.
func (s *Store) WriteAll(ctx context.Context, ws []Write) []error {
	errs := make([]error, len(ws))
	for _, wave := range waves(ws) {
		var g errgroup.Group
		g.SetLimit(transactConcurrency)
		for start := 0; start < len(wave); start += MaxTransactItems {
			chunk := wave[start:min(start+MaxTransactItems, len(wave))]
			g.Go(func() error {
				s.transact(ctx, ws, chunk, errs)
				return nil
			})
		}
		_ = g.Wait()
	}
	return errs
}

// waves splits the indexes of ws so that no key is in one twice: the n-th
// write of a key goes in the n-th wave.
func waves(ws []Write) [][]int {
	var out [][]int
	count := make(map[string]int, len(ws))
	for i, w := range ws {
		n := count[w.key]
		count[w.key] = n + 1
		if n == len(out) {
			out = append(out, nil)
		}
		out[n] = append(out[n], i)
	}
	return out
}

// transact makes the writes of ws at idx (distinct keys, at most
// MaxTransactItems) in one transaction, and sets their errors in errs.
func (s *Store) transact(ctx context.Context, ws []Write, idx []int, errs []error) {
	for len(idx) > 1 {
		items := make([]types.TransactWriteItem, len(idx))
		for j, i := range idx {
			in := s.updateInput(ws[i])
			items[j] = types.TransactWriteItem{Update: &types.Update{
				TableName: in.TableName, Key: in.Key, UpdateExpression: in.UpdateExpression, ConditionExpression: in.ConditionExpression,
				ExpressionAttributeNames: in.ExpressionAttributeNames, ExpressionAttributeValues: in.ExpressionAttributeValues,
				ReturnValuesOnConditionCheckFailure: in.ReturnValuesOnConditionCheckFailure,
			}}
		}
		_, err := s.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		cancelled, ok := errors.AsType[*types.TransactionCanceledException](err)
		if err == nil || !ok || len(cancelled.CancellationReasons) != len(idx) {
			for _, i := range idx {
				errs[i] = s.wrap(ws[i], err)
			}
			return
		}
		var again, alone []int
		for j, reason := range cancelled.CancellationReasons {
			switch i := idx[j]; aws.ToString(reason.Code) {
			case "None", "":
				again = append(again, i)
			case "ConditionalCheckFailed":
				errs[i] = s.conflict(ws[i], reason.Item)
			default:
				alone = append(alone, i)
			}
		}
		if len(again) == len(idx) {
			// Cancelled, and no write says why: each alone.
			again, alone = nil, idx
		}
		for _, i := range alone {
			errs[i] = s.one(ctx, ws[i])
		}
		idx = again
	}
	if len(idx) == 1 {
		errs[idx[0]] = s.one(ctx, ws[idx[0]])
	}
}
