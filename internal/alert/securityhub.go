package alert

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	shtypes "github.com/aws/aws-sdk-go-v2/service/securityhub/types"

	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
)

// SecurityHubAPI is the part of the Security Hub client this package calls.
type SecurityHubAPI interface {
	BatchImportFindings(ctx context.Context, in *securityhub.BatchImportFindingsInput, optFns ...func(*securityhub.Options)) (*securityhub.BatchImportFindingsOutput, error)
}

var _ SecurityHubAPI = (*securityhub.Client)(nil)

// MaxFindingsPerImport is BatchImportFindings' limit on findings per call.
const MaxFindingsPerImport = 100

// FindingID is the stable id of a provider's finding (of an account's, for
// account-failed): one finding per provider, created on a problem, updated
// when it changes, archived when it is gone.
func FindingID(r drift.Result) string {
	if r.ProviderARN == "" {
		return "thumbprint-drift/account/" + r.AccountID
	}
	return "thumbprint-drift/" + r.ProviderARN
}

// SecurityHub imports one AWS Security Finding Format finding per provider of
// a message, in the provider's own account (its member role in organisation
// mode), so Security Hub's cross-account aggregation shows it in the
// administrator account. It is a drift.Publisher: an import that fails is an
// undelivered alert.
type SecurityHub struct {
	// client returns the Security Hub client of an account.
	client func(ctx context.Context, accountID string) (SecurityHubAPI, error)
	region string
}

var _ drift.Publisher = (*SecurityHub)(nil)

// NewSecurityHub returns a publisher importing findings in region through
// the client that client returns for each account.
func NewSecurityHub(region string, client func(ctx context.Context, accountID string) (SecurityHubAPI, error)) *SecurityHub {
	return &SecurityHub{client: client, region: region}
}

// Publish imports the findings of m's results, per account, at most 100 per
// call. Every finding must be accepted for the message to count as delivered.
func (s *SecurityHub) Publish(ctx context.Context, m drift.Message) error {
	byAccount := map[string][]shtypes.AwsSecurityFinding{}
	var order []string
	for _, r := range m.Results {
		acct := findingAccount(r)
		if _, ok := byAccount[acct]; !ok {
			order = append(order, acct)
		}
		byAccount[acct] = append(byAccount[acct], Finding(m, r, s.region))
	}
	var errs []error
	for _, acct := range order {
		api, err := s.client(ctx, acct)
		if err != nil {
			errs = append(errs, fmt.Errorf("security hub client for account %s: %w", acct, err))
			continue
		}
		findings := byAccount[acct]
		for start := 0; start < len(findings); start += MaxFindingsPerImport {
			batch := findings[start:min(start+MaxFindingsPerImport, len(findings))]
			out, err := api.BatchImportFindings(ctx, &securityhub.BatchImportFindingsInput{Findings: batch})
			if err != nil {
				errs = append(errs, fmt.Errorf("import %d findings in account %s: %w", len(batch), acct, err))
				continue
			}
			if n := aws.ToInt32(out.FailedCount); n > 0 {
				var why []string
				for _, f := range out.FailedFindings {
					why = append(why, aws.ToString(f.Id)+": "+aws.ToString(f.ErrorCode)+" "+aws.ToString(f.ErrorMessage))
				}
				errs = append(errs, fmt.Errorf("import findings in account %s: %d of %d refused: %s", acct, n, len(batch), strings.Join(why, "; ")))
			}
		}
	}
	return errors.Join(errs...)
}

// ASFF severities of the outcomes' severities.
var findingSeverity = map[drift.Severity]shtypes.SeverityLabel{
	drift.SeverityCritical: shtypes.SeverityLabelCritical,
	drift.SeverityWarning:  shtypes.SeverityLabelMedium,
	drift.SeverityInfo:     shtypes.SeverityLabelInformational,
	drift.SeverityNone:     shtypes.SeverityLabelInformational,
}

// Finding is the ASFF finding of one result of m: ACTIVE and compliance
// FAILED for a problem (new, changed, reminder), ARCHIVED and PASSED when the
// problem is gone (resolved) or was fixed (applied).
func Finding(m drift.Message, r drift.Result, region string) shtypes.AwsSecurityFinding {
	acct := findingAccount(r)
	partition := findingPartition(r.ProviderARN)
	checked := m.CheckedAt.UTC().Format(time.RFC3339)
	created := checked
	if r.FirstSeen != "" {
		created = r.FirstSeen
	}
	closed := m.Transition == drift.TransitionResolved || m.Transition == drift.TransitionApplied
	state, compliance, sev := shtypes.RecordStateActive, shtypes.ComplianceStatusFailed, findingSeverity[r.Severity]
	if closed {
		state, compliance, sev = shtypes.RecordStateArchived, shtypes.ComplianceStatusPassed, shtypes.SeverityLabelInformational
	}
	if sev == "" {
		sev = shtypes.SeverityLabelMedium
	}
	resourceID, resourceType := r.ProviderARN, "Other"
	if resourceID == "" {
		resourceID, resourceType = "AWS::::Account:"+acct, "AwsAccount"
	}
	where := m.Host
	if where == "" {
		where = r.URL
	}
	title := fmt.Sprintf("IAM OIDC provider thumbprint %s: %s", r.Outcome, where)
	if r.Outcome == drift.AccountFailed {
		title = "thumbprint-drift could not check account " + acct
	}
	desc := findingDescription(m, r)
	fix := "No action needed: the stored thumbprints match the identity provider's certificates."
	switch {
	case closed:
	case r.Outcome == drift.Drift || r.Outcome == drift.UpdateFailed:
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
		CreatedAt:       aws.String(created),
		UpdatedAt:       aws.String(checked),
		FirstObservedAt: aws.String(created),
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

func findingDescription(m drift.Message, r drift.Result) string {
	var b strings.Builder
	switch m.Transition {
	case drift.TransitionResolved:
		b.WriteString("Resolved: the stored thumbprints match the live certificates again. ")
	case drift.TransitionApplied:
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

// findingPartition is the partition of an ARN, aws when there is none.
func findingPartition(arn string) string {
	parts := strings.SplitN(arn, ":", 3)
	if len(parts) == 3 && parts[0] == "arn" && parts[1] != "" {
		return parts[1]
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
