// Package app wires configuration, AWS clients, the probe, the engine and
// the notify pipeline, the same way for the Lambda function and the CLI.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

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

// Service is the engine and the notify pipeline of one configuration.
type Service struct {
	Engine   *drift.Engine
	Pipeline *alert.Pipeline
}

// Run checks (the engine) and sends the report's transitions (the
// pipeline), in one invocation; the error joins both.
func (s *Service) Run(ctx context.Context, req drift.Request) (*drift.Report, error) {
	rep, err := s.Engine.Run(ctx, req)
	if rep == nil {
		return rep, err
	}
	_, aerr := s.Pipeline.Run(ctx, rep)
	return rep, errors.Join(err, aerr)
}

// New builds the service for cfg with clients from the SDK's standard
// chain. Without a topic, alerts are logged only, and it says so.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger) (*Service, error) {
	awsCfg, err := awsclient.Load(ctx)
	if err != nil {
		return nil, err
	}
	return NewFromAWS(ctx, awsCfg, cfg, logger), nil
}

// NewFromAWS builds the service for cfg with clients from awsCfg.
func NewFromAWS(ctx context.Context, awsCfg aws.Config, cfg config.Config, logger *slog.Logger) *Service {
	return newService(ctx, awsCfg, cfg, logger, nil)
}

// newService is NewFromAWS with org as the Organizations client (nil: one
// from awsCfg). Tests pass a fake where moto cannot play the part: a
// delegated administrator's ListAccounts.
func newService(ctx context.Context, awsCfg aws.Config, cfg config.Config, logger *slog.Logger, org accounts.OrgAPI) *Service {
	return newServiceFor(ctx, awsCfg, cfg, logger, org, nil)
}

// newServiceFor is newService whose runs check only the accounts ids (a
// sharded run's batch), or every account of organisation mode when ids is empty.
func newServiceFor(ctx context.Context, awsCfg aws.Config, cfg config.Config, logger *slog.Logger, org accounts.OrgAPI, ids []string) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	lc := NewLifecycle(ctx, awsCfg, cfg, logger)
	prober := thumbprint.New(thumbprint.Options{Handshakes: cfg.ProbeHandshakes, Timeout: cfg.ProbeTimeout, Concurrency: cfg.ProbeConcurrency})
	own := oidcprovider.New(iam.NewFromConfig(awsCfg))
	opts := drift.Options{
		Providers:          own,
		NewProbe:           drift.ProbeRuns(prober),
		Mode:               cfg.Mode,
		Concurrency:        cfg.Concurrency,
		Logger:             logger,
		AccountConcurrency: cfg.AccountConcurrency,
		ExpiryWarning:      cfg.ExpiryWarning,
	}
	if lc != nil {
		opts.Memory = lc
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
		opts.Accounts = accountLister(awsCfg, cfg, own, org, ids)
	}
	return &Service{
		Engine:   drift.New(opts),
		Pipeline: alert.New(alert.Options{Lifecycle: lc, Integrations: Integrations(ctx, awsCfg, cfg, logger), Logger: logger}),
	}
}

// Integrations are the receivers cfg asks for, with clients from awsCfg:
// SNS to SNS_TOPIC_ARN in ALERT_FORMAT, EventBridge to EVENT_BUS_NAME, and
// Security Hub (SECURITY_HUB). None: alerts are logged only, and it says so.
func Integrations(ctx context.Context, awsCfg aws.Config, cfg config.Config, logger *slog.Logger) []alert.Integration {
	var out []alert.Integration
	if cfg.TopicARN != "" {
		out = append(out, alert.NewSNSPublisher(sns.NewFromConfig(awsCfg), cfg.TopicARN, alert.WithFormat(cfg.AlertFormat), alert.WithLogger(logger)))
	} else {
		logger.WarnContext(ctx, "SNS_TOPIC_ARN is empty: alerts are not published to SNS")
	}
	if cfg.EventBusName != "" {
		out = append(out, alert.NewEventBridgePublisher(eventbridge.NewFromConfig(awsCfg), cfg.EventBusName, alert.WithEventLogger(logger)))
	}
	if cfg.SecurityHub {
		hubs := newSecurityHubs(awsCfg, cfg)
		out = append(out, alert.NewSecurityHub(awsCfg.Region, hubs.ownAccount, hubs.client))
	}
	if len(out) == 0 {
		logger.WarnContext(ctx, "no SNS topic, event bus or Security Hub: alerts are logged only")
	}
	return out
}

