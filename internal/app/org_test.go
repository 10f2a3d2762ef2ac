package app_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/thumbprint-drift/thumbprint-drift/internal/accounts"
	"github.com/thumbprint-drift/thumbprint-drift/internal/app"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

const roleName = "thumbprint-drift-member"

// publicRoot is trusted through SSL_CERT_FILE, set before anything loads Go's
// system root pool (it is loaded once per process), as the function sees it.
var publicRoot *testidp.CA

func TestMain(m *testing.M) {
	var err error
	if publicRoot, err = testidp.NewRoot("Org Test Public Root"); err != nil {
		panic(err)
	}
	dir, err := os.MkdirTemp("", "app-test")
	if err != nil {
		panic(err)
	}
	file := filepath.Join(dir, "roots.pem")
	if err := os.WriteFile(file, publicRoot.PEM(), 0o600); err != nil {
		panic(err)
	}
	os.Setenv("SSL_CERT_FILE", file)
	os.Unsetenv("SSL_CERT_DIR")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// org is an organisation in moto: the management account (moto's default)
// and members, one of them suspended.
type org struct {
	t          *testing.T
	moto       *testpeer.Moto
	base       aws.Config
	management string
	members    []string // active
	suspended  string
}

func newOrg(t *testing.T, members int) *org {
	t.Helper()
	ctx := context.Background()
	m := peertest.Moto(t)
	o := &org{t: t, moto: m, base: m.Config(), management: testpeer.AccountID}
	oc := organizations.NewFromConfig(o.base)
	if _, err := oc.CreateOrganization(ctx, &organizations.CreateOrganizationInput{FeatureSet: orgtypes.OrganizationFeatureSetAll}); err != nil {
		t.Fatalf("create organization: %v", err)
	}
	for i := range members + 1 {
		out, err := oc.CreateAccount(ctx, &organizations.CreateAccountInput{AccountName: aws.String(fmt.Sprintf("member-%d", i)), Email: aws.String(fmt.Sprintf("m%d@example.com", i))})
		if err != nil {
			t.Fatalf("create account: %v", err)
		}
		id := aws.ToString(out.CreateAccountStatus.AccountId)
		if i == members {
			if _, err := oc.CloseAccount(ctx, &organizations.CloseAccountInput{AccountId: aws.String(id)}); err != nil {
				t.Fatalf("close account: %v", err)
			}
			o.suspended = id
			continue
		}
		o.members = append(o.members, id)
	}
	sort.Strings(o.members)
	return o
}

// iamIn returns an IAM client acting in account (assuming the member role,
// which moto grants for any role name).
func (o *org) iamIn(account string) *iam.Client {
	if account == o.management {
		return iam.NewFromConfig(o.base)
	}
	cfg := o.base.Copy()
	cfg.Credentials = accounts.Credentials(sts.NewFromConfig(o.base), fmt.Sprintf("arn:aws:iam::%s:role/%s", account, roleName), "")
	return iam.NewFromConfig(cfg)
}

func (o *org) provider(account, url string, tps ...string) string {
	o.t.Helper()
	outARN, err := testpeer.CreateProvider(context.Background(), o.iamIn(account), &iam.CreateOpenIDConnectProviderInput{Url: aws.String("https://" + url), ThumbprintList: tps})
	if err != nil {
		o.t.Fatalf("create provider in %s: %v", account, err)
	}
	arn := outARN
	if accounts.AccountOf(arn) != account {
		o.t.Fatalf("provider %s landed outside account %s", arn, account)
	}
	return arn
}

func (o *org) stored(account, arn string) string {
	o.t.Helper()
	out, err := o.iamIn(account).GetOpenIDConnectProvider(context.Background(), &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
	if err != nil {
		o.t.Fatalf("get %s: %v", arn, err)
	}
	return strings.Join(out.ThumbprintList, ",")
}

// engine wires the production engine (app) with endpoint as the AWS endpoint
// for every service, trusting root.
func (o *org) engine(cfg config.Config, endpoint string) *app.Service {
	awsCfg := aws.Config{
		Region:       testpeer.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(testpeer.AccessKey, testpeer.SecretKey, ""),
		BaseEndpoint: aws.String(endpoint),
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
	}
	return app.NewFromAWS(context.Background(), awsCfg, cfg, nil)
}

func TestOrganisationMode(t *testing.T) {
	o := newOrg(t, 3)
	inter, _ := publicRoot.Intermediate("Org Test Intermediate")
	leaf, _ := inter.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	shared, err := testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf, inter)}, Path: "/gh"})
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	private, _ := testidp.NewRoot("Member Private Root")
	pleaf, _ := private.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	distinct, err := testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(pleaf, private)}, Path: "/private"})
	if err != nil {
		t.Fatal(err)
	}
	defer distinct.Close()
	live := testidp.Thumbprint(inter.DER)
	old := strings.Repeat("0c", 20)

	// The same issuer (like GitHub Actions) in every account: drifted in the
	// management account and two members, in sync in the third.
	ghURL := shared.URL()
	gh := map[string]string{}
	for i, acct := range append([]string{o.management}, o.members...) {
		tps := []string{old}
		if i == 3 {
			tps = []string{live}
		}
		gh[acct] = o.provider(acct, ghURL, tps...)
	}
	privateARN := o.provider(o.members[0], distinct.URL(), old)
	suspendedARN := o.provider(o.suspended, ghURL, old)

	// Member 1 has no role: STS refuses to assume it.
	denied := fmt.Sprintf("arn:aws:iam::%s:role/%s", o.members[1], roleName)
	proxy, err := testpeer.StartFaultProxy(o.moto.Endpoint, func(c testpeer.Call) testpeer.Fault {
		if c.Action == "AssumeRole" && c.Form.Get("RoleArn") == denied {
			return testpeer.AccessDenied
		}
		return testpeer.Pass
	})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()

	q, err := testpeer.NewAlertQueue(context.Background(), o.base, "org")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.OrgRoleName = roleName
	cfg.AccountConcurrency = 2
	cfg.TopicARN = q.TopicARN
	e := o.engine(cfg, proxy.URL)
	rep, runErr := e.Run(context.Background(), drift.Request{})
	if runErr == nil || !strings.Contains(runErr.Error(), o.members[1]) {
		t.Fatalf("Run error = %v, want the failed account named", runErr)
	}

	// Sections: management + 3 active members; the suspended account is left out.
	var ids []string
	for _, a := range rep.Accounts {
		ids = append(ids, a.AccountID)
	}
	want := append([]string{o.management}, o.members...)
	sort.Strings(want)
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Fatalf("account sections %v, want %v", ids, want)
	}
	for _, a := range rep.Accounts {
		switch a.AccountID {
		case o.management:
			if a.RoleARN != "" {
				t.Errorf("management account assumed a role: %s", a.RoleARN)
			}
		case o.members[1]:
			if !strings.Contains(a.Error, "AccessDenied") || a.Checked != 0 {
				t.Errorf("denied account section %+v", a)
			}
		default:
			if a.Error != "" {
				t.Errorf("account %s failed: %s", a.AccountID, a.Error)
			}
		}
	}
	if rep.Counts[drift.AccountFailed] != 1 || rep.Counts[drift.Updated] != 2 || rep.Counts[drift.InSync] != 1 || rep.Counts[drift.Drift] != 1 {
		t.Errorf("totals %v", rep.Counts)
	}
	for _, r := range rep.Results {
		if r.AccountID == "" {
			t.Errorf("result without account_id: %+v", r)
		}
		if r.Outcome == drift.AccountFailed && (r.Severity != drift.SeverityCritical || r.AccountID != o.members[1]) {
			t.Errorf("account-failed result %+v", r)
		}
	}

	// Updates landed in the right accounts only.
	if got := o.stored(o.management, gh[o.management]); got != live+","+old {
		t.Errorf("management provider %s", got)
	}
	if got := o.stored(o.members[0], gh[o.members[0]]); got != live+","+old {
		t.Errorf("member 0 provider %s", got)
	}
	if got := o.stored(o.members[0], privateARN); got != old {
		t.Errorf("untrusted provider written: %s", got)
	}
	if got := o.stored(o.members[1], gh[o.members[1]]); got != old {
		t.Errorf("denied account's provider changed: %s", got)
	}
	if got := o.stored(o.members[2], gh[o.members[2]]); got != live {
		t.Errorf("in-sync provider changed: %s", got)
	}
	if got := o.stored(o.suspended, suspendedARN); got != old {
		t.Errorf("suspended account's provider changed: %s", got)
	}

	// Messages grouped by transition, outcome and host; each result carries
	// its account, and a message of one account says so in an attribute.
	msgs, err := q.Drain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	perOutcome := map[string][]string{}
	results := 0
	for _, m := range msgs {
		accts := map[any]bool{}
		for _, r := range m.Results() {
			results++
			if r["account_id"] == nil || r["account_id"] == "" {
				t.Errorf("result without account_id in %s: %v", m.Subject, r)
			}
			accts[r["account_id"]] = true
			perOutcome[m.Attr("outcome")] = append(perOutcome[m.Attr("outcome")], r["account_id"].(string))
		}
		if len(accts) == 1 && !accts[m.Attr("account_id")] {
			t.Errorf("message of one account without its account_id attribute: %s %v", m.Subject, m.MessageAttributes)
		}
	}
	if got := perOutcome["account-failed"]; len(got) != 1 || got[0] != o.members[1] {
		t.Errorf("account-failed messages for %v, want one for %s", got, o.members[1])
	}
	if len(perOutcome["updated"]) != 2 || len(perOutcome["drift"]) != 1 || results != 4 {
		t.Errorf("results by outcome %v", perOutcome)
	}
	// The two updates of the shared host are one applied message.
	if len(msgs) != 3 {
		t.Errorf("%d messages, want 3 (account-failed, drift, one applied for the shared host)", len(msgs))
	}

	// The shared issuer was fetched and handshaken once for all accounts:
	// one discovery connection plus one probe handshake (the TLS 1.2 check).
	if got := shared.Handshakes(); got != 2 {
		t.Errorf("shared host saw %d handshakes across accounts, want 2", got)
	}
}

