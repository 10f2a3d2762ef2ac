package rehearsal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// Capabilities are what `sam deploy` acknowledges for these templates.
var Capabilities = []cfntypes.Capability{cfntypes.CapabilityCapabilityIam, cfntypes.CapabilityCapabilityNamedIam, cfntypes.CapabilityCapabilityAutoExpand}

// Stack is a stack as the CloudFormation engine created it.
type Stack struct {
	Name, ID string
	Status   string
	// Outputs by key.
	Outputs map[string]string
	// Resources by logical id.
	Resources map[string]Resource
	// Unnamed are entries moto lists without a logical id: resources whose
	// model keeps none (alarms, topic and queue policies, among others) and
	// resources a false Condition left out.
	Unnamed []Resource
}

// Resource is one resource of a created stack.
type Resource struct {
	Type, PhysicalID, Status string
}

// CreateStack creates a stack from body (JSON) with params and waits until it
// leaves CREATE_IN_PROGRESS; a status other than CREATE_COMPLETE is an error
// naming the resources that failed.
func CreateStack(ctx context.Context, cfn *cloudformation.Client, name string, body []byte, params map[string]string) (*Stack, error) {
	in := &cloudformation.CreateStackInput{StackName: aws.String(name), TemplateBody: aws.String(string(body)), Capabilities: Capabilities}
	for _, k := range slices.Sorted(maps.Keys(params)) {
		in.Parameters = append(in.Parameters, cfntypes.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(params[k])})
	}
	out, err := cfn.CreateStack(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("create stack %s: %w", name, err)
	}
	s, err := waitStack(ctx, cfn, aws.ToString(out.StackId), "CREATE_IN_PROGRESS")
	if err != nil {
		return nil, fmt.Errorf("create stack %s: %w", name, err)
	}
	s.Name = name
	if err := s.readResources(ctx, cfn); err != nil {
		return nil, err
	}
	if s.Status != "CREATE_COMPLETE" {
		var failed []string
		for id, r := range s.Resources {
			if r.Status != "CREATE_COMPLETE" {
				failed = append(failed, id+" "+r.Status)
			}
		}
		for _, r := range s.Unnamed {
			if r.Status != "CREATE_COMPLETE" {
				failed = append(failed, r.Type+" "+r.Status)
			}
		}
		slices.Sort(failed)
		return s, fmt.Errorf("create stack %s: %s (%s)", name, s.Status, strings.Join(failed, ", "))
	}
	return s, nil
}

// DeleteStack deletes the stack and waits; it returns the final status
// (a deleted stack is described by its id only).
func DeleteStack(ctx context.Context, cfn *cloudformation.Client, s *Stack) (string, error) {
	if _, err := cfn.DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: aws.String(s.ID)}); err != nil {
		return "", fmt.Errorf("delete stack %s: %w", s.Name, err)
	}
	d, err := waitStack(ctx, cfn, s.ID, "DELETE_IN_PROGRESS")
	if err != nil {
		return "", fmt.Errorf("delete stack %s: %w", s.Name, err)
	}
	if d.Status != "DELETE_COMPLETE" {
		return d.Status, fmt.Errorf("delete stack %s: %s", s.Name, d.Status)
	}
	return d.Status, nil
}

func waitStack(ctx context.Context, cfn *cloudformation.Client, id, during string) (*Stack, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		out, err := cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(id)})
		if err != nil {
			return nil, err
		}
		if len(out.Stacks) != 1 {
			return nil, fmt.Errorf("describe %s: %d stacks", id, len(out.Stacks))
		}
		st := out.Stacks[0]
		if string(st.StackStatus) != during {
			s := &Stack{ID: id, Status: string(st.StackStatus), Outputs: map[string]string{}}
			for _, o := range st.Outputs {
				s.Outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
			}
			return s, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("still %s: %w", during, ctx.Err())
		case <-tick.C:
		}
	}
}

func (s *Stack) readResources(ctx context.Context, cfn *cloudformation.Client) error {
	s.Resources = map[string]Resource{}
	p := cloudformation.NewListStackResourcesPaginator(cfn, &cloudformation.ListStackResourcesInput{StackName: aws.String(s.ID)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list resources of stack %s: %w", s.Name, err)
		}
		for _, r := range page.StackResourceSummaries {
			res := Resource{Type: aws.ToString(r.ResourceType), PhysicalID: aws.ToString(r.PhysicalResourceId), Status: string(r.ResourceStatus)}
			if id := aws.ToString(r.LogicalResourceId); id != "" {
				s.Resources[id] = res
			} else {
				s.Unnamed = append(s.Unnamed, res)
			}
		}
	}
	return nil
}

// Physical is the physical id of logical id id; "" when the stack has none.
func (s *Stack) Physical(id string) string { return s.Resources[id].PhysicalID }

