package alert_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

// snsWorld is moto_server with a topic whose queue receives every message.
type snsWorld struct {
	moto  *testpeer.Moto
	sns   *sns.Client
	queue *testpeer.AlertQueue
}

func newSNSWorld(t *testing.T, m *testpeer.Moto, name string, opts testpeer.AlertQueueOptions) *snsWorld {
	t.Helper()
	q, err := testpeer.NewAlertQueueWith(context.Background(), m.Config(), name, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &snsWorld{moto: m, sns: sns.NewFromConfig(m.Config()), queue: q}
}

func (w *snsWorld) drain(t *testing.T) []testpeer.Delivered {
	t.Helper()
	msgs, err := w.queue.Drain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// Publish delivers the subject, the attributes and the document (or the
// Chatbot notification) of a grouped message to an SQS subscriber.
func TestPublishDeliversGroupedMessage(t *testing.T) {
	m := peertest.Moto(t)
	tests := []struct {
		name   string
		format config.AlertFormat
	}{
		{"json", config.FormatJSON},
		{"chatbot", config.FormatChatbot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newSNSWorld(t, m, "grouped-"+tt.name, testpeer.AlertQueueOptions{})
			p := alert.NewSNSPublisher(w.sns, w.queue.TopicARN, alert.WithFormat(tt.format))
			msg := twoAccounts()
			if err := p.Notify(context.Background(), msg); err != nil {
				t.Fatal(err)
			}
			want, err := alert.BuildSNS(msg, tt.format)
			if err != nil {
				t.Fatal(err)
			}
			got := w.drain(t)
			if len(got) != 1 {
				t.Fatalf("%d messages delivered, want 1", len(got))
			}
			d := got[0]
			if d.Subject != "thumbprint-drift: new drift idp.corp.example:8443 (2 providers)" {
				t.Errorf("subject %q", d.Subject)
			}
			attrs := map[string]string{}
			for k, v := range d.MessageAttributes {
				if v.Type != "String" {
					t.Errorf("attribute %s of type %s", k, v.Type)
				}
				attrs[k] = v.Value
			}
			if !reflect.DeepEqual(attrs, want.Attributes) {
				t.Errorf("attributes %v, want %v", attrs, want.Attributes)
			}
			if d.Message != want.Default {
				t.Errorf("the sqs subscriber got\n%s\nwant the default variant\n%s", d.Message, want.Default)
			}
			if tt.format == config.FormatChatbot {
				golden(t, "message-chatbot.golden.json", []byte(d.Message))
			} else {
				golden(t, "message-document.golden.json", []byte(d.Message))
			}
		})
	}
}

type failingSNS struct{ err error }

func (f failingSNS) Publish(context.Context, *sns.PublishInput, ...func(*sns.Options)) (*sns.PublishOutput, error) {
	return nil, f.err
}

func TestPublishWrapsErrors(t *testing.T) {
	boom := errors.New("boom")
	p := alert.NewSNSPublisher(failingSNS{boom}, "arn:aws:sns:us-east-1:123456789012:t")
	err := p.Notify(context.Background(), twoAccounts())
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "arn:aws:sns:us-east-1:123456789012:t") || !strings.Contains(err.Error(), host) {
		t.Fatalf("error %v, want it wrapped with the topic and the host", err)
	}
}

// logBuffer is a JSON slog logger and the lines it wrote.
func logBuffer() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewJSONHandler(&buf, nil)), &buf
}

// omittedARNs are the provider ARNs logged at WARN as left out of a message.
func omittedARNs(t *testing.T, buf *bytes.Buffer) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["level"] == "WARN" && strings.HasPrefix(rec["msg"].(string), "result left out of") {
			out = append(out, rec["provider_arn"].(string))
		}
	}
	return out
}

// manyProviders is a message of n providers of one host in n accounts, each
// a typical drift (two stored thumbprints, three in the new list) with a
// detail of detailLen bytes.
func manyProviders(n, detailLen int) alert.Message {
	m := twoAccounts()
	proto := m.Results[0]
	m.Results = make([]drift.Result, n)
	for i := range m.Results {
		r := proto
		r.AccountID = fmt.Sprintf("%012d", 100000000000+i)
		r.ProviderARN = "arn:aws:iam::" + r.AccountID + ":oidc-provider/" + host + "/tenant/a"
		if detailLen > 0 {
			r.Detail = strings.Repeat("x", detailLen)
		}
		m.Results[i] = r
	}
	return m
}

