package rehearsal

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

// Files of the repository the rehearsal deploys.
const (
	CentralTemplate = "template.yaml"
	MemberTemplate  = "member-role.yaml"
	codeBucket      = "rehearsal-sam-artifacts"
	codeKey         = "drift-check/bootstrap.zip"
	stackName       = "thumbprint-drift"
	memberStackName = "thumbprint-drift-member"
	// invokeTimeout is the remaining time the function is given.
	invokeTimeout = 2 * time.Minute
)

// NeedsNoPermission are actions IAM never refuses, so no policy names them.
var NeedsNoPermission = map[string]string{
	"sts:GetCallerIdentity": "no permission is required to perform this operation (STS API reference)",
}

// Options of a rehearsal.
type Options struct {
	// Root is the module root (template.yaml, member-role.yaml, scripts/).
	Root string
	// Sets to run; nil runs Matrix.
	Sets []Set
	// Out gets one line per step of each set; nil discards them.
	Out io.Writer
	// Verbose also writes the function's log lines to Out.
	Verbose bool
}

// Result is what one set's rehearsal found.
type Result struct {
	Set Set
	// Resources are the logical ids of the transformed template, and
	// Created those moto lists for the stack (it lists some resource types
	// without their logical id).
	Resources, Created []string
	// Stack is the central stack as created.
	Stack *Stack
	// Outcomes counts the function's report by outcome.
	Outcomes map[string]int
	// Calls are the function's AWS calls, each checked.
	Calls []CheckedCall
	// Policies are the statements of the policies (not the trust policy) of
	// each role that made calls, by Role of CheckedCall ("function", "member").
	Policies map[string][]Statement
	// Deleted is the final status of each stack deleted, by stack name.
	Deleted map[string]string
	// TableRetained: the state table outlived its stack.
	TableRetained bool
}

// CheckedCall is one AWS call of the function and the verdict of the
// policies of the role that made it.
type CheckedCall struct {
	testpeer.AWSCall
	// Role says whose policies were read: "function" (the stack's role) or
	// "member" (member-role.yaml's).
	Role    string
	Allowed bool
	// Why names the statement that allowed it, or why not.
	Why string
}

// Denied are the calls of r not allowed.
func (r *Result) Denied() []CheckedCall {
	var out []CheckedCall
	for _, c := range r.Calls {
		if !c.Allowed {
			out = append(out, c)
		}
	}
	return out
}

