package alert

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	shtypes "github.com/aws/aws-sdk-go-v2/service/securityhub/types"
	"github.com/aws/smithy-go"

	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/oidcprovider"
)

// SecurityHubAPI is the part of the Security Hub client this package calls.
type SecurityHubAPI interface {
	BatchImportFindings(ctx context.Context, in *securityhub.BatchImportFindingsInput, optFns ...func(*securityhub.Options)) (*securityhub.BatchImportFindingsOutput, error)
}

var _ SecurityHubAPI = (*securityhub.Client)(nil)

// MaxFindingsPerImport is BatchImportFindings' limit on findings per call.
const MaxFindingsPerImport = 100

// FindingID is the stable id of a provider's finding (of an account's, for
// account-failed; of the organisation's, for a failed listing): one finding
// per provider, created on a problem, updated when it changes, archived
// when it is gone.
func FindingID(r drift.Result) string {
	switch {
	case r.ProviderARN != "":
		return "thumbprint-drift/" + r.ProviderARN
	case r.AccountID == "":
		return "thumbprint-drift/organization"
	}
	return "thumbprint-drift/account/" + r.AccountID
}

// SecurityHub imports one AWS Security Finding Format finding per provider of
// a message, in the provider's own account (its member role in organisation
// mode), so Security Hub's cross-account aggregation shows it in the
// administrator account. An account's own problem (account-failed, a failed
// organisation listing) is imported in the function's own account, which
// Security Hub requires as AwsAccountId, with the failed account as the
// finding's resource. It is an Integration: a finding refused is not
// delivered to Security Hub, for its result only.
type SecurityHub struct {
	// client returns the Security Hub client of an account.
	client func(ctx context.Context, accountID string) (SecurityHubAPI, error)
	// own returns the function's own account id.
	own    func(ctx context.Context) (string, error)
	region string
}

var _ Integration = (*SecurityHub)(nil)

// NewSecurityHub returns an integration importing findings in region
// through the client that client returns for each account; own returns the
// function's own account id (where account-failed findings are imported).
func NewSecurityHub(region string, own func(ctx context.Context) (string, error), client func(ctx context.Context, accountID string) (SecurityHubAPI, error)) *SecurityHub {
	return &SecurityHub{client: client, own: own, region: region}
}

// Name is "securityhub".
func (s *SecurityHub) Name() string { return "securityhub" }

// Notify imports the findings of m's results that have one (m.Findings),
// per account, at most MaxFindingsPerImport per call. A call that fails, or
// a finding it reports in FailedFindings, is a *Refused of those results.
func (s *SecurityHub) Notify(ctx context.Context, m Message) error {
	type pending struct {
		keys     []string
		findings []shtypes.AwsSecurityFinding
	}
	byAccount := map[string]*pending{}
	var order []string
	refused := &Refused{Keys: map[string]Refusal{}}
	for _, r := range m.Results {
		created, ok := m.Findings[r.Key()]
		if !ok {
			continue // an applied that closes no alerted problem: no finding
		}
		acct := findingAccount(r)
		if r.ProviderARN == "" {
			own, err := s.own(ctx)
			if err != nil {
				refused.Keys[r.Key()] = Refusal{Code: "OwnAccountUnknown", Message: err.Error()}
				continue
			}
			acct = own
		}
		if _, ok := byAccount[acct]; !ok {
			byAccount[acct] = &pending{}
			order = append(order, acct)
		}
		p := byAccount[acct]
		p.keys = append(p.keys, r.Key())
		p.findings = append(p.findings, Finding(m, r, acct, s.region, created))
	}
	for _, acct := range order {
		p := byAccount[acct]
		api, err := s.client(ctx, acct)
		if err != nil {
			for _, k := range p.keys {
				refused.Keys[k] = Refusal{Code: "NoClient", Message: fmt.Sprintf("security hub client for account %s: %v", acct, err)}
			}
			continue
		}
		for start := 0; start < len(p.findings); start += MaxFindingsPerImport {
			end := min(start+MaxFindingsPerImport, len(p.findings))
			out, err := api.BatchImportFindings(ctx, &securityhub.BatchImportFindingsInput{Findings: p.findings[start:end]})
			if err != nil {
				why := Refusal{Code: "Error", Message: fmt.Sprintf("import %d findings in account %s: %v", end-start, acct, err)}
				if ae, ok := errors.AsType[smithy.APIError](err); ok {
					why.Code = ae.ErrorCode()
				}
				for _, k := range p.keys[start:end] {
					refused.Keys[k] = why
				}
				continue
			}
			if aws.ToInt32(out.FailedCount) == 0 && len(out.FailedFindings) == 0 {
				continue
			}
			keyOf := map[string]string{}
			for i, f := range p.findings[start:end] {
				keyOf[aws.ToString(f.Id)] = p.keys[start+i]
			}
			for _, f := range out.FailedFindings {
				k, ok := keyOf[aws.ToString(f.Id)]
				if !ok {
					continue
				}
				refused.Keys[k] = Refusal{Code: aws.ToString(f.ErrorCode), Message: fmt.Sprintf("finding %s in account %s: %s", aws.ToString(f.Id), acct, aws.ToString(f.ErrorMessage))}
			}
			if len(out.FailedFindings) == 0 { // a count without the entries: every finding of the call
				for _, k := range p.keys[start:end] {
					refused.Keys[k] = Refusal{Code: "Unknown", Message: fmt.Sprintf("%d of %d findings refused in account %s", aws.ToInt32(out.FailedCount), end-start, acct)}
				}
			}
		}
	}
	if len(refused.Keys) > 0 {
		return refused
	}
	return nil
}

