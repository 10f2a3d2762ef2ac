package app

import (
	"context"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
	"github.com/thumbprint-drift/thumbprint-drift/internal/awsclient"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/shard"
)

// NewSharder builds the steps of a sharded run for cfg (SHARD_BUCKET and
// SHARD_SIZE) with clients from the SDK's standard chain.
func NewSharder(ctx context.Context, cfg config.Config, logger *slog.Logger) (*shard.Runner, error) {
	awsCfg, err := awsclient.Load(ctx)
	if err != nil {
		return nil, err
	}
	return NewSharderFromAWS(ctx, awsCfg, cfg, logger), nil
}

// NewSharderFromAWS is NewSharder with clients from awsCfg.
func NewSharderFromAWS(ctx context.Context, awsCfg aws.Config, cfg config.Config, logger *slog.Logger) *shard.Runner {
	return newSharder(ctx, awsCfg, cfg, logger, nil)
}

// newSharder is NewSharderFromAWS with org as the Organizations client (nil:
// one from awsCfg). Plan lists the accounts as one run would; check runs an
// engine over its batch's accounts only and claims through the notify
// pipeline, which notify then sends through.
func newSharder(ctx context.Context, awsCfg aws.Config, cfg config.Config, logger *slog.Logger, org accounts.OrgAPI) *shard.Runner {
	if org == nil {
		org = organizations.NewFromConfig(awsCfg)
	}
	stsc := sts.NewFromConfig(awsCfg)
	return shard.New(shard.Options{
		Store:  s3.NewFromConfig(awsCfg),
		Bucket: cfg.ShardBucket,
		Size:   cfg.ShardSize,
		Accounts: func(ctx context.Context) ([]string, error) {
			targets, err := listTargets(ctx, cfg, stsc, org, nil)
			if err != nil {
				return nil, err
			}
			ids := make([]string, 0, len(targets))
			for _, t := range targets {
				ids = append(ids, t.AccountID)
			}
			return ids, nil
		},
		Check: func(ctx context.Context, ids []string) (*drift.Report, error) {
			return newServiceFor(ctx, awsCfg, cfg, logger, org, ids).Engine.Run(ctx, drift.Request{})
		},
		Alerts: newServiceFor(ctx, awsCfg, cfg, logger, org, nil).Pipeline,
		Logger: logger,
	})
}
