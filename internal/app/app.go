// Package app wires configuration, AWS clients, the probe and the engine, the
// same way for the Lambda function and the CLI.
package app

import (
	"context"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/awsclient"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/oidcprovider"
	"github.com/thumbprint-drift/thumbprint-drift/internal/thumbprint"
)

// NewEngine builds the engine for cfg with clients from the SDK's standard
// chain. Without a topic, alerts are logged only, and it says so.
func NewEngine(ctx context.Context, cfg config.Config, logger *slog.Logger) (*drift.Engine, error) {
	awsCfg, err := awsclient.Load(ctx)
	if err != nil {
		return nil, err
	}
	return NewEngineFromAWS(ctx, awsCfg, cfg, logger), nil
}

// NewEngineFromAWS builds the engine for cfg with clients from awsCfg.
func NewEngineFromAWS(ctx context.Context, awsCfg aws.Config, cfg config.Config, logger *slog.Logger) *drift.Engine {
	var notifier drift.Notifier
	if cfg.TopicARN != "" {
		notifier = alert.NewPublisher(sns.NewFromConfig(awsCfg), cfg.TopicARN)
	} else if logger != nil {
		logger.WarnContext(ctx, "SNS_TOPIC_ARN is empty: alerts are logged only, not published")
	}
	prober := thumbprint.New(thumbprint.Options{Handshakes: cfg.ProbeHandshakes, Timeout: cfg.ProbeTimeout})
	return drift.New(drift.Options{
		Providers:    oidcprovider.New(iam.NewFromConfig(awsCfg)),
		NewProbe:     func() drift.ProbeFunc { return prober.NewRun().Probe },
		Notifier:     notifier,
		Mode:         cfg.Mode,
		Concurrency:  cfg.Concurrency,
		ProbeTimeout: cfg.ProbeTimeout,
		Logger:       logger,
	})
}
