// Package app wires configuration, AWS clients, the probe and the engine, the
// same way for the Lambda function and the CLI.
package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
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
	return newEngine(ctx, awsCfg, cfg, logger, nil)
}

// newEngine is NewEngineFromAWS with org as the Organizations client (nil:
// one from awsCfg). Tests pass a fake where moto cannot play the part: a
// delegated administrator's ListAccounts.
func newEngine(ctx context.Context, awsCfg aws.Config, cfg config.Config, logger *slog.Logger, org accounts.OrgAPI) *drift.Engine {
	var notifier drift.Notifier
	if cfg.TopicARN != "" {
		notifier = alert.NewPublisher(sns.NewFromConfig(awsCfg), cfg.TopicARN)
	} else if logger != nil {
		logger.WarnContext(ctx, "SNS_TOPIC_ARN is empty: alerts are logged only, not published")
	}
	prober := thumbprint.New(thumbprint.Options{Handshakes: cfg.ProbeHandshakes, Timeout: cfg.ProbeTimeout, Concurrency: cfg.ProbeConcurrency})
	own := oidcprovider.New(iam.NewFromConfig(awsCfg))
	opts := drift.Options{
		Providers:          own,
		NewProbe:           func() drift.ProbeFunc { return prober.NewRun().Probe },
		Notifier:           notifier,
		Mode:               cfg.Mode,
		Concurrency:        cfg.Concurrency,
		ProbeTimeout:       cfg.ProbeTimeout,
		Logger:             logger,
		AccountConcurrency: cfg.AccountConcurrency,
		ExpiryWarning:      cfg.ExpiryWarning,
	}
	if cfg.MultiAccount() {
		if org == nil {
			org = organizations.NewFromConfig(awsCfg)
		}
		opts.Accounts = accountLister(awsCfg, cfg, own, org)
	}
	return drift.New(opts)
}

// accountLister finds the run's accounts: the configured role ARNs (each
// always checked), or every active account of the organisation (its own
// account with own credentials; the management account skipped from a
// delegated administrator unless cfg.OrgIncludeManagementAccount). Each
// account's role is assumed when the engine opens it.
func accountLister(awsCfg aws.Config, cfg config.Config, own drift.Providers, org accounts.OrgAPI) func(context.Context) ([]drift.Account, error) {
	stsc := sts.NewFromConfig(awsCfg)
	return func(ctx context.Context) ([]drift.Account, error) {
		targets := accounts.FromRoles(cfg.AccountRoleARNs)
		if cfg.OrgRoleName != "" {
			caller, err := accounts.WhoAmI(ctx, stsc)
			if err != nil {
				return nil, err
			}
			opts := accounts.OrgOptions{RoleName: cfg.OrgRoleName, IncludeManagement: cfg.OrgIncludeManagementAccount}
			if targets, err = accounts.FromOrganization(ctx, org, caller, opts); err != nil {
				return nil, err
			}
		}
		out := make([]drift.Account, 0, len(targets))
		for _, t := range targets {
			a := drift.Account{ID: t.AccountID, RoleARN: t.RoleARN, Skip: t.Skip}
			switch {
			case t.Skip != "":
				// nothing is assumed or called there
			case t.RoleARN == "":
				a.Open = func(context.Context) (drift.Providers, error) { return own, nil }
			default:
				a.Open = func(ctx context.Context) (drift.Providers, error) {
					creds := accounts.Credentials(stsc, t.RoleARN, cfg.ExternalID)
					if _, err := creds.Retrieve(ctx); err != nil {
						return nil, fmt.Errorf("assume role %s: %w", t.RoleARN, err)
					}
					acfg := awsCfg.Copy()
					acfg.Credentials = creds
					return oidcprovider.New(iam.NewFromConfig(acfg)), nil
				}
			}
			out = append(out, a)
		}
		return out, nil
	}
}
