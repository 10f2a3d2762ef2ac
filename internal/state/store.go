// Package state is the alert lifecycle's memory: one DynamoDB item per
// provider (and one per account, for account-failed), read in batches with
// BatchGetItem and written only with conditional updates, so that concurrent
// or retried invocations never overwrite each other: UpdateItem calls, or
// Update actions of TransactWriteItems calls (WriteAll), each action with
// its own condition, the same as alone.
//
// Key schema: partition key pk (String) only. pk is the provider ARN (which
// holds the account) or "account#<id>" for an account's own problems, so one
// table serves every account of an organisation. Every write sets expires_at
// (epoch seconds, the table's TTL attribute) to Retention after the write, so
// the state of a provider that disappeared expires.
//
// Claim protocol (what makes each transition go out once):
//
//  1. Claim: an update conditioned on the version read and on no live claim
//     (claim_until absent or not after now); it stores claim_id and
//     claim_until with the quiet fields (probe failures, seen times).
//  2. The caller delivers, to each integration (SNS, EventBridge, Security
//     Hub) that has not taken the transition yet.
//  3. Record (conditioned on claim_id) stores what was sent, with the
//     integrations that took it when some did not (owed_transition,
//     delivered_to: a later run sends it to the others only), and removes
//     the claim; when no integration took it, Release (conditioned on
//     claim_id) removes the claim so that a retry sends it.
//
// An invocation that dies between 1 and 3 leaves a claim that expires at
// claim_until: it delays a retry, never blocks it for good. One that dies
// between delivery and Record makes the retry send again (at-least-once).
package state

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/thumbprint-drift/thumbprint-drift/internal/iac"
)

