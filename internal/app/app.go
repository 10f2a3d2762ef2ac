// Package app wires configuration, AWS clients, the probe and the engine, the
// same way for the Lambda function and the CLI.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/awsclient"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/oidcprovider"
	"github.com/thumbprint-drift/thumbprint-drift/internal/state"
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
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	reach := &reach{}
	var publishers []drift.Publisher
	if cfg.TopicARN != "" {
		publishers = append(publishers, alert.NewPublisher(sns.NewFromConfig(awsCfg), cfg.TopicARN, alert.WithFormat(cfg.AlertFormat), alert.WithLogger(logger)))
	} else {
		logger.WarnContext(ctx, "SNS_TOPIC_ARN is empty: alerts are not published to SNS")
	}
	if cfg.EventBusName != "" {
		publishers = append(publishers, alert.NewEventBridgePublisher(eventbridge.NewFromConfig(awsCfg), cfg.EventBusName, alert.WithEventLogger(logger)))
	}
	if cfg.SecurityHub {
		publishers = append(publishers, alert.NewSecurityHub(awsCfg.Region, reach.securityHub(awsCfg, cfg)))
	}
	if len(publishers) == 0 {
		logger.WarnContext(ctx, "no SNS topic, event bus or Security Hub: alerts are logged only")
	}
	prober := thumbprint.New(thumbprint.Options{Handshakes: cfg.ProbeHandshakes, Timeout: cfg.ProbeTimeout, Concurrency: cfg.ProbeConcurrency})
	own := oidcprovider.New(iam.NewFromConfig(awsCfg))
	opts := drift.Options{
		Providers:          own,
		NewProbe:           func() drift.ProbeFunc { return prober.NewRun().Probe },
		Publishers:         publishers,
		Lifecycle:          NewLifecycle(ctx, awsCfg, cfg, logger),
		Mode:               cfg.Mode,
		Concurrency:        cfg.Concurrency,
		Logger:             logger,
		AccountConcurrency: cfg.AccountConcurrency,
		ExpiryWarning:      cfg.ExpiryWarning,
	}
	if !cfg.MultiAccount() {
		stsc := sts.NewFromConfig(awsCfg)
		opts.OwnAccount = func(ctx context.Context) (string, error) {
			c, err := accounts.WhoAmI(ctx, stsc)
			return c.AccountID, err
		}
	}
	if cfg.MultiAccount() {
		if org == nil {
			org = organizations.NewFromConfig(awsCfg)
		}
		opts.Accounts = accountLister(awsCfg, cfg, own, org, reach)
	}
	return drift.New(opts)
}

// NewLifecycle is the alert lifecycle over cfg's state table, or nil
// without one (stateless, and the log says so).
func NewLifecycle(ctx context.Context, awsCfg aws.Config, cfg config.Config, logger *slog.Logger) drift.Lifecycle {
	if cfg.StateTable == "" {
		logger.WarnContext(ctx, "STATE_TABLE is empty: no alert state, so every run alerts every problem as new (probe-failed included, from its first failure) and every update as applied; set STATE_TABLE for new, changed, reminder and resolved")
		return nil
	}
	logger.InfoContext(ctx, "alert state in DynamoDB table "+cfg.StateTable, "state_table", cfg.StateTable,
		"realert_interval", cfg.RealertInterval.String(), "probe_failures_to_alert", cfg.ProbeFailuresToAlert)
	return alert.NewLifecycle(NewStateStore(awsCfg, cfg.StateTable),
		alert.Policy{RealertInterval: cfg.RealertInterval, ProbeFailuresToAlert: cfg.ProbeFailuresToAlert}, logger)
}

// NewStateStore is the state table's store with a client from awsCfg.
func NewStateStore(awsCfg aws.Config, table string) *state.Store {
	return state.New(dynamodb.NewFromConfig(awsCfg), table)
}

// OpenStateStore is the state table's store with a client from the SDK's
// standard chain (the CLI's stage records staged thumbprints in it).
func OpenStateStore(ctx context.Context, table string) (*state.Store, error) {
	awsCfg, err := awsclient.Load(ctx)
	if err != nil {
		return nil, err
	}
	return NewStateStore(awsCfg, table), nil
}

// accountLister finds the run's accounts: the configured role ARNs (each
// always checked), or every active account of the organisation (its own
// account with own credentials; the management account skipped from a
// delegated administrator unless cfg.OrgIncludeManagementAccount). Each
// account's role is assumed when the engine opens it.
func accountLister(awsCfg aws.Config, cfg config.Config, own drift.Providers, org accounts.OrgAPI, reach *reach) func(context.Context) ([]drift.Account, error) {
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
		reach.set(targets)
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

// reach remembers how the accounts of the last listing are reached (nil
// roles: one account, the caller's own), so that Security Hub findings go to
// each provider's own account.
type reach struct {
	mu      sync.Mutex
	roles   map[string]string // account id to role ARN; "" for own credentials
	clients map[string]alert.SecurityHubAPI
}

func (r *reach) set(targets []accounts.Target) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.roles = map[string]string{}
	for _, t := range targets {
		if t.Skip == "" {
			r.roles[t.AccountID] = t.RoleARN
		}
	}
}

// securityHub returns the Security Hub client of an account: the caller's
// own for its own account (and for every account without organisation
// mode), else one through the account's member role.
func (r *reach) securityHub(awsCfg aws.Config, cfg config.Config) func(context.Context, string) (alert.SecurityHubAPI, error) {
	stsc := sts.NewFromConfig(awsCfg)
	own := securityhub.NewFromConfig(awsCfg)
	return func(ctx context.Context, acct string) (alert.SecurityHubAPI, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.roles == nil {
			return own, nil
		}
		role, ok := r.roles[acct]
		switch {
		case !ok:
			return nil, fmt.Errorf("account %s is not in this run: no role to import its findings with", acct)
		case role == "":
			return own, nil
		}
		if c, ok := r.clients[role]; ok {
			return c, nil
		}
		acfg := awsCfg.Copy()
		acfg.Credentials = accounts.Credentials(stsc, role, cfg.ExternalID)
		c := securityhub.NewFromConfig(acfg)
		if r.clients == nil {
			r.clients = map[string]alert.SecurityHubAPI{}
		}
		r.clients[role] = c
		return c, nil
	}
}
