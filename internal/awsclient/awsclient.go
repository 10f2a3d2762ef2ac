// Package awsclient loads the AWS SDK configuration the function and the CLI share.
package awsclient

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
)

// MaxAttempts bounds the SDK's standard retryer (exponential backoff with
// jitter; throttling and transient errors are retried).
const MaxAttempts = 6

// extraThrottleCodes are throttling error codes the SDK's default list lacks:
// SNS answers a throttled Publish with "Throttled" (ThrottledException), which
// the standard retryer would otherwise not retry at all.
var extraThrottleCodes = map[string]struct{}{"Throttled": {}}

// NewRetryer returns the retryer every client uses: the SDK's standard
// retryer, MaxAttempts attempts, with SNS's throttling code retried as a throttle.
func NewRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = MaxAttempts
		o.Retryables = append(append([]retry.IsErrorRetryable(nil), o.Retryables...), retry.RetryableErrorCode{Codes: extraThrottleCodes})
		o.Throttles = append(append([]retry.IsErrorThrottle(nil), o.Throttles...), retry.ThrottleErrorCode{Codes: extraThrottleCodes})
	})
}

// Load reads region, credentials and endpoints from the SDK's standard chain
// (including AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_IAM, AWS_ENDPOINT_URL_SNS) and sets
// the project's retryer. optFns come last and may override.
func Load(ctx context.Context, optFns ...func(*config.LoadOptions) error) (aws.Config, error) {
	opts := append([]func(*config.LoadOptions) error{config.WithRetryer(NewRetryer)}, optFns...)
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	return cfg, nil
}