// NewLifecycle is the alert lifecycle over cfg's state table, or nil
// without one (stateless, and the log says so).
func NewLifecycle(ctx context.Context, awsCfg aws.Config, cfg config.Config, logger *slog.Logger) *alert.Lifecycle {
	if cfg.StateTable == "" {
		logger.WarnContext(ctx, "STATE_TABLE is empty: no alert state, so every run alerts every problem as new (probe-failed included, from its first failure) and every update as applied; set STATE_TABLE for new, changed, reminder and resolved")
		return nil
	}
	logger.InfoContext(ctx, "alert state in DynamoDB table "+cfg.StateTable, "state_table", cfg.StateTable,
		"realert_interval", cfg.RealertInterval.String(), "probe_failures_to_alert", cfg.ProbeFailuresToAlert)
	return alert.NewLifecycle(NewStateStore(awsCfg, cfg.StateTable),
		alert.Policy{RealertInterval: cfg.RealertInterval, ProbeFailuresToAlert: cfg.ProbeFailuresToAlert, ExpiryOff: cfg.ExpiryWarning == 0}, logger)
}

// NewStateStore is the state table's store with a client from awsCfg.
func NewStateStore(awsCfg aws.Config, table string) *state.Store {
	return state.New(dynamodb.NewFromConfig(awsCfg), table)
}

// StageState is the state table as the CLI's stage uses it: when a
// provider's thumbprints were last seen live, read as the engine's merge
// reads it (the lifecycle's window), and recording a staged thumbprint.
type StageState struct {
	*state.Store
	lifecycle *alert.Lifecycle
}

// Recall is what the state remembers of the provider (its last writer, a
// revert), as the engine reads it: stage refuses a provider owned by code.
func (s *StageState) Recall(ctx context.Context, providerARN string, now time.Time) (drift.Recall, error) {
	items, err := s.lifecycle.Recall(ctx, []string{providerARN}, now)
	return items[providerARN], err
}

// OpenStageState is the state table with a client from the SDK's standard
// chain, for the CLI's stage.
func OpenStageState(ctx context.Context, table string) (*StageState, error) {
	awsCfg, err := awsclient.Load(ctx)
	if err != nil {
		return nil, err
	}
	st := NewStateStore(awsCfg, table)
	return &StageState{Store: st, lifecycle: alert.NewLifecycle(st, alert.Policy{}, nil)}, nil
}