// dynamoAPI is the part of the DynamoDB client the store calls: the function's
// role is granted exactly two item actions on the table, BatchGetItem and
// UpdateItem (which authorises a transaction's Update actions).
type dynamoAPI interface {
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

var _ dynamoAPI = (*dynamodb.Client)(nil)

// KeyAttribute is the table's partition key (String); TTLAttribute its time
// to live attribute (Number, epoch seconds).
const (
	KeyAttribute = "pk"
	TTLAttribute = "expires_at"
)

// MaxBatchGet is BatchGetItem's limit on keys per call.
const MaxBatchGet = 100

// Retention is how long an item lives after its last write (expires_at).
const Retention = 90 * 24 * time.Hour

// ErrConflict means a conditional write failed: another invocation wrote the
// item since it was read, or holds a live claim on it (or the caller's claim
// was taken over after it expired). The caller lost the race; it is not a
// failure of the run.
var ErrConflict = errors.New("state changed by another invocation")

// Item is the remembered state of one key. Each field is one named
// attribute of the DynamoDB item (attribute names in the comments); an
// attribute the code does not know is left as it is, so fields can be added
// without a migration. Item is a plain value, JSON included, so that a
// claim can be carried from one invocation to another.
type Item struct {
	Key string `json:"key"` // pk
	// Version counts the item's writes; 0: no item yet (version).
	Version int64 `json:"version"`

	// Quiet fields: observations, written without a delivery.

	// Problem is the outcome of the problem seen now (probe-failed only once
	// it reached the alerting threshold); empty when none (problem).
	Problem string `json:"problem,omitempty"`
	// FirstSeen is when Problem was first seen (first_seen).
	FirstSeen time.Time `json:"first_seen,omitzero"`
	// ProbeFailures counts consecutive runs whose probe failed (the lifecycle
	// stops counting at its threshold); FailingSince is the first of them
	// (probe_failures, failing_since).
	ProbeFailures int       `json:"probe_failures,omitempty"`
	FailingSince  time.Time `json:"failing_since,omitzero"`
	// Seen is when each thumbprint (lowercase hex) was last seen live (seen).
	Seen map[string]time.Time `json:"seen,omitempty"`
	// Owed identifies an update this function applied whose alert has not
	// been delivered yet (written by the claim, cleared by the record), and
	// OwedAt when it was applied: a later run sends it (owed_applied, owed_at).
	Owed   string    `json:"owed,omitempty"`
	OwedAt time.Time `json:"owed_at,omitzero"`
	// Writer is the provider's last writer other than the function, from a
	// CloudTrail event: tool, principal, user agent, invokedBy, time, call
	// and the list it set (writer, a map).
	Writer *iac.Writer `json:"writer,omitempty"`
	// Wrote is the list the function last applied, at WroteAt; forgotten
	// once another writer's list is found holding the live thumbprints
	// (wrote, wrote_at). A list without a live thumbprint found in its place
	// is a revert.
	Wrote   []string  `json:"wrote,omitempty"`
	WroteAt time.Time `json:"wrote_at,omitzero"`
	// RevertedAt is when a list the function applied was first found set
	// back by another writer: the provider is owned by code from then on
	// (reverted_at).
	RevertedAt time.Time `json:"reverted_at,omitzero"`

	// Alert fields: what was delivered, written only by Record.

	// Outcome and Live identify the problem last alerted; Outcome is empty
	// when none is open. AlertedAt is when it was last sent (outcome, live,
	// alerted_at).
	Outcome   string    `json:"outcome,omitempty"`
	Live      []string  `json:"live,omitempty"`
	AlertedAt time.Time `json:"alerted_at,omitzero"`
	// Applied identifies the last applied update; AppliedAt is when it was
	// sent (applied, applied_at).
	Applied   string    `json:"applied,omitempty"`
	AppliedAt time.Time `json:"applied_at,omitzero"`
	// OwedTransition is the last transition recorded when some integrations
	// took it and others did not; DeliveredTo names those that took it
	// (integration names, as "sns"). A later run sends it to the others
	// while it still holds (owed_transition, delivered_to).
	OwedTransition string   `json:"owed_transition,omitempty"`
	DeliveredTo    []string `json:"delivered_to,omitempty"`
	// FindingCreated is when the key's Security Hub finding was created: its
	// first problem, kept through every update and the archive
	// (finding_created).
	FindingCreated time.Time `json:"finding_created,omitzero"`

	// ClaimID and ClaimUntil are the claim of an invocation about to send a
	// transition (claim_id, claim_until).
	ClaimID    string    `json:"claim_id,omitempty"`
	ClaimUntil time.Time `json:"claim_until,omitzero"`
}

// Claimed reports whether a claim other than id is live at now.
func (it Item) Claimed(now time.Time, id string) bool {
	return it.ClaimID != "" && it.ClaimID != id && now.Before(it.ClaimUntil)
}

// Clone returns a copy of it that shares no map or slice with it.
func (it Item) Clone() Item {
	it.Seen = maps.Clone(it.Seen)
	it.Live = slices.Clone(it.Live)
	it.Wrote = slices.Clone(it.Wrote)
	if it.Writer != nil {
		w := *it.Writer
		w.Thumbprints = slices.Clone(w.Thumbprints)
		it.Writer = &w
	}
	it.DeliveredTo = slices.Clone(it.DeliveredTo)
	return it
}

// Store reads and writes items of one table.
type Store struct {
	api   dynamoAPI
	table string
	// pause waits before re-reading unprocessed keys.
	pause func(ctx context.Context, d time.Duration) error
}

// New returns a Store over table through api (a *dynamodb.Client).
func New(api dynamoAPI, table string) *Store {
	return &Store{api: api, table: table, pause: sleep}
}

// Table is the table's name.
func (s *Store) Table() string { return s.table }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// maxUnprocessedRounds bounds the re-reads of keys DynamoDB left unprocessed
// (it does so under throttling), with exponential backoff from 50ms.
const maxUnprocessedRounds = 8

// Get reads the items of keys, MaxBatchGet keys per BatchGetItem call, with
// strongly consistent reads. A key without an item is absent from the map.
func (s *Store) Get(ctx context.Context, keys []string) (map[string]Item, error) {
	keys = slices.Compact(slices.Sorted(slices.Values(keys)))
	out := make(map[string]Item, len(keys))
	for start := 0; start < len(keys); start += MaxBatchGet {
		chunk := keys[start:min(start+MaxBatchGet, len(keys))]
		req := make([]map[string]types.AttributeValue, len(chunk))
		for i, k := range chunk {
			req[i] = map[string]types.AttributeValue{KeyAttribute: &types.AttributeValueMemberS{Value: k}}
		}
		for round := 0; len(req) > 0; round++ {
			if round == maxUnprocessedRounds {
				return nil, fmt.Errorf("read alert state from %s: %d keys still unprocessed after %d rounds", s.table, len(req), round)
			}
			if round > 0 {
				if err := s.pause(ctx, (50*time.Millisecond)<<(round-1)); err != nil {
					return nil, fmt.Errorf("read alert state from %s: %w", s.table, err)
				}
			}
			res, err := s.api.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
				s.table: {Keys: req, ConsistentRead: aws.Bool(true)},
			}})
			if err != nil {
				return nil, fmt.Errorf("read alert state from %s: %w", s.table, err)
			}
			for _, av := range res.Responses[s.table] {
				it, err := decode(av)
				if err != nil {
					return nil, fmt.Errorf("read alert state from %s: %w", s.table, err)
				}
				out[it.Key] = it
			}
			req = res.UnprocessedKeys[s.table].Keys
		}
	}
	return out, nil
}