// ASFF severities of the outcomes' severities.
var findingSeverity = map[drift.Severity]shtypes.SeverityLabel{
	drift.SeverityCritical: shtypes.SeverityLabelCritical,
	drift.SeverityWarning:  shtypes.SeverityLabelMedium,
	drift.SeverityInfo:     shtypes.SeverityLabelInformational,
	drift.SeverityNone:     shtypes.SeverityLabelInformational,
}

// Finding is the ASFF finding of one result of m, imported in account acct
// (the provider's; the function's own for an account's own problem), the
// finding created at created (its first problem; zero: the result's first
// seen, else the check): ACTIVE and compliance FAILED for a problem (new,
// changed, reminder), ARCHIVED and PASSED when the problem is gone
// (resolved) or was fixed (applied). CreatedAt and FirstObservedAt are
// created, whatever the transition.
func Finding(m Message, r drift.Result, acct string, region string, created time.Time) shtypes.AwsSecurityFinding {
	partition := findingPartition(r.ProviderARN)
	checked := m.CheckedAt.UTC().Format(time.RFC3339)
	createdAt := checked
	switch {
	case !created.IsZero():
		createdAt = created.UTC().Format(time.RFC3339)
	case r.FirstSeen != "":
		createdAt = r.FirstSeen
	}
	closed := m.Transition == TransitionResolved || m.Transition == TransitionApplied
	state, compliance, sev := shtypes.RecordStateActive, shtypes.ComplianceStatusFailed, findingSeverity[r.Severity]
	if closed {
		state, compliance, sev = shtypes.RecordStateArchived, shtypes.ComplianceStatusPassed, shtypes.SeverityLabelInformational
	}
	if sev == "" {
		sev = shtypes.SeverityLabelMedium
	}
	resourceID, resourceType := r.ProviderARN, "Other"
	if resourceID == "" {
		// The failed account (the importing one for a failed listing).
		resourceID, resourceType = "AWS::::Account:"+cmp.Or(r.AccountID, acct), "AwsAccount"
	}
	where := m.Host
	if where == "" {
		where = r.URL
	}
	title := fmt.Sprintf("IAM OIDC provider thumbprint %s: %s", r.Outcome, where)
	if r.Outcome == drift.AccountFailed {
		title = "thumbprint-drift could not check account " + r.AccountID
		if r.AccountID == "" {
			title = "thumbprint-drift could not list the organization's accounts"
		}
	}
	desc := findingDescription(m, r)
	fix := "No action needed: the stored thumbprints match the identity provider's certificates."
	switch {
	case closed:
	case r.CodeFix != "" && (r.Outcome == drift.Drift || r.Outcome == drift.Reverted):
		fix = "Owned by code (" + r.ManagedBy + "): change the code to declare the list, then apply it: " + r.CodeFix
	case r.Outcome == drift.Drift || r.Outcome == drift.Reverted || r.Outcome == drift.UpdateFailed:
		if len(r.NewThumbprints) > 0 {
			fix = "Verify the live certificate out of band, then run: " + FixCommand(r.ProviderARN, r.NewThumbprints)
		} else {
			fix = "Check the identity provider's TLS certificate and the provider's thumbprint list."
		}
	case r.Outcome == drift.ProbeFailed:
		fix = "Check that the issuer's discovery document and jwks_uri are reachable over HTTPS from the function; see the detail."
	case r.Outcome == drift.Expiring:
		fix = "Stage the next certificate's thumbprint ahead of the rotation: thumbprint-drift stage --provider " + r.ProviderARN + " --pem NEXT.pem"
	case r.Outcome == drift.AccountFailed:
		fix = "Check that the member role exists in the account and trusts the function's role."
	}
	return shtypes.AwsSecurityFinding{
		SchemaVersion:   aws.String("2018-10-08"),
		Id:              aws.String(FindingID(r)),
		ProductArn:      aws.String(fmt.Sprintf("arn:%s:securityhub:%s:%s:product/%s/default", partition, region, acct, acct)),
		GeneratorId:     aws.String("thumbprint-drift"),
		AwsAccountId:    aws.String(acct),
		Types:           []string{"Software and Configuration Checks/AWS Security Best Practices"},
		CreatedAt:       aws.String(createdAt),
		UpdatedAt:       aws.String(checked),
		FirstObservedAt: aws.String(createdAt),
		LastObservedAt:  aws.String(checked),
		Severity:        &shtypes.Severity{Label: sev, Original: aws.String(string(r.Severity))},
		Title:           aws.String(findingCut(title, 256)),
		Description:     aws.String(findingCut(desc, 1024)),
		Remediation:     &shtypes.Remediation{Recommendation: &shtypes.Recommendation{Text: aws.String(findingCut(fix, 512))}},
		Resources: []shtypes.Resource{{
			Type:      aws.String(resourceType),
			Id:        aws.String(resourceID),
			Partition: shtypes.Partition(partition),
			Region:    aws.String(region),
			Details:   &shtypes.ResourceDetails{Other: map[string]string{"url": r.URL}},
		}},
		Compliance:  &shtypes.Compliance{Status: compliance},
		RecordState: state,
		ProductFields: map[string]string{
			"thumbprint-drift/transition":         string(m.Transition),
			"thumbprint-drift/outcome":            string(r.Outcome),
			"thumbprint-drift/breaks_assume_role": fmt.Sprint(r.BreaksAssumeRole),
			"thumbprint-drift/live_thumbprints":   strings.Join(r.LiveThumbprints, ","),
		},
	}
}

