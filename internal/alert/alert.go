// Package alert is the notify pipeline, after Alertmanager's notify stages:
// the lifecycle decides each result's transition against the alert state
// and claims it (Pipeline.Claim); grouping makes one message per
// transition, outcome, host and live thumbprints; fan-out sends each message
// to each integration (SNSPublisher, EventBridgePublisher, SecurityHub) that
// has not taken it, with retries; and each integration's delivery is
// recorded apart in the state (Pipeline.Notify). It also holds the message
// formats: the JSON document, the email text, the AWS Chatbot notification,
// the EventBridge event and the Security Hub finding.
package alert

import (
	"context"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/iac"
)

// API is the part of the SNS client this package calls.
type API interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

var _ API = (*sns.Client)(nil)

// MaxSubject is SNS's limit on a subject's length.
const MaxSubject = 100

// FixCommand is the AWS CLI command that writes list to the provider.
func FixCommand(arn string, list []string) string { return iac.FixCommand(arn, list) }

func shellQuote(s string) string { return iac.ShellQuote(s) }

// SNSPublisher publishes alerts to one SNS topic.
type SNSPublisher struct {
	api    API
	topic  string
	format config.AlertFormat
	logger *slog.Logger
}

var _ Integration = (*SNSPublisher)(nil)

// NewSNSPublisher returns an SNSPublisher to topicARN through api (an *sns.Client).
func NewSNSPublisher(api API, topicARN string, opts ...SNSOption) *SNSPublisher {
	p := &SNSPublisher{api: api, topic: topicARN, format: config.FormatJSON, logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(p)
	}
	return p
}
