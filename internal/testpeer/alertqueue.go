package testpeer

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// AlertQueue is an SNS topic with an SQS queue subscribed, so a test or the
// demo reads back every message published to the topic.
type AlertQueue struct {
	TopicARN string
	QueueURL string
	sqs      *sqs.Client
}

// Delivered is one SNS message as delivered to SQS (the SNS JSON envelope).
type Delivered struct {
	Subject           string
	Message           string
	MessageAttributes map[string]struct{ Type, Value string }
	// Body is Message decoded as a JSON object.
	Body map[string]any `json:"-"`
}

// Attr returns the String message attribute name.
func (d Delivered) Attr(name string) string { return d.MessageAttributes[name].Value }

// NewAlertQueue creates topic and queue named name and subscribes one to the other.
func NewAlertQueue(ctx context.Context, cfg aws.Config, name string) (*AlertQueue, error) {
	snsc, sqsc := sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name)})
	if err != nil {
		return nil, fmt.Errorf("create topic %s: %w", name, err)
	}
	q, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-alerts")})
	if err != nil {
		return nil, fmt.Errorf("create queue %s-alerts: %w", name, err)
	}
	attrs, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return nil, fmt.Errorf("queue ARN: %w", err)
	}
	if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(attrs.Attributes["QueueArn"])}); err != nil {
		return nil, fmt.Errorf("subscribe queue to %s: %w", aws.ToString(topic.TopicArn), err)
	}
	return &AlertQueue{TopicARN: aws.ToString(topic.TopicArn), QueueURL: aws.ToString(q.QueueUrl), sqs: sqsc}, nil
}

// Drain receives and deletes every message in the queue. moto delivers to SQS
// within the Publish call, so everything published before is there.
func (a *AlertQueue) Drain(ctx context.Context) ([]Delivered, error) {
	var out []Delivered
	for {
		r, err := a.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(a.QueueURL), MaxNumberOfMessages: 10})
		if err != nil {
			return nil, fmt.Errorf("receive from %s: %w", a.QueueURL, err)
		}
		if len(r.Messages) == 0 {
			return out, nil
		}
		for _, m := range r.Messages {
			var d Delivered
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &d); err != nil {
				return nil, fmt.Errorf("SNS envelope %q: %w", aws.ToString(m.Body), err)
			}
			if err := json.Unmarshal([]byte(d.Message), &d.Body); err != nil {
				return nil, fmt.Errorf("message %q: %w", d.Message, err)
			}
			out = append(out, d)
			if _, err := a.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(a.QueueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				return nil, fmt.Errorf("delete from %s: %w", a.QueueURL, err)
			}
		}
	}
}
