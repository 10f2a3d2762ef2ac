package alert_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
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
			p := alert.NewPublisher(w.sns, w.queue.TopicARN, alert.WithFormat(tt.format))
			msg := twoAccounts()
			if err := p.Publish(context.Background(), msg); err != nil {
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
	p := alert.NewPublisher(failingSNS{boom}, "arn:aws:sns:us-east-1:123456789012:t")
	err := p.Publish(context.Background(), twoAccounts())
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
