package awsclient

import (
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// TestSharedHTTPClient: every service client, and every copy of the
// configuration (organisation mode's per-account clients), uses the one
// transport Load sets.
func TestSharedHTTPClient(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	cfg, err := Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	shared, ok := cfg.HTTPClient.(*http.Client)
	if !ok {
		t.Fatalf("HTTPClient is %T, want the shared *http.Client", cfg.HTTPClient)
	}
	tr, ok := shared.Transport.(*http.Transport)
	if !ok || tr.MaxIdleConnsPerHost != MaxIdleConnsPerHost {
		t.Fatalf("transport %T %+v", shared.Transport, tr)
	}
	if c := NewHTTPClient(); c == shared || c.Transport.(*http.Transport).MaxIdleConnsPerHost != MaxIdleConnsPerHost {
		t.Errorf("NewHTTPClient %+v", c)
	}
	member := cfg.Copy()
	for name, got := range map[string]any{
		"iam":        iam.NewFromConfig(cfg).Options().HTTPClient,
		"sts":        sts.NewFromConfig(cfg).Options().HTTPClient,
		"member iam": iam.NewFromConfig(member).Options().HTTPClient,
	} {
		if got != shared {
			t.Errorf("%s client uses %T %p, want the shared client %p", name, got, got, shared)
		}
	}
}