func TestAccountRoleARNs(t *testing.T) {
	o := newOrg(t, 2)
	inter, _ := publicRoot.Intermediate("Roles Test Intermediate")
	leaf, _ := inter.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	s, err := testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf, inter)}, Path: "/p"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old := strings.Repeat("0d", 20)
	inList := o.provider(o.members[0], s.URL(), old)
	notInList := o.provider(o.members[1], s.URL(), old)
	own := o.provider(o.management, s.URL(), old)

	cfg := config.Default()
	cfg.AccountRoleARNs = []string{fmt.Sprintf("arn:aws:iam::%s:role/%s", o.members[0], roleName)}
	cfg.Mode = config.ModeAlert
	rep, err := o.engine(cfg, o.moto.Endpoint).Run(context.Background(), drift.Request{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(rep.Accounts) != 1 || rep.Accounts[0].AccountID != o.members[0] || rep.Accounts[0].RoleARN != cfg.AccountRoleARNs[0] {
		t.Fatalf("accounts %+v, want only the listed one", rep.Accounts)
	}
	if rep.Checked != 1 || rep.Results[0].ProviderARN != inList || rep.Results[0].Outcome != drift.Drift {
		t.Fatalf("results %+v", rep.Results)
	}
	for acct, arn := range map[string]string{o.members[0]: inList, o.members[1]: notInList, o.management: own} {
		if got := o.stored(acct, arn); got != old {
			t.Errorf("alert mode wrote %s in %s: %s", arn, acct, got)
		}
	}
}

// delegatedAdmin is the Organizations API as a delegated administrator sees
// it: DescribeOrganization is moto's answer to the administrator's own
// credentials (it names the real management account), while ListAccounts,
// which moto answers with an empty list for any account but the management
// account, is the management account's answer.
type delegatedAdmin struct {
	self, management *organizations.Client
}

func (d delegatedAdmin) DescribeOrganization(ctx context.Context, in *organizations.DescribeOrganizationInput, opts ...func(*organizations.Options)) (*organizations.DescribeOrganizationOutput, error) {
	return d.self.DescribeOrganization(ctx, in, opts...)
}

func (d delegatedAdmin) ListAccounts(ctx context.Context, in *organizations.ListAccountsInput, opts ...func(*organizations.Options)) (*organizations.ListAccountsOutput, error) {
	return d.management.ListAccounts(ctx, in, opts...)
}

var _ accounts.OrgAPI = delegatedAdmin{}

// TestDelegatedAdministrator runs organisation mode from a member account
// (the delegated administrator): the management account, where
// service-managed StackSets never deploy the member role, is skipped with its
// reason, nothing is assumed there and the run succeeds; with
// ORG_INCLUDE_MANAGEMENT_ACCOUNT it is checked through the role. Requested
// providers that no account of the run holds are skipped results saying why.
func TestDelegatedAdministrator(t *testing.T) {
	o := newOrg(t, 2)
	admin, member := o.members[0], o.members[1]
	root, _ := testidp.NewRoot("Delegated Admin Private Root")
	leaf, _ := root.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	s, err := testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf, root)}, Path: "/da"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old := strings.Repeat("0f", 20)
	arns := map[string]string{}
	for _, acct := range []string{o.management, admin, member} {
		arns[acct] = o.provider(acct, s.URL(), old)
	}
	outside := "arn:aws:iam::999999999999:oidc-provider/" + s.URL()

	// Every AssumeRole the function makes passes this proxy.
	var (
		mu      sync.Mutex
		assumed []string
	)
	proxy, err := testpeer.StartFaultProxy(o.moto.Endpoint, func(c testpeer.Call) testpeer.Fault {
		if c.Action == "AssumeRole" {
			mu.Lock()
			assumed = append(assumed, c.Form.Get("RoleArn"))
			mu.Unlock()
		}
		return testpeer.Pass
	})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()

	// The function's own credentials are the administrator account's.
	awsCfg := aws.Config{
		Region:       testpeer.Region,
		Credentials:  accounts.Credentials(sts.NewFromConfig(o.base), fmt.Sprintf("arn:aws:iam::%s:role/delegated-admin-function", admin), ""),
		BaseEndpoint: aws.String(proxy.URL),
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
	}
	orgAPI := delegatedAdmin{self: organizations.NewFromConfig(awsCfg), management: organizations.NewFromConfig(o.base)}
	roleIn := func(acct string) string { return fmt.Sprintf("arn:aws:iam::%s:role/%s", acct, roleName) }

	tests := []struct {
		name    string
		include bool
		request []string
		// outcome per provider ARN ("" for the account's own result)
		want    map[string]drift.Outcome
		detail  map[string]string
		assumed []string
		skipped bool // the management account's section says why it was skipped
	}{
		{
			name:    "management account skipped",
			want:    map[string]drift.Outcome{"": drift.Skipped, arns[admin]: drift.Drift, arns[member]: drift.Drift},
			detail:  map[string]string{"": "management account of the organisation, not checked from delegated administrator " + admin},
			assumed: []string{roleIn(member)},
			skipped: true,
		},
		{
			name:    "management account opted in",
			include: true,
			want:    map[string]drift.Outcome{arns[o.management]: drift.Drift, arns[admin]: drift.Drift, arns[member]: drift.Drift},
			assumed: []string{roleIn(o.management), roleIn(member)},
		},
		{
			name:    "requested providers outside the run",
			request: []string{arns[member], arns[o.management], outside},
			want:    map[string]drift.Outcome{arns[member]: drift.Drift, arns[o.management]: drift.Skipped, outside: drift.Skipped},
			detail: map[string]string{
				arns[o.management]: "account " + o.management + " is not in this run: management account of the organisation",
				outside:            "account 999999999999 is not in this run",
			},
			assumed: []string{roleIn(member)},
			skipped: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			assumed = nil
			mu.Unlock()
			cfg := config.Default()
			cfg.OrgRoleName = roleName
			cfg.OrgIncludeManagementAccount = tt.include
			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, nil))
			e := app.NewServiceWithOrg(context.Background(), awsCfg, cfg, logger, orgAPI)
			rep, err := e.Run(context.Background(), drift.Request{Mode: config.ModeReport, Providers: tt.request})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}

			got := map[string]drift.Outcome{}
			for _, r := range rep.Results {
				got[r.ProviderARN] = r.Outcome
				if want := tt.detail[r.ProviderARN]; !strings.Contains(r.Detail, want) {
					t.Errorf("%q detail %q, want %q", r.ProviderARN, r.Detail, want)
				}
				if r.ProviderARN == "" && r.AccountID != o.management {
					t.Errorf("account result for %s, want the management account %s", r.AccountID, o.management)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("outcomes %v\nwant %v", got, tt.want)
			}

			mu.Lock()
			// Accounts are opened at once: compare the roles assumed as sets
			// (the member's id is moto's random one, sorting either side of
			// the management account's).
			sort.Strings(assumed)
			want := slices.Sorted(slices.Values(tt.assumed))
			if !slices.Equal(assumed, want) {
				t.Errorf("AssumeRole calls %v, want %v", assumed, want)
			}
			mu.Unlock()

			if len(rep.Accounts) != 3 {
				t.Fatalf("account sections %+v, want the management, administrator and member accounts", rep.Accounts)
			}
			for _, a := range rep.Accounts {
				switch {
				case a.AccountID == o.management && tt.skipped:
					if a.RoleARN != "" || a.Error != "" || a.Counts[drift.Skipped] != a.Checked || !strings.Contains(a.Skipped, "ORG_INCLUDE_MANAGEMENT_ACCOUNT=true") {
						t.Errorf("skipped management section %+v", a)
					}
				case a.AccountID == admin:
					if a.RoleARN != "" || a.Skipped != "" {
						t.Errorf("administrator's own section %+v, want own credentials", a)
					}
				default:
					if a.RoleARN != roleIn(a.AccountID) || a.Skipped != "" || a.Error != "" {
						t.Errorf("section %+v", a)
					}
				}
			}

			// One log line says the management account was skipped.
			var skipLines int
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var entry map[string]any
				if err := json.Unmarshal([]byte(line), &entry); err != nil {
					t.Fatalf("log line %q: %v", line, err)
				}
				if entry["msg"] == "account skipped" {
					skipLines++
					if entry["account_id"] != o.management || !strings.Contains(fmt.Sprint(entry["detail"]), "delegated administrator") {
						t.Errorf("skip log line %s", line)
					}
				}
			}
			if want := map[bool]int{true: 1}[tt.skipped && tt.request == nil]; skipLines != want {
				t.Errorf("%d account skipped log lines, want %d:\n%s", skipLines, want, logs.String())
			}

			// Nothing was written anywhere (report mode).
			for acct, arn := range arns {
				if got := o.stored(acct, arn); got != old {
					t.Errorf("report mode wrote %s: %s", arn, got)
				}
			}
		})
	}
}