// accountLister finds the run's accounts: the configured role ARNs (each
// always checked), or every active account of the organisation (its own
// account with own credentials; the management account skipped from a
// delegated administrator unless cfg.OrgIncludeManagementAccount). Each
// account's role is assumed when the engine opens it.
func accountLister(awsCfg aws.Config, cfg config.Config, own drift.Providers, org accounts.OrgAPI, ids []string) func(context.Context) ([]drift.Account, error) {
	stsc := sts.NewFromConfig(awsCfg)
	return func(ctx context.Context) ([]drift.Account, error) {
		targets, err := listTargets(ctx, cfg, stsc, org, ids)
		if err != nil {
			return nil, err
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

// listTargets returns how each account of the run is reached: the accounts
// ids (a sharded run's batch, each reached as the whole run would reach it),
// or every account: the configured role ARNs, or every active account of the
// organisation.
func listTargets(ctx context.Context, cfg config.Config, stsc accounts.STSAPI, org accounts.OrgAPI, ids []string) ([]accounts.Target, error) {
	roles := accounts.FromRoles(cfg.AccountRoleARNs)
	if cfg.OrgRoleName == "" {
		if len(ids) == 0 {
			return roles, nil
		}
		byID := make(map[string]accounts.Target, len(roles))
		for _, t := range roles {
			byID[t.AccountID] = t
		}
		out := make([]accounts.Target, 0, len(ids))
		for _, id := range ids {
			t, ok := byID[id]
			if !ok {
				return nil, fmt.Errorf("account %s is not among ACCOUNT_ROLE_ARNS", id)
			}
			out = append(out, t)
		}
		return out, nil
	}
	caller, err := accounts.WhoAmI(ctx, stsc)
	if err != nil {
		return nil, err
	}
	opts := accounts.OrgOptions{RoleName: cfg.OrgRoleName, IncludeManagement: cfg.OrgIncludeManagementAccount}
	if len(ids) == 0 {
		return accounts.FromOrganization(ctx, org, caller, opts)
	}
	management, err := accounts.ManagementAccount(ctx, org)
	if err != nil {
		return nil, err
	}
	out := make([]accounts.Target, 0, len(ids))
	for _, id := range ids {
		out = append(out, accounts.OrgTarget(id, caller, management, opts))
	}
	return out, nil
}

// securityHubs finds the Security Hub client of each account from the
// configuration alone (so that an invocation that only notifies finds them
// too): the function's own client for its own account and outside
// organisation mode, else one through the account's member role (the role
// ARN listed for it, or ORG_ROLE_NAME in it).
type securityHubs struct {
	awsCfg aws.Config
	cfg    config.Config
	sts    *sts.Client
	own    alert.SecurityHubAPI

	mu      sync.Mutex
	caller  *accounts.Caller
	clients map[string]alert.SecurityHubAPI
}

func newSecurityHubs(awsCfg aws.Config, cfg config.Config) *securityHubs {
	return &securityHubs{awsCfg: awsCfg, cfg: cfg, sts: sts.NewFromConfig(awsCfg), own: securityhub.NewFromConfig(awsCfg), clients: map[string]alert.SecurityHubAPI{}}
}

// whoAmI is the function's own identity, asked of STS once it is known.
func (h *securityHubs) whoAmI(ctx context.Context) (accounts.Caller, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.caller != nil {
		return *h.caller, nil
	}
	c, err := accounts.WhoAmI(ctx, h.sts)
	if err != nil {
		return accounts.Caller{}, err
	}
	h.caller = &c
	return c, nil
}

func (h *securityHubs) ownAccount(ctx context.Context) (string, error) {
	c, err := h.whoAmI(ctx)
	return c.AccountID, err
}

func (h *securityHubs) client(ctx context.Context, acct string) (alert.SecurityHubAPI, error) {
	if !h.cfg.MultiAccount() {
		return h.own, nil
	}
	caller, err := h.whoAmI(ctx)
	if err != nil {
		return nil, err
	}
	if acct == caller.AccountID {
		return h.own, nil
	}
	role := ""
	for _, arn := range h.cfg.AccountRoleARNs {
		if accounts.AccountOf(arn) == acct {
			role = arn
		}
	}
	if role == "" && h.cfg.OrgRoleName != "" {
		role = fmt.Sprintf("arn:%s:iam::%s:role/%s", caller.Partition, acct, h.cfg.OrgRoleName)
	}
	if role == "" {
		return nil, fmt.Errorf("account %s is not in this run: no role to import its findings with", acct)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.clients[role]; ok {
		return c, nil
	}
	acfg := h.awsCfg.Copy()
	acfg.Credentials = accounts.Credentials(h.sts, role, h.cfg.ExternalID)
	c := securityhub.NewFromConfig(acfg)
	h.clients[role] = c
	return c, nil
}
