package testpeer

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// AlertQueue is an SNS topic with an SQS queue subscribed, so a test or the
// demo reads back every message published to the topic.
type AlertQueue struct {
	TopicARN string
	QueueURL string
	// Raw: the subscription delivers raw messages (no SNS envelope).
	Raw bool
	sqs *sqs.Client
}

// Delivered is one SNS message as delivered to SQS: what an sqs subscriber
// receives, the "default" variant of a MessageStructure json message.
type Delivered struct {
	// Subject is empty for raw delivery, which does not carry it.
	Subject string
	// Message is the delivered message (the JSON document).
	Message           string
	MessageAttributes map[string]struct{ Type, Value string }
	// Body is Message decoded as a JSON object.
	Body map[string]any `json:"-"`
}

// Attr returns the String message attribute name.
func (d Delivered) Attr(name string) string { return d.MessageAttributes[name].Value }

// Results are the results a grouped message's document lists
// (DESIGN.md "Messages"), each a JSON object.
func (d Delivered) Results() []map[string]any {
	list, _ := d.Body["results"].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, r := range list {
		if m, ok := r.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// ProviderARNs are the provider ARNs a grouped message lists.
func (d Delivered) ProviderARNs() []string {
	var out []string
	for _, r := range d.Results() {
		if s, _ := r["provider_arn"].(string); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// drainQueue are the attributes of the queues a test drains: a received
// message is visible again at once. A receive whose answer is lost (the SDK
// sends it again, as when moto resets a connection under load) must not
// hide the messages it took for the default 30 s, which a test reads as a
// message never sent. Drain deletes each message it received before it
// receives again, so none is read twice.
var drainQueue = map[string]string{"VisibilityTimeout": "0"}

// AlertQueueOptions configure NewAlertQueueWith.
type AlertQueueOptions struct {
	// RawMessageDelivery subscribes the queue with raw delivery: the body is
	// the message itself and the attributes are SQS message attributes, so a
	// message near SNS's 256 KiB is not grown by the envelope.
	RawMessageDelivery bool
}

// NewAlertQueue creates topic and queue named name and subscribes one to the other.
func NewAlertQueue(ctx context.Context, cfg aws.Config, name string) (*AlertQueue, error) {
	return NewAlertQueueWith(ctx, cfg, name, AlertQueueOptions{})
}

// NewAlertQueueWith is NewAlertQueue with options.
func NewAlertQueueWith(ctx context.Context, cfg aws.Config, name string, opts AlertQueueOptions) (*AlertQueue, error) {
	snsc, sqsc := sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name)})
	if err != nil {
		return nil, fmt.Errorf("create topic %s: %w", name, err)
	}
	q, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-alerts"), Attributes: drainQueue})
	if err != nil {
		return nil, fmt.Errorf("create queue %s-alerts: %w", name, err)
	}
	attrs, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return nil, fmt.Errorf("queue ARN: %w", err)
	}
	sub := &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(attrs.Attributes["QueueArn"])}
	if opts.RawMessageDelivery {
		sub.Attributes = map[string]string{"RawMessageDelivery": "true"}
	}
	if _, err := snsc.Subscribe(ctx, sub); err != nil {
		return nil, fmt.Errorf("subscribe queue to %s: %w", aws.ToString(topic.TopicArn), err)
	}
	return &AlertQueue{TopicARN: aws.ToString(topic.TopicArn), QueueURL: aws.ToString(q.QueueUrl), Raw: opts.RawMessageDelivery, sqs: sqsc}, nil
}

// Drain receives and deletes every message in the queue. moto delivers to SQS
// within the Publish call, so everything published before is there.
func (a *AlertQueue) Drain(ctx context.Context) ([]Delivered, error) {
	var out []Delivered
	for {
		r, err := a.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(a.QueueURL), MaxNumberOfMessages: 10,
			MessageAttributeNames: []string{"All"}})
		if err != nil {
			return nil, fmt.Errorf("receive from %s: %w", a.QueueURL, err)
		}
		if len(r.Messages) == 0 {
			return out, nil
		}
		for _, m := range r.Messages {
			d, err := a.decode(m)
			if err != nil {
				return nil, err
			}
			out = append(out, d)
			if _, err := a.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(a.QueueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				return nil, fmt.Errorf("delete from %s: %w", a.QueueURL, err)
			}
		}
	}
}

