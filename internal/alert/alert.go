// Package alert formats drift results as SNS messages and publishes them.
package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
)

// API is the part of the SNS client this package calls.
type API interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

var _ API = (*sns.Client)(nil)

// MaxSubject is SNS's limit on a subject's length.
const MaxSubject = 100

// Message is one SNS message.
type Message struct {
	Subject string
	// Body is the JSON message.
	Body string
	// Attributes are String message attributes subscribers can filter on.
	Attributes map[string]string
}

// body is the JSON message: the result's fields plus the run's context.
type body struct {
	drift.Result
	AccountID string `json:"account_id"`
	Mode      string `json:"mode"`
	CheckedAt string `json:"checked_at"`
	Fix       string `json:"fix,omitempty"`
}

// Build formats the message for one alert.
func Build(a drift.Alert) (Message, error) {
	r := a.Result
	account := r.AccountID
	if account == "" {
		account = accounts.AccountOf(r.ProviderARN)
	}
	b := body{
		Result:    r,
		AccountID: account,
		Mode:      string(r.Mode),
		CheckedAt: a.CheckedAt.UTC().Format(time.RFC3339),
	}
	if r.Outcome == drift.Drift && len(r.NewThumbprints) > 0 {
		b.Fix = FixCommand(r.ProviderARN, r.NewThumbprints)
	}
	js, err := json.Marshal(b)
	if err != nil {
		return Message{}, fmt.Errorf("encode alert for %s: %w", r.ProviderARN, err)
	}
	attrs := map[string]string{
		"outcome":  string(r.Outcome),
		"severity": string(r.Severity),
	}
	// SNS refuses empty attribute values: an account-failed alert has no provider.
	if r.ProviderARN != "" {
		attrs["provider_arn"] = r.ProviderARN
	}
	if account != "" {
		attrs["account_id"] = account
	}
	where := r.URL
	if where == "" {
		where = "account " + account
		if account == "" {
			where = "organization"
		}
	}
	return Message{Subject: Subject(r.Outcome, where), Body: string(js), Attributes: attrs}, nil
}

// Subject is "thumbprint-drift: <outcome> <host>" (the host of a provider
// Url, or what failed), cut to 100 characters and kept to printable ASCII as
// SNS requires.
func Subject(o drift.Outcome, url string) string {
	host, _, _ := strings.Cut(url, "/")
	s := fmt.Sprintf("thumbprint-drift: %s %s", o, host)
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
	if len(s) > MaxSubject {
		s = s[:MaxSubject]
	}
	return s
}

// FixCommand is the AWS CLI command that writes list to the provider.
func FixCommand(arn string, list []string) string {
	return "aws iam update-open-id-connect-provider-thumbprint --open-id-connect-provider-arn " +
		shellQuote(arn) + " --thumbprint-list " + strings.Join(list, " ")
}

func shellQuote(s string) string {
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(":/._-=+@,%", r)) {
			safe = false
			break
		}
	}
	if safe && s != "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Publisher publishes alerts to one SNS topic.
type Publisher struct {
	api    API
	topic  string
	format config.AlertFormat
	logger *slog.Logger
}

var _ drift.Publisher = (*Publisher)(nil)

// NewPublisher returns a Publisher to topicARN through api (an *sns.Client).
func NewPublisher(api API, topicARN string, opts ...PublisherOption) *Publisher {
	p := &Publisher{api: api, topic: topicARN, format: config.FormatJSON, logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Notify publishes one alert.
func (p *Publisher) Notify(ctx context.Context, a drift.Alert) error {
	m, err := Build(a)
	if err != nil {
		return err
	}
	attrs := make(map[string]types.MessageAttributeValue, len(m.Attributes))
	for k, v := range m.Attributes {
		attrs[k] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	_, err = p.api.Publish(ctx, &sns.PublishInput{
		TopicArn:          aws.String(p.topic),
		Subject:           aws.String(m.Subject),
		Message:           aws.String(m.Body),
		MessageAttributes: attrs,
	})
	if err != nil {
		return fmt.Errorf("publish to %s: %w", p.topic, err)
	}
	return nil
}
