// Package alert formats drift results as SNS messages and publishes them.
package alert

import (
	"context"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/sns"

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