// Actions are the distinct "service:Action" of the calls made as role
// ("function" or "member"), sorted.
func (r *Result) Actions(role string) []string {
	set := map[string]bool{}
	for _, c := range r.Calls {
		if c.Role == role {
			set[c.IAMAction()] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// Run rehearses each set in turn against one moto_server (reset between
// sets) and stops at the first set that fails. It returns the results of the
// sets that ran. The error wraps testpeer.ErrMissing when moto_server,
// python3 or aws-sam-translator is missing.
func Run(ctx context.Context, opts Options) ([]*Result, error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	sets := opts.Sets
	if sets == nil {
		sets = Matrix
	}
	dir, err := os.MkdirTemp("", "thumbprint-drift-rehearsal-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	r := &rehearsal{opts: opts, dir: dir}
	bin := filepath.Join(dir, "bootstrap")
	if err := testpeer.BuildFunction(ctx, opts.Root, bin, "-trimpath"); err != nil {
		return nil, err
	}
	r.bin = bin
	if r.zip, err = zipBootstrap(bin); err != nil {
		return nil, err
	}
	if r.moto, err = testpeer.StartMoto(ctx); err != nil {
		return nil, err
	}
	defer r.moto.Close()
	if r.proxy, err = testpeer.StartAWSProxy(r.moto, nil); err != nil {
		return nil, err
	}
	defer r.proxy.Close()
	if r.idps, err = startIDPs(); err != nil {
		return nil, err
	}
	defer r.idps.close()

	var results []*Result
	for _, s := range sets {
		if err := r.moto.Reset(ctx); err != nil {
			return results, err
		}
		res, err := r.set(ctx, s)
		if res != nil {
			results = append(results, res)
		}
		if err != nil {
			return results, fmt.Errorf("set %s: %w", s.Name, err)
		}
	}
	return results, nil
}

type rehearsal struct {
	opts  Options
	dir   string
	bin   string
	zip   []byte
	moto  *testpeer.Moto
	proxy *testpeer.AWSProxy
	idps  *idps
}

// cfg is an SDK configuration for moto in region, acting in account ("" the default).
func (r *rehearsal) cfg(region, account string) aws.Config {
	cfg := r.moto.Config()
	cfg.Region = region
	if account != "" {
		cfg.APIOptions = append(cfg.APIOptions, testpeer.AsAccount(account))
	}
	return cfg
}

func (r *rehearsal) say(format string, args ...any) {
	fmt.Fprintf(r.opts.Out, format+"\n", args...)
}

// set rehearses one parameter set on an empty moto.
func (r *rehearsal) set(ctx context.Context, s Set) (*Result, error) {
	res := &Result{Set: s, Deleted: map[string]string{}, Policies: map[string][]Statement{}}
	region := s.region()
	cfg := r.cfg(region, "")
	r.say("== %s (%s)", s.Name, describeParams(s))

	// What the user has before deploying: the code uploaded (sam package), an
	// organisation with a member account for organisation sets, the bus and
	// Security Hub the parameters name, and OIDC providers.
	if err := PutObject(ctx, cfg, codeBucket, codeKey, r.zip); err != nil {
		return nil, err
	}
	memberRole := s.memberRoleName()
	var member, orgID string
	if memberRole != "" {
		ids, err := r.moto.CreateOrganization(ctx, 1, 1)
		if err != nil {
			return nil, err
		}
		member = ids[0]
		org, err := organizations.NewFromConfig(cfg).DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{})
		if err != nil {
			return nil, fmt.Errorf("describe organization: %w", err)
		}
		orgID = aws.ToString(org.Organization.Id)
	}
	params := map[string]string{}
	for k, v := range s.Params {
		v = strings.NewReplacer("{member}", member, "{org}", orgID, "{account}", testpeer.AccountID).Replace(v)
		params[k] = v
	}
	if bus := params["EventBusName"]; bus != "" && bus != "default" {
		name := bus[strings.LastIndex(bus, "/")+1:]
		if _, err := eventbridge.NewFromConfig(cfg).CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(name)}); err != nil {
			return nil, fmt.Errorf("create event bus %s: %w", name, err)
		}
	}
	if params["SecurityHub"] == "true" {
		for _, acct := range slices.Compact([]string{"", member}) {
			if _, err := securityhub.NewFromConfig(r.cfg(region, acct)).EnableSecurityHub(ctx, &securityhub.EnableSecurityHubInput{}); err != nil {
				return nil, fmt.Errorf("enable Security Hub in account %q: %w", acct, err)
			}
		}
	}
	provs := r.idps.providers(member != "")
	var news []testpeer.NewProvider
	for _, p := range provs {
		acct := testpeer.AccountID
		if p.inMember {
			acct = member
		}
		news = append(news, testpeer.NewProvider{Account: acct, URL: p.url, Thumbprints: []string{p.stored}})
	}
	if _, err := r.moto.CreateProviders(ctx, news, 2); err != nil {
		return nil, err
	}

	// Transformed, as sam deploy transforms it.
	body, err := Transform(ctx, r.opts.Root, CentralTemplate, "s3://"+codeBucket+"/"+codeKey, params)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Resources map[string]any
		Outputs   map[string]struct{ Condition string }
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("transformed %s: %w", CentralTemplate, err)
	}
	res.Resources = slices.Sorted(maps.Keys(doc.Resources))
	r.say("  transformed: %d resources", len(res.Resources))

	// Created.
	cfn := cloudformation.NewFromConfig(cfg)
	stack, err := CreateStack(ctx, cfn, stackName, body, params)
	res.Stack = stack
	if err != nil {
		return res, err
	}
	res.Created = slices.Sorted(maps.Keys(stack.Resources))
	if err := r.checkOutputs(stack, doc.Outputs); err != nil {
		return res, err
	}
	r.say("  created: %s; resources moto lists by logical id: %s; outputs %s", stack.Status, strings.Join(res.Created, " "), strings.Join(slices.Sorted(maps.Keys(stack.Outputs)), " "))

	var memberStack *Stack
	if member != "" {
		mparams := map[string]string{"CentralFunctionRoleArn": stack.Outputs["DriftCheckFunctionRoleArn"], "RoleName": memberRole}
		if v := params["AssumeRoleExternalId"]; v != "" {
			mparams["ExternalId"] = v
		}
		if v := params["SecurityHub"]; v != "" {
			mparams["SecurityHub"] = v
		}
		if v := stack.Outputs["ProviderChangeBusArn"]; v != "" {
			mparams["CentralEventBusArn"] = v
		}
		mbody, err := Transform(ctx, r.opts.Root, MemberTemplate, "", nil)
		if err != nil {
			return res, err
		}
		mcfn := cloudformation.NewFromConfig(r.cfg(region, member))
		if memberStack, err = CreateStack(ctx, mcfn, memberStackName, mbody, mparams); err != nil {
			return res, fmt.Errorf("member account %s: %w", member, err)
		}
		r.say("  member account %s: %s created %s, role %s", member, MemberTemplate, memberStack.Status, memberStack.Outputs["MemberRoleArn"])
	}

	// The function ran.
	if err := r.runFunction(ctx, s, res, stack, provs, member); err != nil {
		return res, err
	}

	// Deleted; the state table stays.
	table := stack.Physical("StateTable")
	if memberStack != nil {
		st, err := DeleteStack(ctx, cloudformation.NewFromConfig(r.cfg(region, member)), memberStack)
		res.Deleted[memberStackName] = st
		if err != nil {
			return res, err
		}
	}
	st, err := DeleteStack(ctx, cfn, stack)
	res.Deleted[stackName] = st
	if err != nil {
		return res, err
	}
	if _, err := dynamodb.NewFromConfig(cfg).DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}); err != nil {
		return res, fmt.Errorf("state table %s after the stack was deleted (DeletionPolicy: Retain): %w", table, err)
	}
	res.TableRetained = true
	deleted := []string{}
	for _, n := range slices.Sorted(maps.Keys(res.Deleted)) {
		deleted = append(deleted, n+" "+res.Deleted[n])
	}
	r.say("  deleted: %s; state table %s retained", strings.Join(deleted, ", "), table)
	return res, nil
}