// Save writes next's quiet fields when the item is still at prev's version
// with no live claim; the version moves on by one. ErrConflict: lost the race.
func (s *Store) Save(ctx context.Context, prev Item, next Item, now time.Time) error {
	return s.one(ctx, SaveWrite(prev, next, now))
}

// Claim is Save that also stores a claim (id until until), so that no other
// invocation sends the transition the caller is about to send.
func (s *Store) Claim(ctx context.Context, prev Item, next Item, id string, until, now time.Time) error {
	return s.one(ctx, ClaimWrite(prev, next, id, until, now))
}

// Record stores next (quiet and alert fields) and removes the claim id, if
// the claim is still id's. version is the version the claim wrote.
func (s *Store) Record(ctx context.Context, next Item, version int64, id string, now time.Time) error {
	return s.one(ctx, RecordWrite(next, version, id, now))
}

// Release removes the claim id, if it is still id's, so that another
// invocation (a retry) sends the transition.
func (s *Store) Release(ctx context.Context, key, id string) error {
	return s.one(ctx, ReleaseWrite(key, id))
}

// Write is one conditional write of one item, as Save, Claim, Record or
// Release make it: built by SaveWrite, ClaimWrite, RecordWrite or
// ReleaseWrite, and made alone by those methods or with others by WriteAll.
// It holds what it writes; its expressions are built when it is sent, so
// that a run's writes held until then weigh no more than their items.
type Write struct {
	key string
	// action names the write in errors.
	action string
	// expr builds the update and its condition.
	expr func() (u *update, cond string)
	// claim is a claim's id and version the version it writes: a failed
	// condition that finds both is the claim's own earlier attempt.
	claim   string
	version int64
}

// SaveWrite is the write of Save.
func SaveWrite(prev, next Item, now time.Time) Write {
	return Write{key: prev.Key, action: "write", expr: func() (*update, string) { return itemUpdate(prev, next, "", time.Time{}, now) }}
}

// ClaimWrite is the write of Claim.
func ClaimWrite(prev, next Item, id string, until, now time.Time) Write {
	return Write{key: prev.Key, action: "write", claim: id, version: prev.Version + 1,
		expr: func() (*update, string) { return itemUpdate(prev, next, id, until, now) }}
}

// itemUpdate is the update of Save (claim empty) or Claim.
func itemUpdate(prev, next Item, claim string, until, now time.Time) (*update, string) {
	u := newUpdate()
	u.set("version", num(prev.Version+1))
	u.quiet(next, now)
	if next.Outcome != prev.Outcome || !slices.Equal(next.Live, prev.Live) || !next.AlertedAt.Equal(prev.AlertedAt) {
		// An alert forgotten without a transition (an expiring whose warning
		// was turned off); a claim keeps what was delivered.
		u.alerted(next)
	}
	if claim != "" {
		u.set("claim_id", str(claim))
		u.set("claim_until", num(until.UnixMilli()))
	} else {
		u.remove("claim_id", "claim_until")
	}
	u.vals[":now"] = num(now.UnixMilli())
	cond := "(attribute_not_exists(#claim_until) OR #claim_until <= :now)"
	if prev.Version == 0 {
		cond = "attribute_not_exists(#" + KeyAttribute + ") AND " + cond
		u.name(KeyAttribute)
	} else {
		u.vals[":v"] = num(prev.Version)
		cond = "#version = :v AND " + cond
	}
	return u, cond
}

