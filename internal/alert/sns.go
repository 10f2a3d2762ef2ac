package alert

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
)

// MaxMessageBytes is SNS's limit on a published message: the Message string
// (here the JSON of both variants), the subject and the message attributes'
// names, types and values together.
const MaxMessageBytes = 256 * 1024

// SNSMessage is one grouped message as published to SNS with
// MessageStructure json.
type SNSMessage struct {
	Subject string
	// Message is {"default": Default, "email": Email}, the Message parameter.
	Message string
	// Default is what every protocol but email receives: the JSON document,
	// or an AWS Chatbot custom notification carrying it.
	Default string
	// Email is the plain text a person reads in a mail client.
	Email string
	// Attributes are String message attributes subscribers can filter on.
	Attributes map[string]string
	// Document is the document the message carries, its results bounded.
	Document Document
	// Omitted are the results left out of both variants to stay within
	// MaxMessageBytes.
	Omitted []drift.Result
}

// Size is the message's size as SNS counts it against MaxMessageBytes.
func (s SNSMessage) Size() int {
	n := len(s.Message) + len(s.Subject)
	for k, v := range s.Attributes {
		n += len(k) + len("String") + len(v)
	}
	return n
}

// snsBody is the Message of MessageStructure json.
type snsBody struct {
	Default string `json:"default"`
	Email   string `json:"email"`
}

// BuildSNS formats m for SNS in format: subject, attributes and both variants,
// listing as many of m's results as fit in MaxMessageBytes (in m's order) and
// counting the others in the document's omitted.
func BuildSNS(m Message, format config.AlertFormat) (SNSMessage, error) {
	return buildSNS(m, format, MaxMessageBytes)
}

func buildSNS(m Message, format config.AlertFormat, limit int) (SNSMessage, error) {
	full := NewDocument(m)
	subject := MessageSubject(m)
	attrs := messageAttributes(m)
	build := func(n int) (SNSMessage, error) {
		d := full.first(n)
		def, err := defaultVariant(d, format)
		if err != nil {
			return SNSMessage{}, err
		}
		email := EmailText(d)
		msg, err := marshal(snsBody{Default: def, Email: email})
		if err != nil {
			return SNSMessage{}, err
		}
		return SNSMessage{Subject: subject, Message: msg, Default: def, Email: email, Attributes: attrs, Document: d, Omitted: m.Results[n:]}, nil
	}
	out, err := largestFitting(len(full.Results), limit, func(n int) (sized, error) { return build(n) })
	if err != nil {
		return SNSMessage{}, fmt.Errorf("%s %s message for %s: %w", m.Transition, m.Outcome, messageWhere(m), err)
	}
	return out.(SNSMessage), nil
}

// sized is a message whose size can be checked against a bound.
type sized interface{ Size() int }

// largestFitting returns build(n) for the largest n up to total whose size is
// at most limit, by binary search. A message grows with the results it lists
// (give or take a digit of its omitted count), and the search only returns a
// message it measured to fit. (Not generic: one copy in the function
// binary for both kinds of message.)
func largestFitting(total, limit int, build func(n int) (sized, error)) (sized, error) {
	best, err := build(total)
	if err != nil || best.Size() <= limit {
		return best, err
	}
	if best, err = build(0); err != nil {
		return best, err
	}
	if best.Size() > limit {
		return best, fmt.Errorf("%d bytes without any result, over the %d-byte bound", best.Size(), limit)
	}
	lo, hi := 0, total // build(lo) fits, build(hi) does not
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		m, err := build(mid)
		if err != nil {
			return m, err
		}
		if m.Size() <= limit {
			lo, best = mid, m
		} else {
			hi = mid
		}
	}
	return best, nil
}

// defaultVariant is the document in format.
func defaultVariant(d Document, format config.AlertFormat) (string, error) {
	if format == config.FormatChatbot {
		return ChatbotNotification(d)
	}
	return marshal(d)
}

// SubjectCutMarker ends a host cut to fit a subject.
const SubjectCutMarker = "..."

// MessageSubject is "thumbprint-drift: <transition> <outcome> <host>" plus
// " (N providers)" when N > 1, in printable ASCII and at most MaxSubject
// characters: a long host is cut and ends with SubjectCutMarker, the count
// kept.
func MessageSubject(m Message) string {
	prefix := printable(fmt.Sprintf("thumbprint-drift: %s %s ", m.Transition, m.Outcome))
	where := printable(messageWhere(m))
	suffix := ""
	if len(m.Results) > 1 {
		suffix = " (" + messageCount(m) + ")"
	}
	if room := MaxSubject - len(prefix) - len(suffix); len(where) > room {
		where = where[:max(room-len(SubjectCutMarker), 0)] + SubjectCutMarker
	}
	s := prefix + where + suffix
	if len(s) > MaxSubject {
		s = s[:MaxSubject]
	}
	return strings.TrimRight(s, " ")
}