// decode reads one SQS message: the SNS envelope, or for raw delivery the
// message itself with its SQS message attributes.
func (a *AlertQueue) decode(m sqstypes.Message) (Delivered, error) {
	var d Delivered
	body := aws.ToString(m.Body)
	if a.Raw {
		d.Message = body
		d.MessageAttributes = map[string]struct{ Type, Value string }{}
		for k, v := range m.MessageAttributes {
			d.MessageAttributes[k] = struct{ Type, Value string }{aws.ToString(v.DataType), aws.ToString(v.StringValue)}
		}
	} else if err := json.Unmarshal([]byte(body), &d); err != nil {
		return Delivered{}, fmt.Errorf("SNS envelope %.200q: %w", body, err)
	}
	if err := json.Unmarshal([]byte(d.Message), &d.Body); err != nil {
		return Delivered{}, fmt.Errorf("message %.200q: %w", d.Message, err)
	}
	return d, nil
}

// EventQueue is an EventBridge rule matching a source on a bus, with an SQS
// queue as its target, so a test or the demo reads back the events put.
type EventQueue struct {
	// Bus is the bus name ("default" or one NewEventQueue created).
	Bus      string
	QueueURL string
	sqs      *sqs.Client
}

// Event is one EventBridge event as delivered to an SQS target: the full
// event envelope.
type Event struct {
	ID         string   `json:"id"`
	Source     string   `json:"source"`
	DetailType string   `json:"detail-type"`
	Account    string   `json:"account"`
	Region     string   `json:"region"`
	Resources  []string `json:"resources"`
	// Detail is the event's detail, as JSON.
	Detail json.RawMessage `json:"detail"`
}

// NewEventQueue creates the bus (unless it is "default"), a queue named
// name-events and a rule on the bus whose event pattern matches source, with
// the queue as its target.
func NewEventQueue(ctx context.Context, cfg aws.Config, bus, name, source string) (*EventQueue, error) {
	ebc, sqsc := eventbridge.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
	if bus != "default" {
		if _, err := ebc.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(bus)}); err != nil {
			return nil, fmt.Errorf("create event bus %s: %w", bus, err)
		}
	}
	q, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-events"), Attributes: drainQueue})
	if err != nil {
		return nil, fmt.Errorf("create queue %s-events: %w", name, err)
	}
	attrs, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return nil, fmt.Errorf("queue ARN: %w", err)
	}
	pattern, err := json.Marshal(map[string][]string{"source": {source}})
	if err != nil {
		return nil, err
	}
	rule := name + "-rule"
	if _, err := ebc.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(rule), EventBusName: aws.String(bus), EventPattern: aws.String(string(pattern))}); err != nil {
		return nil, fmt.Errorf("put rule %s on bus %s: %w", rule, bus, err)
	}
	if _, err := ebc.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(rule), EventBusName: aws.String(bus),
		Targets: []ebtypes.Target{{Id: aws.String("queue"), Arn: aws.String(attrs.Attributes["QueueArn"])}}}); err != nil {
		return nil, fmt.Errorf("put queue target on rule %s: %w", rule, err)
	}
	return &EventQueue{Bus: bus, QueueURL: aws.ToString(q.QueueUrl), sqs: sqsc}, nil
}

// Drain receives and deletes every event in the queue. moto delivers to the
// target within the PutEvents call.
func (e *EventQueue) Drain(ctx context.Context) ([]Event, error) {
	var out []Event
	for {
		r, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.QueueURL), MaxNumberOfMessages: 10})
		if err != nil {
			return nil, fmt.Errorf("receive from %s: %w", e.QueueURL, err)
		}
		if len(r.Messages) == 0 {
			return out, nil
		}
		for _, m := range r.Messages {
			var ev Event
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &ev); err != nil {
				return nil, fmt.Errorf("event %.200q: %w", aws.ToString(m.Body), err)
			}
			out = append(out, ev)
			if _, err := e.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(e.QueueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				return nil, fmt.Errorf("delete from %s: %w", e.QueueURL, err)
			}
		}
	}
}