// RecordWrite is the write of Record.
func RecordWrite(next Item, version int64, id string, now time.Time) Write {
	return Write{key: next.Key, action: "record", expr: func() (*update, string) {
		u := newUpdate()
		u.set("version", num(version+1))
		u.quiet(next, now)
		u.alerted(next)
		u.remove("claim_id", "claim_until")
		u.vals[":claim"] = str(id)
		return u, "#claim_id = :claim"
	}}
}

// ReleaseWrite is the write of Release.
func ReleaseWrite(key, id string) Write {
	return Write{key: key, action: "release claim on", expr: func() (*update, string) {
		u := newUpdate()
		u.remove("claim_id", "claim_until")
		u.vals[":claim"] = str(id)
		return u, "#claim_id = :claim"
	}}
}

// RecordSeen records thumbprints of a provider as seen live at at (the
// CLI's stage: a staged thumbprint then ranks with the live ones when a merge
// cuts the list). It reads the item and saves it conditionally, reading
// again when another invocation wrote in between.
func (s *Store) RecordSeen(ctx context.Context, providerARN string, thumbprints []string, at time.Time) error {
	var err error
	for range 5 {
		var items map[string]Item
		if items, err = s.Get(ctx, []string{providerARN}); err != nil {
			return err
		}
		prev, ok := items[providerARN]
		if !ok {
			prev = Item{Key: providerARN}
		}
		next := prev.Clone()
		if next.Seen == nil {
			next.Seen = map[string]time.Time{}
		}
		for _, tp := range thumbprints {
			tp = strings.ToLower(tp)
			if at.After(next.Seen[tp]) {
				next.Seen[tp] = at.UTC()
			}
		}
		if err = s.Save(ctx, prev, next, at); !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return err
}

// one makes w alone, with UpdateItem.
func (s *Store) one(ctx context.Context, w Write) error {
	_, err := s.api.UpdateItem(ctx, s.updateInput(w))
	if failed, ok := errors.AsType[*types.ConditionalCheckFailedException](err); ok {
		return s.conflict(w, failed.Item)
	}
	return s.wrap(w, err)
}

// updateInput is w as an UpdateItem call; a transaction's Update action
// carries the same fields.
func (s *Store) updateInput(w Write) *dynamodb.UpdateItemInput {
	u, cond := w.expr()
	in := &dynamodb.UpdateItemInput{
		TableName:                           aws.String(s.table),
		Key:                                 map[string]types.AttributeValue{KeyAttribute: str(w.key)},
		UpdateExpression:                    aws.String(u.expression()),
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            u.names,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	if len(u.vals) > 0 {
		in.ExpressionAttributeValues = u.vals
	}
	return in
}

// conflict is the error of w whose condition failed on old, the item as it
// was (empty when unknown or absent): ErrConflict, or none when w is a
// claim that finds itself written, its own earlier attempt (a retried call
// whose first attempt landed).
func (s *Store) conflict(w Write, old map[string]types.AttributeValue) error {
	if w.claim != "" && len(old) > 0 {
		if it, err := decode(withKey(old, w.key)); err == nil && it.ClaimID == w.claim && it.Version == w.version {
			return nil
		}
	}
	return fmt.Errorf("%s alert state of %s: %w", w.action, w.key, ErrConflict)
}

// wrap is the error of w that failed with err (nil: none).
func (s *Store) wrap(w Write, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s alert state of %s in %s: %w", w.action, w.key, s.table, err)
}

// update builds an UpdateExpression with placeholder names for every
// attribute (some, like "version", are not reserved today but may be).
type update struct {
	sets    []string
	removes []string
	names   map[string]string
	vals    map[string]types.AttributeValue
}

func newUpdate() *update {
	return &update{names: map[string]string{}, vals: map[string]types.AttributeValue{}}
}

func (u *update) name(attr string) string {
	n := "#" + attr
	u.names[n] = attr
	return n
}

func (u *update) set(attr string, v types.AttributeValue) {
	if v == nil {
		u.remove(attr)
		return
	}
	p := ":" + attr
	u.vals[p] = v
	u.sets = append(u.sets, u.name(attr)+" = "+p)
}

func (u *update) remove(attrs ...string) {
	for _, a := range attrs {
		u.removes = append(u.removes, u.name(a))
	}
}

func (u *update) expression() string {
	e := ""
	if len(u.sets) > 0 {
		e = "SET " + strings.Join(u.sets, ", ")
	}
	if len(u.removes) > 0 {
		if e != "" {
			e += " "
		}
		e += "REMOVE " + strings.Join(u.removes, ", ")
	}
	return e
}

// quiet sets the observation fields, the write time and the expiry.
func (u *update) quiet(it Item, now time.Time) {
	var failures, seen types.AttributeValue
	if it.ProbeFailures > 0 {
		failures = num(int64(it.ProbeFailures))
	}
	if len(it.Seen) > 0 {
		m := make(map[string]types.AttributeValue, len(it.Seen))
		for tp, at := range it.Seen {
			m[tp] = num(at.Unix())
		}
		seen = &types.AttributeValueMemberM{Value: m}
	}
	u.setAll([]attribute{
		{"problem", strOrNil(it.Problem)},
		{"first_seen", timeOrNil(it.FirstSeen)},
		{"probe_failures", failures},
		{"failing_since", timeOrNil(it.FailingSince)},
		{"owed_applied", strOrNil(it.Owed)},
		{"owed_at", timeOrNil(it.OwedAt)},
		{"seen", seen},
		{"writer", writerOrNil(it.Writer)},
		{"wrote", strList(it.Wrote)},
		{"wrote_at", timeOrNil(it.WroteAt)},
		{"reverted_at", timeOrNil(it.RevertedAt)},
		{"updated_at", str(now.UTC().Format(time.RFC3339))},
		{TTLAttribute, num(now.Add(Retention).Unix())},
	})
}

// attribute is one attribute an update sets (removes, when nil).
type attribute struct {
	name  string
	value types.AttributeValue
}

// setAll sets each attribute in order: one loop, where a call of set per
// attribute, each inlined, made quiet and alerted 18 KB of machine code.
func (u *update) setAll(attrs []attribute) {
	for _, a := range attrs {
		u.set(a.name, a.value)
	}
}

// writerOrNil is a writer as a map of its known fields; nil (removed) for none.
func writerOrNil(w *iac.Writer) types.AttributeValue {
	if w == nil {
		return nil
	}
	m := map[string]types.AttributeValue{"tool": str(string(w.Tool))}
	for k, v := range map[string]types.AttributeValue{"principal": strOrNil(w.Principal), "at": timeOrNil(w.At),
		"user_agent": strOrNil(w.UserAgent), "invoked_by": strOrNil(w.InvokedBy), "event_name": strOrNil(w.EventName),
		"thumbprints": strList(w.Thumbprints)} {
		if v != nil {
			m[k] = v
		}
	}
	return &types.AttributeValueMemberM{Value: m}
}

// decodeWriter reads a writer map; nil when there is none.
func decodeWriter(av types.AttributeValue) (*iac.Writer, error) {
	m, ok := av.(*types.AttributeValueMemberM)
	if !ok {
		return nil, nil
	}
	s := func(k string) string {
		v, _ := m.Value[k].(*types.AttributeValueMemberS)
		if v == nil {
			return ""
		}
		return v.Value
	}
	w := &iac.Writer{Tool: iac.Tool(s("tool")), Principal: s("principal"), UserAgent: s("user_agent"), InvokedBy: s("invoked_by"), EventName: s("event_name")}
	if at := s("at"); at != "" {
		t, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			return nil, fmt.Errorf("attribute writer.at: %w", err)
		}
		w.At = t
	}
	if l, ok := m.Value["thumbprints"].(*types.AttributeValueMemberL); ok {
		for _, v := range l.Value {
			if s, ok := v.(*types.AttributeValueMemberS); ok {
				w.Thumbprints = append(w.Thumbprints, s.Value)
			}
		}
	}
	return w, nil
}

// alerted sets the fields of what was delivered.
func (u *update) alerted(it Item) {
	u.setAll([]attribute{
		{"outcome", strOrNil(it.Outcome)},
		{"live", strList(it.Live)},
		{"alerted_at", timeOrNil(it.AlertedAt)},
		{"applied", strOrNil(it.Applied)},
		{"applied_at", timeOrNil(it.AppliedAt)},
		{"owed_transition", strOrNil(it.OwedTransition)},
		{"delivered_to", strList(it.DeliveredTo)},
		{"finding_created", timeOrNil(it.FindingCreated)},
	})
}

// strList is a list of strings, nil (removed) when empty.
func strList(l []string) types.AttributeValue {
	if len(l) == 0 {
		return nil
	}
	out := make([]types.AttributeValue, len(l))
	for i, s := range l {
		out[i] = str(s)
	}
	return &types.AttributeValueMemberL{Value: out}
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func strOrNil(s string) types.AttributeValue {
	if s == "" {
		return nil
	}
	return str(s)
}

func timeOrNil(t time.Time) types.AttributeValue {
	if t.IsZero() {
		return nil
	}
	return str(t.UTC().Format(time.RFC3339Nano))
}

func withKey(av map[string]types.AttributeValue, key string) map[string]types.AttributeValue {
	if _, ok := av[KeyAttribute]; !ok {
		av = maps.Clone(av)
		av[KeyAttribute] = str(key)
	}
	return av
}

// decode reads an item; attributes it does not know are ignored.
func decode(av map[string]types.AttributeValue) (Item, error) {
	var it Item
	var errs []error
	getS := func(name string) string {
		if v, ok := av[name].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	getN := func(name string) int64 {
		v, ok := av[name].(*types.AttributeValueMemberN)
		if !ok {
			return 0
		}
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("attribute %s: %w", name, err))
		}
		return n
	}
	getT := func(name string) time.Time {
		s := getS(name)
		if s == "" {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			errs = append(errs, fmt.Errorf("attribute %s: %w", name, err))
		}
		return t
	}
	it.Key = getS(KeyAttribute)
	if it.Key == "" {
		return Item{}, fmt.Errorf("item without a %s", KeyAttribute)
	}
	it.Version = getN("version")
	it.Problem = getS("problem")
	it.FirstSeen = getT("first_seen")
	it.ProbeFailures = int(getN("probe_failures"))
	it.FailingSince = getT("failing_since")
	it.Owed = getS("owed_applied")
	it.OwedAt = getT("owed_at")
	if m, ok := av["seen"].(*types.AttributeValueMemberM); ok {
		it.Seen = make(map[string]time.Time, len(m.Value))
		for tp, v := range m.Value {
			if n, ok := v.(*types.AttributeValueMemberN); ok {
				if sec, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
					it.Seen[tp] = time.Unix(sec, 0).UTC()
				}
			}
		}
	}
	getL := func(name string) []string {
		var out []string
		if l, ok := av[name].(*types.AttributeValueMemberL); ok {
			for _, v := range l.Value {
				if s, ok := v.(*types.AttributeValueMemberS); ok {
					out = append(out, s.Value)
				}
			}
		}
		return out
	}
	it.Outcome = getS("outcome")
	it.Live = getL("live")
	it.AlertedAt = getT("alerted_at")
	it.Applied = getS("applied")
	it.AppliedAt = getT("applied_at")
	it.OwedTransition = getS("owed_transition")
	it.DeliveredTo = getL("delivered_to")
	it.FindingCreated = getT("finding_created")
	w, werr := decodeWriter(av["writer"])
	if werr != nil {
		errs = append(errs, werr)
	}
	it.Writer = w
	it.Wrote = getL("wrote")
	it.WroteAt = getT("wrote_at")
	it.RevertedAt = getT("reverted_at")
	it.ClaimID = getS("claim_id")
	if ms := getN("claim_until"); ms > 0 {
		it.ClaimUntil = time.UnixMilli(ms).UTC()
	}
	if len(errs) > 0 {
		return Item{}, fmt.Errorf("item %s: %w", it.Key, errors.Join(errs...))
	}
	return it, nil
}