// A message of exactly MaxMessageBytes (as SNS counts it: Message, subject
// and attributes) is published and delivered whole; one byte more and the
// builder leaves the last result out, counts it in omitted and logs its ARN,
// and that message is delivered too. moto counts only the Message string
// against 262,144 bytes: a stricter bound than ours, checked here as well.
func TestPublishAtTheSizeEdge(t *testing.T) {
	m := peertest.Moto(t)
	w := newSNSWorld(t, m, "edge", testpeer.AlertQueueOptions{RawMessageDelivery: true})
	ctx := context.Background()

	tests := []struct {
		name   string
		format config.AlertFormat
	}{
		{"json", config.FormatJSON},
		{"chatbot", config.FormatChatbot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := exactlyAtLimit(t, tt.format)
			n := len(msg.Results)
			logger, logs := logBuffer()
			p := alert.NewSNSPublisher(w.sns, w.queue.TopicARN, alert.WithFormat(tt.format), alert.WithLogger(logger))

			// At the edge: every result listed.
			if err := p.Notify(ctx, msg); err != nil {
				t.Fatalf("publish at the edge: %v", err)
			}
			got := w.drain(t)
			if len(got) != 1 {
				t.Fatalf("%d messages delivered, want 1", len(got))
			}
			doc := documentOf(t, got[0], tt.format)
			if doc.Count != n || doc.Omitted != 0 || len(doc.Results) != n {
				t.Fatalf("at the edge: count %d omitted %d listed %d, want %d, 0, %d", doc.Count, doc.Omitted, len(doc.Results), n, n)
			}
			if arns := omittedARNs(t, logs); len(arns) != 0 {
				t.Fatalf("logged %v as left out at the edge", arns)
			}

			// One byte more (a detail one character longer adds it to both
			// variants): the last result leaves the message.
			msg.Results[n-1].Detail += "x"
			over, err := alert.BuildSNS(msg, tt.format)
			if err != nil {
				t.Fatal(err)
			}
			if len(over.Omitted) != 1 || over.Size() > alert.MaxMessageBytes {
				t.Fatalf("one byte over: %d omitted, %d bytes", len(over.Omitted), over.Size())
			}
			if err := p.Notify(ctx, msg); err != nil {
				t.Fatalf("publish one byte over: %v", err)
			}
			got = w.drain(t)
			if len(got) != 1 {
				t.Fatalf("%d messages delivered, want 1", len(got))
			}
			doc = documentOf(t, got[0], tt.format)
			last := msg.Results[n-1].ProviderARN
			if doc.Count != n || doc.Omitted != 1 || len(doc.Results) != n-1 || doc.Results[n-2].ProviderARN == last {
				t.Fatalf("one byte over: count %d omitted %d listed %d", doc.Count, doc.Omitted, len(doc.Results))
			}
			if arns := omittedARNs(t, logs); !reflect.DeepEqual(arns, []string{last}) {
				t.Fatalf("logged %v as left out, want [%s]", arns, last)
			}
			if !strings.Contains(over.Email, "1 more not listed") {
				t.Errorf("the email does not say a provider is not listed")
			}
			t.Logf("%s: %d results of a %d-byte detail fill %d bytes (Message %d, subject %d)",
				tt.name, n, len(msg.Results[0].Detail), alert.MaxMessageBytes, len(over.Message), len(over.Subject))
		})
	}

	// The peer's own limit on the Message string, at the edge and past it.
	t.Run("moto refuses a Message over 262,144 bytes", func(t *testing.T) {
		for _, tc := range []struct {
			size int
			ok   bool
		}{{alert.MaxMessageBytes, true}, {alert.MaxMessageBytes + 1, false}} {
			// A JSON object, so the queue reader can decode what is delivered.
			body := `{"m":"` + strings.Repeat("m", tc.size-8) + `"}`
			_, err := w.sns.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(w.queue.TopicARN), Message: aws.String(body)})
			if (err == nil) != tc.ok {
				t.Errorf("publish %d bytes: %v", tc.size, err)
			}
		}
		w.drain(t)
	})
}