// RolePolicies are the statements of every inline and attached policy of
// role (a name), as the IAM backend holds them after CloudFormation resolved
// them. moto keeps an inline policy given as an object as its Python str();
// root is the module root, for the helper that reads those.
func RolePolicies(ctx context.Context, root string, c *iam.Client, role string, optFns ...func(*iam.Options)) (map[string][]Statement, error) {
	names, err := c.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(role)}, optFns...)
	if err != nil {
		return nil, fmt.Errorf("list policies of role %s: %w", role, err)
	}
	docs := map[string]string{}
	for _, n := range names.PolicyNames {
		out, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(n)}, optFns...)
		if err != nil {
			return nil, fmt.Errorf("get policy %s of role %s: %w", n, role, err)
		}
		docs[n] = aws.ToString(out.PolicyDocument)
	}
	attached, err := c.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(role)}, optFns...)
	if err != nil {
		return nil, fmt.Errorf("list attached policies of role %s: %w", role, err)
	}
	for _, a := range attached.AttachedPolicies {
		pol, err := c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: a.PolicyArn}, optFns...)
		if err != nil {
			return nil, fmt.Errorf("get policy %s: %w", aws.ToString(a.PolicyArn), err)
		}
		v, err := c.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: a.PolicyArn, VersionId: pol.Policy.DefaultVersionId}, optFns...)
		if err != nil {
			return nil, fmt.Errorf("get policy %s: %w", aws.ToString(a.PolicyArn), err)
		}
		docs[aws.ToString(a.PolicyArn)] = aws.ToString(v.PolicyVersion.Document)
	}
	trust, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(role)}, optFns...)
	if err != nil {
		return nil, fmt.Errorf("get role %s: %w", role, err)
	}
	docs[TrustPolicy] = aws.ToString(trust.Role.AssumeRolePolicyDocument)
	return parseDocs(ctx, root, docs)
}

// TrustPolicy is the key of a role's trust policy among its policies.
const TrustPolicy = "(trust policy)"

// parseDocs reads policy documents: JSON, URL-encoded JSON (as IAM returns
// them), or Python literals (as moto keeps an object).
func parseDocs(ctx context.Context, root string, docs map[string]string) (map[string][]Statement, error) {
	out := map[string][]Statement{}
	var pyNames, pyDocs []string
	for name, d := range docs {
		if u, err := url.QueryUnescape(d); err == nil && !strings.HasPrefix(strings.TrimSpace(d), "{") {
			d = u
		}
		var v any
		if err := json.Unmarshal([]byte(d), &v); err != nil {
			pyNames, pyDocs = append(pyNames, name), append(pyDocs, d)
			continue
		}
		st, err := ParsePolicy(v)
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", name, err)
		}
		out[name] = st
	}
	if len(pyDocs) > 0 {
		vals, err := PythonLiterals(ctx, root, pyDocs)
		if err != nil {
			return nil, err
		}
		for i, v := range vals {
			st, err := ParsePolicy(v)
			if err != nil {
				return nil, fmt.Errorf("policy %s: %w", pyNames[i], err)
			}
			out[pyNames[i]] = st
		}
	}
	return out, nil
}

// FunctionConfig is what Lambda holds for a function.
type FunctionConfig struct {
	FunctionName, FunctionArn, Role string
	MemorySize, Timeout             int
	Environment                     struct{ Variables map[string]string }
}

// GetFunctionConfiguration reads a function's configuration from the Lambda
// API at cfg's endpoint (a signed REST call; no Lambda client in this module).
func GetFunctionConfiguration(ctx context.Context, cfg aws.Config, name string) (*FunctionConfig, error) {
	body, err := signed(ctx, cfg, "lambda", http.MethodGet, "/2015-03-31/functions/"+url.PathEscape(name)+"/configuration", nil)
	if err != nil {
		return nil, fmt.Errorf("get configuration of function %s: %w", name, err)
	}
	var fc FunctionConfig
	if err := json.Unmarshal(body, &fc); err != nil {
		return nil, fmt.Errorf("configuration of function %s: %w", name, err)
	}
	return &fc, nil
}

// PutObject creates bucket (unless it exists) and puts body at key, as `sam
// package` uploads the code (signed REST calls, path style).
func PutObject(ctx context.Context, cfg aws.Config, bucket, key string, body []byte) error {
	var where []byte
	if cfg.Region != "us-east-1" {
		where = []byte("<CreateBucketConfiguration><LocationConstraint>" + cfg.Region + "</LocationConstraint></CreateBucketConfiguration>")
	}
	if _, err := signed(ctx, cfg, "s3", http.MethodPut, "/"+bucket, where); err != nil && !strings.Contains(err.Error(), "BucketAlreadyOwnedByYou") {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	if _, err := signed(ctx, cfg, "s3", http.MethodPut, "/"+bucket+"/"+key, body); err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}

func signedForm(ctx context.Context, cfg aws.Config, service string, body []byte) ([]byte, error) {
	return signedRequest(ctx, cfg, service, http.MethodPost, "/", body, "application/x-www-form-urlencoded")
}

func signed(ctx context.Context, cfg aws.Config, service, method, path string, body []byte) ([]byte, error) {
	return signedRequest(ctx, cfg, service, method, path, body, "")
}

func signedRequest(ctx context.Context, cfg aws.Config, service, method, path string, body []byte, contentType string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, aws.ToString(cfg.BaseEndpoint)+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hash, service, cfg.Region, time.Now()); err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	return b, nil
}

// Query calls action of a query-protocol API (CloudWatch, for one) at cfg's
// endpoint and returns the XML answer.
func Query(ctx context.Context, cfg aws.Config, service, action, version string, params map[string]string) ([]byte, error) {
	form := url.Values{"Action": {action}, "Version": {version}}
	for k, v := range params {
		form.Set(k, v)
	}
	return signedForm(ctx, cfg, service, []byte(form.Encode()))
}