func describeParams(s Set) string {
	if len(s.Params) == 0 {
		return "every parameter at its default"
	}
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(s.Params)) {
		kv = append(kv, k+"="+s.Params[k])
	}
	if s.Region != "" {
		kv = append(kv, "region "+s.Region)
	}
	return strings.Join(kv, " ")
}

// checkOutputs: the stack's outputs are the ones README's Deploy section
// documents: each output is documented, and each documented output the
// template declares without a Condition is there.
func (r *rehearsal) checkOutputs(stack *Stack, declared map[string]struct{ Condition string }) error {
	readme, err := os.ReadFile(filepath.Join(r.opts.Root, "README.md"))
	if err != nil {
		return err
	}
	documented := DocumentedOutputs(readme)
	if len(documented) == 0 {
		return errors.New("README.md documents no outputs (a line starting with \"Outputs:\" in Deploy)")
	}
	for k := range stack.Outputs {
		if !slices.Contains(documented, k) {
			return fmt.Errorf("output %s is not documented in README.md's Deploy section", k)
		}
	}
	for _, k := range documented {
		d, ok := declared[k]
		if ok && d.Condition == "" && stack.Outputs[k] == "" {
			return fmt.Errorf("output %s, documented and unconditional, is missing from the stack", k)
		}
		if !ok {
			return fmt.Errorf("README.md documents output %s, which the template does not declare", k)
		}
	}
	return nil
}

// DocumentedOutputs are the output keys README's Deploy section lists: the
// backquoted names of the paragraph that starts with "Outputs:".
func DocumentedOutputs(readme []byte) []string {
	var out []string
	for para := range strings.SplitSeq(string(readme), "\n\n") {
		_, rest, ok := strings.Cut(para, "Outputs:")
		if !ok {
			continue
		}
		for i, part := range strings.Split(rest, "`") {
			if i%2 == 1 && part != "" && !strings.ContainsAny(part, " :=") {
				out = append(out, part)
			}
		}
	}
	return out
}

// report is the part of the function's report the rehearsal reads.
type report struct {
	ResultsOmitted int `json:"results_omitted"`
	Results        []struct {
		AccountID   string `json:"account_id"`
		ProviderARN string `json:"provider_arn"`
		URL         string `json:"url"`
		Outcome     string `json:"outcome"`
	} `json:"results"`
}

