package testidp_test

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

// TestProcedure runs AWS's procedure with curl and with Go's client against a
// provider whose chain ends in an intermediate: both give its thumbprint.
func TestProcedure(t *testing.T) {
	peertest.Tool(t, "openssl")
	root, _ := testidp.NewRoot("Procedure Root")
	inter, _ := root.Intermediate("Procedure Intermediate")
	leaf, _ := inter.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	s, err := testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf, inter)}, Path: "/tenant"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := testidp.NewProcedure(t.TempDir(), root)
	if err != nil {
		t.Fatal(err)
	}
	curl := p.Curl
	for _, name := range []string{"curl", "go"} {
		t.Run(name, func(t *testing.T) {
			p.Curl = curl
			if name == "go" {
				p.Curl = ""
			} else if curl == "" {
				t.Skip("curl not installed")
			}
			var times testidp.ProcedureTimes
			tp, err := p.Thumbprint(context.Background(), s.URL(), &times)
			if err != nil {
				t.Fatal(err)
			}
			if want := testidp.Thumbprint(inter.DER); tp != want {
				t.Errorf("thumbprint %s, want the intermediate's %s", tp, want)
			}
			if times.Discovery <= 0 || times.SClient <= 0 || times.X509 <= 0 {
				t.Errorf("step times %+v", times)
			}
			if _, err := p.Thumbprint(context.Background(), s.Host()+"/nowhere", &times); err == nil {
				t.Error("a Url without a discovery document gave a thumbprint")
			}
			run, err := p.Run(context.Background(), []string{s.URL(), s.Host() + "/nowhere", s.URL()})
			if err != nil || len(run.Thumbprints) != 3 || run.Thumbprints[2] != tp || run.Errors[0] != nil || run.Errors[1] == nil || run.Took <= 0 || run.Steps.SClient <= 0 {
				t.Errorf("Run = %+v, %v", run, err)
			}
		})
	}
}