// messageCount is how many providers (accounts, for failed accounts) a
// message concerns: "1 provider", "2 providers", "2 accounts".
func messageCount(m Message) string {
	if m.Host == "" && m.Outcome == drift.AccountFailed {
		return plural(len(m.Results), "account", "accounts")
	}
	return plural(len(m.Results), "provider", "providers")
}

// messageWhere names what a message is about: its host, or for failed
// accounts (no host) the account.
func messageWhere(m Message) string {
	if m.Host != "" {
		return m.Host
	}
	if ids := distinct(m.Results, func(r drift.Result) string { return documentResult(r).AccountID }); len(ids) == 1 {
		return "account " + ids[0]
	}
	return "organization"
}

func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

// messageAttributes are the String attributes of m: transition, outcome,
// severity, host, and provider_arn / account_id when the message concerns
// exactly one. SNS refuses empty values, so none is set empty.
func messageAttributes(m Message) map[string]string {
	attrs := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			attrs[k] = v
		}
	}
	set("transition", string(m.Transition))
	set("outcome", string(m.Outcome))
	set("severity", string(m.Severity))
	set("host", m.Host)
	if arns := distinct(m.Results, func(r drift.Result) string { return r.ProviderARN }); len(arns) == 1 {
		set("provider_arn", arns[0])
	}
	if ids := distinct(m.Results, func(r drift.Result) string { return documentResult(r).AccountID }); len(ids) == 1 {
		set("account_id", ids[0])
	}
	return attrs
}

// distinct returns the distinct non-empty values of key over results, or nil
// when one of them is empty.
func distinct(results []drift.Result, key func(drift.Result) string) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range results {
		v := key(r)
		if v == "" {
			return nil
		}
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// SNSOption configures an SNSPublisher.
type SNSOption func(*SNSPublisher)

// WithFormat sets the document format (ALERT_FORMAT); the default is json.
func WithFormat(f config.AlertFormat) SNSOption {
	return func(p *SNSPublisher) { p.format = f }
}

// WithLogger sets where results left out of a message are logged.
func WithLogger(l *slog.Logger) SNSOption {
	return func(p *SNSPublisher) {
		if l != nil {
			p.logger = l
		}
	}
}

// Name is "sns".
func (p *SNSPublisher) Name() string { return "sns" }

// Notify publishes m as one SNS message with MessageStructure json: the
// document (or Chatbot notification) for every protocol, plain text for email.
// Results that do not fit in MaxMessageBytes are left out, counted in the
// document's omitted and logged at WARN, one line each.
func (p *SNSPublisher) Notify(ctx context.Context, m Message) error {
	out, err := BuildSNS(m, p.format)
	if err != nil {
		return fmt.Errorf("build message for %s: %w", p.topic, err)
	}
	logOmitted(ctx, p.logger, "SNS message", m, out.Omitted, MaxMessageBytes)
	attrs := make(map[string]types.MessageAttributeValue, len(out.Attributes))
	for k, v := range out.Attributes {
		attrs[k] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	_, err = p.api.Publish(ctx, &sns.PublishInput{
		TopicArn:          aws.String(p.topic),
		Subject:           aws.String(out.Subject),
		Message:           aws.String(out.Message),
		MessageStructure:  aws.String("json"),
		MessageAttributes: attrs,
	})
	if err != nil {
		return fmt.Errorf("publish %s %s message for %s (%s) to %s: %w",
			m.Transition, m.Outcome, messageWhere(m), messageCount(m), p.topic, err)
	}
	return nil
}

// logOmitted logs each result left out of a message, so the log holds every
// provider the message could not list.
func logOmitted(ctx context.Context, logger *slog.Logger, what string, m Message, omitted []drift.Result, limit int) {
	for _, r := range omitted {
		logger.LogAttrs(ctx, slog.LevelWarn, "result left out of "+what+" to stay within "+strconv.Itoa(limit)+" bytes",
			slog.String("provider_arn", r.ProviderARN),
			slog.String("account_id", documentResult(r).AccountID),
			slog.String("transition", string(m.Transition)),
			slog.String("outcome", string(r.Outcome)),
			slog.String("severity", string(r.Severity)),
			slog.String("host", m.Host),
			slog.Int("count", len(m.Results)),
			slog.Int("omitted", len(omitted)),
		)
	}
}