// runFunction runs the real function binary with the environment and the
// role moto holds for the stack's function, hands it one scheduled event of
// the stack's schedule rule, and checks its outcomes and every call it made.
func (r *rehearsal) runFunction(ctx context.Context, s Set, res *Result, stack *Stack, provs []provider, member string) error {
	region := s.region()
	cfg := r.cfg(region, "")
	fc, err := GetFunctionConfiguration(ctx, cfg, stack.Physical("DriftCheckFunction"))
	if err != nil {
		return err
	}
	// The schedule rule of the stack, targeting the stack's function, or,
	// sharded, its state machine (the function's rule disabled).
	eb := eventbridge.NewFromConfig(cfg)
	rule, err := eb.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String(stack.Physical("DriftCheckFunctionSchedule"))})
	if err != nil {
		return fmt.Errorf("schedule rule: %w", err)
	}
	targets, err := eb.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: rule.Name})
	if err != nil || len(targets.Targets) != 1 || aws.ToString(targets.Targets[0].Arn) != fc.FunctionArn {
		return fmt.Errorf("schedule rule %s targets %v (%v), want the function %s", aws.ToString(rule.Name), targets, err, fc.FunctionArn)
	}
	sharded := s.Params["ShardSize"] != "" && s.Params["ShardSize"] != "0"
	if err := r.checkSchedule(ctx, eb, stack, rule, sharded); err != nil {
		return err
	}
	// As Lambda runs it: the execution role's credentials, session named after the function.
	creds, err := sts.NewFromConfig(cfg).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(fc.Role), RoleSessionName: aws.String(fc.FunctionName)})
	if err != nil {
		return fmt.Errorf("assume the function's role %s: %w", fc.Role, err)
	}
	r.proxy.Learn(aws.ToString(creds.Credentials.AccessKeyId), fc.Role)
	trust, err := TrustStoreFor(r.dir, r.idps.trustedRoot)
	if err != nil {
		return err
	}
	vars := append(trust,
		"AWS_ENDPOINT_URL="+r.proxy.URL,
		"AWS_REGION="+region, "AWS_DEFAULT_REGION="+region,
		"AWS_ACCESS_KEY_ID="+aws.ToString(creds.Credentials.AccessKeyId),
		"AWS_SECRET_ACCESS_KEY="+aws.ToString(creds.Credentials.SecretAccessKey),
		"AWS_SESSION_TOKEN="+aws.ToString(creds.Credentials.SessionToken),
		"AWS_LAMBDA_FUNCTION_NAME="+fc.FunctionName,
		fmt.Sprintf("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=%d", fc.MemorySize),
	)
	for _, k := range slices.Sorted(maps.Keys(fc.Environment.Variables)) {
		vars = append(vars, k+"="+fc.Environment.Variables[k])
	}
	env, err := testpeer.FunctionEnv(r.moto, r.dir, vars...)
	if err != nil {
		return err
	}
	event, err := scheduledEvent(filepath.Join(r.opts.Root, "events", "scheduled.json"), aws.ToString(rule.Arn), region)
	if err != nil {
		return err
	}
	r.proxy.Record()
	var response []byte
	if sharded {
		response, err = r.runShardSteps(ctx, env, stack)
	} else {
		var m testpeer.Measured
		m, err = testpeer.InvokeOnce(ctx, r.bin, r.dir, env, event, 30*time.Second, invokeTimeout)
		if r.opts.Verbose || err != nil || m.Error != nil {
			r.say("  function log:\n%s", indent(m.Output))
		}
		if err == nil && m.Error != nil {
			err = fmt.Errorf("function returned an error (%s): %s", m.Error.ErrorType, m.ErrorMessage())
		}
		response = m.Response
	}
	if err != nil {
		return fmt.Errorf("function: %w", err)
	}
	var rep report
	if err := json.Unmarshal(response, &rep); err != nil {
		return fmt.Errorf("function response is not a report: %w: %s", err, response)
	}
	res.Outcomes = map[string]int{}
	got := map[string]string{}
	for _, x := range rep.Results {
		res.Outcomes[x.Outcome]++
		got[strings.TrimPrefix(x.URL, "https://")] = x.Outcome
	}
	var wrong []string
	for _, p := range provs {
		want := p.outcome
		if want == "updated" && s.Params["DriftMode"] == "alert" {
			want = "drift"
		}
		if !p.inMember && s.Params["AccountRoleArns"] != "" {
			want = "" // only the listed accounts are checked
		}
		if sharded && want == "in-sync" && got[p.url] == "" && rep.ResultsOmitted > 0 {
			continue // a sharded run's report counts quiet in-sync results only
		}
		if got[p.url] != want {
			wrong = append(wrong, fmt.Sprintf("%s (%s): %q, want %q", p.url, p.story, got[p.url], want))
		}
	}
	if len(wrong) > 0 {
		return fmt.Errorf("function ran, outcomes wrong: %s", strings.Join(wrong, "; "))
	}
	r.say("  function ran: %s", FormatCounts(res.Outcomes))

	calls := r.proxy.Calls()
	if res.Calls, err = r.check(ctx, res, calls, fc.Role); err != nil {
		return err
	}
	if err := r.usedStack(ctx, cfg, s, res, stack, member); err != nil {
		return err
	}
	denied := res.Denied()
	r.say("  calls allowed: %d of %d (%s)", len(res.Calls)-len(denied), len(res.Calls), strings.Join(distinctActions(res.Calls), " "))
	if len(denied) > 0 {
		var lines []string
		for _, c := range denied {
			lines = append(lines, fmt.Sprintf("%s on %s as %s: %s", c.IAMAction(), strings.Join(c.Resources, ","), c.Principal, c.Why))
		}
		return fmt.Errorf("calls the stack's policies do not allow:\n  %s", strings.Join(lines, "\n  "))
	}
	return nil
}