// exactlyAtLimit returns a message in format whose SNS size is exactly
// MaxMessageBytes with every result listed: as many 900-byte-detail results
// as fit, then details lengthened byte by byte to the limit.
func exactlyAtLimit(t *testing.T, format config.AlertFormat) alert.Message {
	t.Helper()
	msg := manyProviders(200, 900)
	first, err := alert.BuildSNS(msg, format)
	if err != nil {
		t.Fatal(err)
	}
	msg.Results = msg.Results[:len(first.Document.Results)]
	size := func() (int, bool) {
		s, err := alert.BuildSNS(msg, format)
		if err != nil {
			t.Fatal(err)
		}
		return s.Size(), len(s.Omitted) == 0
	}
	// Coarse: each character of a detail costs about 2 bytes (document and email).
	s, _ := size()
	for i := 0; (alert.MaxMessageBytes-s)/2 > 40; i = (i + 1) % len(msg.Results) {
		grow := min((alert.MaxMessageBytes-s)/2-40, alert.MaxDetailBytes-20-len(msg.Results[i].Detail))
		msg.Results[i].Detail += strings.Repeat("x", max(grow, 0))
		s, _ = size()
	}
	// Fine: the last detail, lengthened by a, with or without a newline (an
	// odd number of bytes), hits the limit exactly.
	last := &msg.Results[len(msg.Results)-1]
	base := last.Detail
	for a := 0; a <= 60; a++ {
		for _, tail := range []string{"", "\ny"} {
			last.Detail = base + strings.Repeat("x", a) + tail
			if s, whole := size(); whole && s == alert.MaxMessageBytes {
				return msg
			}
		}
	}
	t.Fatalf("no message of exactly %d bytes found", alert.MaxMessageBytes)
	return alert.Message{}
}

// documentOf is the JSON document a delivered message carries, in format.
func documentOf(t *testing.T, d testpeer.Delivered, format config.AlertFormat) alert.Document {
	t.Helper()
	raw := d.Message
	if format == config.FormatChatbot {
		var n alert.Chatbot
		if err := json.Unmarshal([]byte(raw), &n); err != nil {
			t.Fatal(err)
		}
		raw = n.Metadata.AdditionalContext["document"]
	}
	var doc alert.Document
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatalf("document %.200q: %v", raw, err)
	}
	return doc
}

// 500 providers of one host are one message: as many as fit are listed, the
// others counted in omitted and logged, each one.
func TestPublish500ProvidersOfOneHost(t *testing.T) {
	m := peertest.Moto(t)
	w := newSNSWorld(t, m, "five-hundred", testpeer.AlertQueueOptions{RawMessageDelivery: true})
	for _, format := range []config.AlertFormat{config.FormatJSON, config.FormatChatbot} {
		t.Run(string(format), func(t *testing.T) {
			logger, logs := logBuffer()
			p := alert.NewSNSPublisher(w.sns, w.queue.TopicARN, alert.WithFormat(format), alert.WithLogger(logger))
			msg := manyProviders(500, 0)
			if err := p.Notify(context.Background(), msg); err != nil {
				t.Fatal(err)
			}
			got := w.drain(t)
			if len(got) != 1 {
				t.Fatalf("%d messages, want 1", len(got))
			}
			doc := documentOf(t, got[0], format)
			if doc.Count != 500 || doc.Omitted+len(doc.Results) != 500 || len(doc.Results) == 0 {
				t.Fatalf("count %d omitted %d listed %d", doc.Count, doc.Omitted, len(doc.Results))
			}
			listed := map[string]bool{}
			for _, r := range doc.Results {
				listed[r.ProviderARN] = true
			}
			var missing []string
			for _, r := range msg.Results {
				if !listed[r.ProviderARN] {
					missing = append(missing, r.ProviderARN)
				}
			}
			if arns := omittedARNs(t, logs); !reflect.DeepEqual(arns, missing) {
				t.Fatalf("logged %d ARNs as left out, want the %d not listed", len(arns), len(missing))
			}
			built, err := alert.BuildSNS(msg, format)
			if err != nil {
				t.Fatal(err)
			}
			if built.Size() > alert.MaxMessageBytes {
				t.Fatalf("%d bytes", built.Size())
			}
			t.Logf("%s: %d of 500 typical providers listed in %d bytes, %d omitted", format, len(doc.Results), built.Size(), doc.Omitted)
		})
	}
}