func findingDescription(m Message, r drift.Result) string {
	var b strings.Builder
	switch m.Transition {
	case TransitionResolved:
		b.WriteString("Resolved: the stored thumbprints match the live certificates again. ")
	case TransitionApplied:
		b.WriteString("Fixed: thumbprint-drift replaced the thumbprint list. ")
	}
	fmt.Fprintf(&b, "Outcome %s for %s.", r.Outcome, r.URL)
	if r.BreaksAssumeRole {
		b.WriteString(" sts:AssumeRoleWithWebIdentity fails for this provider: AWS checks its thumbprint (the chain is not publicly trusted, or the host requires TLS 1.3) and the live one is not stored.")
	}
	if len(r.LiveThumbprints) > 0 {
		fmt.Fprintf(&b, " Live: %s. Stored: %s.", strings.Join(r.LiveThumbprints, ", "), strings.Join(r.StoredThumbprints, ", "))
	}
	if r.Detail != "" {
		b.WriteString(" " + r.Detail)
	}
	return b.String()
}

func findingAccount(r drift.Result) string {
	if r.AccountID != "" {
		return r.AccountID
	}
	return accounts.AccountOf(r.ProviderARN)
}

// findingPartition is the partition of a provider ARN, aws when there is
// none (an account's own finding).
func findingPartition(arn string) string {
	if a, err := oidcprovider.ParseARN(arn); err == nil {
		return a.Partition
	}
	return "aws"
}

// findingCut shortens s to at most n bytes at a rune boundary, marking the cut.
func findingCut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	i := n - len(mark)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + mark
}