// usedStack: the function wrote to the stack's own state table and published
// to its topic, and sent to the bus and Security Hub the parameters name
// (Security Hub when a result is a problem: findings are created on problems).
func (r *rehearsal) usedStack(ctx context.Context, cfg aws.Config, s Set, res *Result, stack *Stack, member string) error {
	table := stack.Physical("StateTable")
	scan, err := dynamodb.NewFromConfig(cfg).Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table), Select: "COUNT"})
	if err != nil || scan.Count == 0 {
		return fmt.Errorf("the stack's state table %s holds no alert state after the run (%v)", table, err)
	}
	want := map[string]string{"sns:Publish": stack.Outputs["AlertTopicArn"]}
	if s.Params["EventBusName"] != "" {
		want["events:PutEvents"] = ""
	}
	// Findings are created on problems: an applied alone imports none.
	if s.Params["SecurityHub"] == "true" && res.Outcomes["drift"]+res.Outcomes["probe-failed"]+res.Outcomes["update-failed"]+res.Outcomes["expiring"]+res.Outcomes["account-failed"] > 0 {
		want["securityhub:BatchImportFindings"] = ""
	}
	for action, resource := range want {
		found := false
		for _, c := range res.Calls {
			if c.IAMAction() == action && (resource == "" || slices.Contains(c.Resources, resource)) {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("the function made no %s call %s", action, resource)
		}
	}
	// A member account's findings are imported there, through its member role.
	if member != "" && s.Params["SecurityHub"] == "true" {
		product := "arn:aws:securityhub:" + s.region() + ":" + member + ":product/" + member + "/default"
		if !slices.ContainsFunc(res.Calls, func(c CheckedCall) bool {
			return c.Role == "member" && c.IAMAction() == "securityhub:BatchImportFindings" && slices.Contains(c.Resources, product)
		}) {
			return fmt.Errorf("the member account's problem imported no finding into %s through the member role", product)
		}
	}
	return nil
}

