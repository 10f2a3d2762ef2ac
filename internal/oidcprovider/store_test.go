package oidcprovider_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"

	"github.com/thumbprint-drift/thumbprint-drift/internal/oidcprovider"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

const (
	tpA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	tpB = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
	tpC = "0123456789abcdef0123456789abcdef01234567"
)

func TestStoreAgainstMoto(t *testing.T) {
	ctx := context.Background()
	m := peertest.Moto(t)
	client := iam.NewFromConfig(m.Config())
	store := oidcprovider.New(client)

	mk := func(url string, tps []string, tags map[string]string) string {
		in := &iam.CreateOpenIDConnectProviderInput{Url: aws.String(url), ThumbprintList: tps, ClientIDList: []string{"sts.amazonaws.com"}}
		for k, v := range tags {
			in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		out, err := client.CreateOpenIDConnectProvider(ctx, in)
		if err != nil {
			t.Fatalf("create %s: %v", url, err)
		}
		return aws.ToString(out.OpenIDConnectProviderArn)
	}
	arnB := mk("https://b.example.com:8443/id/ABC", []string{tpA}, nil)
	arnA := mk("https://a.example.com", []string{tpB, tpC}, map[string]string{"thumbprint-drift:mode": "alert", "team": "x"})

	arns, err := store.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(arns) != 2 || arns[0] != arnA || arns[1] != arnB {
		t.Fatalf("List = %v, want sorted [%s %s]", arns, arnA, arnB)
	}

	p, err := store.Get(ctx, arnB)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if p.URL != "b.example.com:8443/id/ABC" || p.ARN != arnB || len(p.Thumbprints) != 1 || p.Thumbprints[0] != tpA {
		t.Fatalf("Get = %+v", p)
	}
	pa, err := store.Get(ctx, arnA)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if pa.Tags["thumbprint-drift:mode"] != "alert" || pa.Tags["team"] != "x" || strings.Join(pa.Thumbprints, ",") != tpB+","+tpC {
		t.Fatalf("Get = %+v, want tags and stored order kept", pa)
	}

	if _, err := store.UpdateIfUnchanged(ctx, arnB, []string{strings.ToUpper(tpA)}, []string{tpC, tpA}); err != nil {
		t.Fatalf("UpdateIfUnchanged: %v", err)
	}
	p, _ = store.Get(ctx, arnB)
	if strings.Join(p.Thumbprints, ",") != tpC+","+tpA {
		t.Fatalf("after Update list = %v", p.Thumbprints)
	}

	// moto accepts any list; the store must refuse a bad one before sending it.
	for _, bad := range [][]string{nil, {"abc"}, {tpA, tpB, tpC, tpA + "", "x"}, {tpA, tpB, tpC, "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222", "3333333333333333333333333333333333333333"}} {
		_, err := store.UpdateIfUnchanged(ctx, arnB, []string{tpC, tpA}, bad)
		if !errors.Is(err, oidcprovider.ErrInvalidList) {
			t.Errorf("Update(%v) error = %v, want ErrInvalidList", bad, err)
		}
	}
	p, _ = store.Get(ctx, arnB)
	if strings.Join(p.Thumbprints, ",") != tpC+","+tpA {
		t.Fatalf("a refused list was written: %v", p.Thumbprints)
	}

	// Another writer's change is never overwritten: the list read just
	// before the write is not the one expected.
	cur, err := store.UpdateIfUnchanged(ctx, arnB, []string{tpA}, []string{tpB})
	if !errors.Is(err, oidcprovider.ErrChanged) || strings.Join(cur.Thumbprints, ",") != tpC+","+tpA {
		t.Fatalf("UpdateIfUnchanged over a changed list: %+v, %v; want ErrChanged and the list read", cur, err)
	}
	if p, _ = store.Get(ctx, arnB); strings.Join(p.Thumbprints, ",") != tpC+","+tpA {
		t.Fatalf("a changed list was overwritten: %v", p.Thumbprints)
	}

	missing := "arn:aws:iam::123456789012:oidc-provider/gone.example.com"
	if _, err := store.UpdateIfUnchanged(ctx, missing, nil, []string{tpA}); !errors.Is(err, oidcprovider.ErrNotFound) {
		t.Fatalf("UpdateIfUnchanged(missing) error = %v, want ErrNotFound", err)
	}
	if _, err := store.Get(ctx, missing); !errors.Is(err, oidcprovider.ErrNotFound) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Get(missing) error = %v, want ErrNotFound naming the ARN", err)
	}
}

type failingAPI struct {
	oidcprovider.API
	err error
}

func (f failingAPI) GetOpenIDConnectProvider(context.Context, *iam.GetOpenIDConnectProviderInput, ...func(*iam.Options)) (*iam.GetOpenIDConnectProviderOutput, error) {
	return &iam.GetOpenIDConnectProviderOutput{Url: aws.String("x"), ThumbprintList: []string{tpA}}, nil
}

func (f failingAPI) UpdateOpenIDConnectProviderThumbprint(context.Context, *iam.UpdateOpenIDConnectProviderThumbprintInput, ...func(*iam.Options)) (*iam.UpdateOpenIDConnectProviderThumbprintOutput, error) {
	return nil, f.err
}

func TestUpdateClassifiesErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"typed no such entity", &types.NoSuchEntityException{Message: aws.String("gone")}, oidcprovider.ErrNotFound},
		{"typed invalid input", &types.InvalidInputException{Message: aws.String("bad")}, oidcprovider.ErrInvalidInput},
		{"typed service failure", &types.ServiceFailureException{Message: aws.String("boom")}, oidcprovider.ErrServiceFailure},
		{"generic service failure code", &smithy.GenericAPIError{Code: "ServiceFailure"}, oidcprovider.ErrServiceFailure},
		{"access denied (another account's provider)", &smithy.GenericAPIError{Code: "AccessDenied"}, oidcprovider.ErrAccessDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := oidcprovider.New(failingAPI{err: tt.err})
			_, err := s.UpdateIfUnchanged(context.Background(), "arn:aws:iam::1:oidc-provider/x", []string{tpA}, []string{tpA})
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("error = %v does not keep the IAM error", err)
			}
			if !strings.Contains(err.Error(), "arn:aws:iam::1:oidc-provider/x") {
				t.Fatalf("error %q does not name the provider", err)
			}
		})
	}
}

func TestValidateList(t *testing.T) {
	tests := []struct {
		name string
		list []string
		ok   bool
	}{
		{"one", []string{tpA}, true},
		{"five mixed case", []string{tpA, tpB, tpC, "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"}, true},
		{"empty", nil, false},
		{"six", []string{tpA, tpB, tpC, "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222", "3333333333333333333333333333333333333333"}, false},
		{"39 chars", []string{tpA[:39]}, false},
		{"non hex", []string{strings.Repeat("g", 40)}, false},
		{"colons", []string{"aa:bb"}, false},
		{"duplicate ignoring case", []string{tpB, strings.ToLower(tpB)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := oidcprovider.ValidateList(tt.list)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateList(%v) = %v, want ok=%v", tt.list, err, tt.ok)
			}
		})
	}
}