// check judges each call by the policies of the role that signed it: the
// stack's function role, or the member role it assumed. sts:AssumeRole must
// also be admitted by the assumed role's trust policy (principal and action).
func (r *rehearsal) check(ctx context.Context, res *Result, calls []testpeer.AWSCall, functionRole string) ([]CheckedCall, error) {
	policies := map[string][]Statement{} // by role ARN
	trusts := map[string][]Statement{}
	load := func(roleARN string) error {
		if _, ok := policies[roleARN]; ok {
			return nil
		}
		name := roleARN[strings.LastIndex(roleARN, "/")+1:]
		acct := accountOf(roleARN)
		var opts []func(*iam.Options)
		if acct != testpeer.AccountID {
			opts = append(opts, func(o *iam.Options) { o.APIOptions = append(o.APIOptions, testpeer.AsAccount(acct)) })
		}
		docs, err := RolePolicies(ctx, r.opts.Root, iam.NewFromConfig(r.moto.Config()), name, opts...)
		if err != nil {
			return err
		}
		for n, st := range docs {
			if n == TrustPolicy {
				trusts[roleARN] = st
			} else {
				policies[roleARN] = append(policies[roleARN], st...)
			}
		}
		if policies[roleARN] == nil {
			policies[roleARN] = []Statement{}
		}
		return nil
	}
	var out []CheckedCall
	for _, c := range calls {
		cc := CheckedCall{AWSCall: c, Role: "member"}
		if c.Principal == functionRole {
			cc.Role = "function"
		}
		switch {
		case c.Principal == "":
			cc.Why = "signed with credentials of no known role"
		case NeedsNoPermission[c.IAMAction()] != "":
			cc.Allowed, cc.Why = true, NeedsNoPermission[c.IAMAction()]
		default:
			if err := load(c.Principal); err != nil {
				// moto hands out credentials for a role that does not exist;
				// IAM refuses to assume it.
				cc.Why = "signed as " + c.Principal + ", whose policies cannot be read: " + err.Error()
				out = append(out, cc)
				continue
			}
			res.Policies[cc.Role] = policies[c.Principal]
			cc.Allowed = true
			for _, res := range c.Resources {
				ok, why := Allows(policies[c.Principal], c.IAMAction(), res)
				cc.Why = why
				if !ok {
					cc.Allowed, cc.Why = false, res+": "+why
					break
				}
				if c.IAMAction() == "sts:AssumeRole" {
					if err := load(res); err != nil {
						cc.Allowed, cc.Why = false, "the role to assume: "+err.Error()
						break
					}
					if !trustsPrincipal(trusts[res], c.Principal) {
						cc.Allowed, cc.Why = false, res+"'s trust policy does not admit "+c.Principal
						break
					}
				}
			}
		}
		out = append(out, cc)
	}
	return out, nil
}

// trustsPrincipal: some Allow statement of a trust policy admits principal
// (a role ARN, its account's root, or "*") to sts:AssumeRole. Conditions are
// not evaluated.
func trustsPrincipal(trust []Statement, principal string) bool {
	root := "arn:aws:iam::" + accountOf(principal) + ":root"
	for _, s := range trust {
		if s.Effect != "Allow" || !anyMatch(s.Action, "sts:AssumeRole", true) {
			continue
		}
		for _, p := range append(s.Principal["AWS"], s.Principal["*"]...) {
			if p == principal || p == root || p == "*" || p == accountOf(principal) {
				return true
			}
		}
	}
	return false
}

func accountOf(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 5 {
		return ""
	}
	return parts[4]
}

// TrustStoreFor makes root the function process's only trusted root.
func TrustStoreFor(dir string, root *testidp.CA) ([]string, error) {
	return testpeer.TrustStore(dir, root.PEM())
}

// scheduledEvent is the sample schedule event as the stack's rule sends it.
func scheduledEvent(sample, ruleARN, region string) ([]byte, error) {
	b, err := os.ReadFile(sample)
	if err != nil {
		return nil, err
	}
	var ev map[string]any
	if err := json.Unmarshal(b, &ev); err != nil {
		return nil, fmt.Errorf("%s: %w", sample, err)
	}
	ev["resources"] = []string{ruleARN}
	ev["region"] = region
	ev["account"] = testpeer.AccountID
	ev["time"] = time.Now().UTC().Format(time.RFC3339)
	return json.Marshal(ev)
}

func zipBootstrap(bin string) ([]byte, error) {
	b, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	w, err := z.CreateHeader(&zip.FileHeader{Name: "bootstrap", Method: zip.Deflate, ExternalAttrs: 0o755 << 16})
	if err == nil {
		_, err = w.Write(b)
	}
	if err == nil {
		err = z.Close()
	}
	return buf.Bytes(), err
}

// FormatCounts is "outcome n, ..." sorted by outcome.
func FormatCounts(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func distinctActions(calls []CheckedCall) []string {
	set := map[string]bool{}
	for _, c := range calls {
		set[c.IAMAction()] = true
	}
	return slices.Sorted(maps.Keys(set))
}

func indent(b []byte) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(string(b), "\n"), "\n", "\n    ")
}
