package cli

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

func tps(s ...string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = strings.Repeat(x, 20)
	}
	return out
}

// TestPlanStage: live thumbprints first, then stored ones seen live
// recently (never dropped: the server may alternate to their chain), then
// next, then the rest; full is refused; an untrusted live thumbprint is
// written only when allowed, else withheld and the stored list kept.
func TestPlanStage(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	seenAt := func(days map[string]int) drift.LastSeen {
		out := drift.LastSeen{}
		for tp, d := range days {
			out[strings.Repeat(tp, 20)] = now.Add(-time.Duration(d) * 24 * time.Hour)
		}
		return out
	}
	tests := []struct {
		name         string
		live         []string
		stored       []string
		seen         drift.LastSeen
		next         string
		untrusted    bool // the live chain is not publicly trusted and writing it is not allowed
		want         []string
		wantChanged  bool
		wantWithheld []string
		wantErr      error
	}{
		{name: "next after live, stored after", live: tps("aa"), stored: tps("aa", "01"), next: strings.Repeat("bb", 20), want: tps("aa", "bb", "01"), wantChanged: true},
		{name: "live not yet stored is kept first", live: tps("aa"), stored: tps("01"), next: strings.Repeat("bb", 20), want: tps("aa", "bb", "01"), wantChanged: true},
		{name: "already staged", live: tps("aa"), stored: tps("aa", "bb"), next: strings.Repeat("BB", 20), want: tps("aa", "bb"), wantChanged: false},
		{name: "cut to 5 drops the oldest stored", live: tps("aa"), stored: tps("aa", "01", "02", "03", "04"), next: strings.Repeat("bb", 20), want: tps("aa", "bb", "01", "02", "03"), wantChanged: true},
		{name: "four live plus next fill the list", live: tps("a1", "a2", "a3", "a4"), stored: tps("01"), next: strings.Repeat("bb", 20), want: tps("a1", "a2", "a3", "a4", "bb"), wantChanged: true},
		{name: "five live leave no room", live: tps("a1", "a2", "a3", "a4", "a5"), stored: nil, next: strings.Repeat("bb", 20), wantErr: ErrStageFull},
		{name: "next is one of five live", live: tps("a1", "a2", "a3", "a4", "a5"), stored: tps("a1", "a2", "a3", "a4", "a5"), next: strings.Repeat("a3", 20), want: tps("a1", "a2", "a3", "a4", "a5")},
		{name: "malformed stored entries are dropped", live: tps("aa"), stored: []string{"zz", strings.Repeat("01", 20)}, next: strings.Repeat("bb", 20), want: tps("aa", "bb", "01"), wantChanged: true},
		{name: "five alternating chains, two sampled, all five seen: no room", live: tps("a1", "a2"), stored: tps("a1", "a2", "a3", "a4", "a5"),
			seen: seenAt(map[string]int{"a1": 0, "a2": 0, "a3": 1, "a4": 2, "a5": 3}), next: strings.Repeat("bb", 20), wantErr: ErrStageFull},
		{name: "seen ones kept ahead of next, most recent first; the never seen is cut", live: tps("a1"), stored: tps("01", "a3", "a4", "02", "a2"),
			seen: seenAt(map[string]int{"a2": 1, "a3": 5, "a4": 2}), next: strings.Repeat("bb", 20), want: tps("a1", "a2", "a4", "a3", "bb"), wantChanged: true},
		{name: "untrusted: the live one not stored is withheld, the stored list kept behind next", live: tps("aa"), stored: tps("01", "02"), untrusted: true,
			next: strings.Repeat("bb", 20), want: tps("bb", "01", "02"), wantChanged: true, wantWithheld: tps("aa")},
		{name: "untrusted but already stored: it stays first", live: tps("aa"), stored: tps("01", "aa"), untrusted: true,
			next: strings.Repeat("bb", 20), want: tps("aa", "bb", "01"), wantChanged: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PlanStage(tt.live, tt.stored, tt.seen, tt.next, !tt.untrusted)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got.List, tt.want) || got.Changed != tt.wantChanged || !reflect.DeepEqual(got.Withheld, tt.wantWithheld) {
				t.Fatalf("PlanStage = %v changed %v withheld %v, want %v changed %v withheld %v", got.List, got.Changed, got.Withheld, tt.want, tt.wantChanged, tt.wantWithheld)
			}
			if tt.wantErr != nil {
				return
			}
			for _, l := range tt.live {
				if !tt.untrusted && !slices.Contains(got.List, strings.ToLower(l)) {
					t.Fatalf("live %s dropped from %v", l, got.List)
				}
			}
			for tp := range tt.seen {
				if slices.Contains(tt.stored, tp) && !slices.Contains(got.List, tp) {
					t.Fatalf("%s, seen live recently, dropped from %v", tp, got.List)
				}
			}
		})
	}
}

func TestPEMThumbprintIsTheLastCertificateAsOpenSSLSeesIt(t *testing.T) {
	root, _ := testidp.NewRoot("Stage Next Root")
	inter, _ := root.Intermediate("Stage Next Intermediate")
	leaf, _ := inter.Leaf([]string{"idp.example"}, time.Now(), time.Now().Add(time.Hour))
	chainPEM := append(append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.DER}), inter.PEM()...), root.PEM()...)
	got, err := PEMThumbprint(chainPEM)
	if err != nil {
		t.Fatal(err)
	}
	if want := testidp.Thumbprint(root.DER); got != want {
		t.Fatalf("PEMThumbprint = %s, want the last certificate's %s", got, want)
	}
	if testidp.HaveOpenSSL() {
		oracle, err := testidp.OpenSSLFingerprint(context.Background(), root.PEM())
		if err != nil || oracle != got {
			t.Fatalf("openssl says %s (%v), PEMThumbprint %s", oracle, err, got)
		}
	}
	for name, data := range map[string][]byte{
		"empty":          nil,
		"not PEM":        []byte("hello"),
		"a key, no cert": []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
		"bad DER":        []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
	} {
		if _, err := PEMThumbprint(data); err == nil {
			t.Errorf("%s: PEMThumbprint accepted it", name)
		}
	}
}

func TestStageUsageErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	arn := "arn:aws:iam::123456789012:oidc-provider/idp.example"
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--thumbprint", strings.Repeat("aa", 20)}, "--provider is required"},
		{[]string{"--provider", "arn:aws:iam::123456789012:role/x", "--thumbprint", strings.Repeat("aa", 20)}, `"arn:aws:iam::123456789012:role/x": not an IAM OIDC provider ARN`},
		{[]string{"--provider", arn}, "exactly one of --thumbprint and --pem"},
		{[]string{"--provider", arn, "--thumbprint", strings.Repeat("aa", 20), "--pem", garbage}, "exactly one of --thumbprint and --pem"},
		{[]string{"--provider", arn, "--thumbprint", "abc"}, `--thumbprint "abc": want 40 hex`},
		{[]string{"--provider", arn, "--thumbprint", strings.Repeat("zz", 20)}, "want 40 hex"},
		{[]string{"--provider", arn, "--pem", filepath.Join(dir, "missing.pem")}, "missing.pem"},
		{[]string{"--provider", arn, "--pem", garbage}, "garbage.pem: no PEM CERTIFICATE block"},
		{[]string{"--provider", arn, "--thumbprint", strings.Repeat("aa", 20), "extra"}, `unexpected argument "extra"`},
		{[]string{"--provider", arn, "--thumbprint", strings.Repeat("aa", 20), "--state-table", "a"}, `--state-table "a": want a DynamoDB table name`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut strings.Builder
			if code := RunStage(context.Background(), tt.args, &out, &errOut); code != ExitUsage {
				t.Fatalf("exit %d, want %d; stderr %q", code, ExitUsage, errOut.String())
			}
			if !strings.Contains(errOut.String(), tt.want) {
				t.Fatalf("stderr %q lacks %q", errOut.String(), tt.want)
			}
			if out.Len() != 0 {
				t.Fatalf("stdout %q, want nothing", out.String())
			}
		})
	}
}

// TestStageCommand runs the built CLI against moto_server and a local
// identity provider: dry run writes nothing, --thumbprint and --pem stage the
// next thumbprint behind the live one, an unknown provider is a usage error.
func TestStageCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI and runs moto_server")
	}
	ctx := context.Background()
	m := peertest.Moto(t)
	iamc := iam.NewFromConfig(m.Config())
	root, _ := testidp.NewRoot("Stage Root")
	inter, _ := root.Intermediate("Stage Intermediate")
	leaf, _ := inter.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	s, err := testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf, inter)}, Path: "/stage"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	live := testidp.Thumbprint(inter.DER)
	certFile := filepath.Join(t.TempDir(), "roots.pem")
	if err := os.WriteFile(certFile, root.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	old := strings.Repeat("0b", 20)
	outARN, err := testpeer.CreateProvider(ctx, iamc, &iam.CreateOpenIDConnectProviderInput{Url: aws.String("https://" + s.URL()), ThumbprintList: []string{live, old}})
	if err != nil {
		t.Fatal(err)
	}
	arn := outARN
	stored := func() string {
		o, err := iamc.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(o.ThumbprintList, " ")
	}
	bin := tpBuildCLI(t)
	env := append(m.Env(), "SSL_CERT_FILE="+certFile, "STATE_TABLE=")

	next := strings.Repeat("ce", 20)
	dry, _ := tpRun(t, bin, env, ExitOK, "stage", "--provider", arn, "--thumbprint", strings.ToUpper(next), "--dry-run")
	if !strings.Contains(dry, "new list  "+live+" "+next+" "+old) || !strings.Contains(dry, "dry run: nothing written") {
		t.Fatalf("dry run output:\n%s", dry)
	}
	if got := stored(); got != live+" "+old {
		t.Fatalf("dry run wrote: %s", got)
	}
	tpRun(t, bin, env, ExitOK, "stage", "--provider", arn, "--thumbprint", next)
	if got := stored(); got != live+" "+next+" "+old {
		t.Fatalf("stored after stage = %s, want live, staged, old", got)
	}
	again, _ := tpRun(t, bin, env, ExitOK, "stage", "--provider", arn, "--thumbprint", next)
	if !strings.Contains(again, "already staged") {
		t.Fatalf("second stage:\n%s", again)
	}

	nextRoot, _ := testidp.NewRoot("Stage Next Root")
	pemFile := filepath.Join(t.TempDir(), "next.pem")
	if err := os.WriteFile(pemFile, nextRoot.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	tpRun(t, bin, env, ExitOK, "stage", "--provider", arn, "--pem", pemFile)
	pemTP := testidp.Thumbprint(nextRoot.DER)
	if got := stored(); got != live+" "+pemTP+" "+next+" "+old {
		t.Fatalf("stored after --pem = %s", got)
	}

	missing := strings.Replace(arn, "/stage", "/nowhere", 1)
	_, errOut := tpRun(t, bin, env, ExitUsage, "stage", "--provider", missing, "--thumbprint", next)
	if !strings.Contains(errOut, missing) || !strings.Contains(errOut, "no such OIDC provider") {
		t.Fatalf("unknown provider stderr: %q", errOut)
	}
}

// TestStageSeenAndUntrusted runs the built CLI against moto_server (IAM and
// the state table) and local identity providers:
//   - an IdP alternating 5 chains, all 5 stored and seen live per the state:
//     this probe samples only some, yet stage refuses (exit 3), dry run or
//     not, rather than drop one; nothing is written;
//   - a private (untrusted) chain: stage stages the thumbprint beside the
//     stored list, says the live chain is not publicly trusted and does not
//     write its thumbprint; with --allow-unverified, or the provider's
//     allow-unverified tag, it does.
func TestStageSeenAndUntrusted(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI and runs moto_server")
	}
	ctx := context.Background()
	const table = "stage-state"
	sw := newStageWorld(t, table, "Stage Seen Root")
	st, root, bin, env, create := sw.st, sw.root, sw.bin, append(sw.env, "STATE_TABLE=", "PROBE_HANDSHAKES=2"), sw.create
	next := strings.Repeat("ce", 20)

	t.Run("five alternating chains seen live: no room", func(t *testing.T) {
		var chains []tls.Certificate
		var all []string
		for i := range 5 {
			ca, _ := root.Intermediate(fmt.Sprintf("Alternating Intermediate %d", i))
			leaf, _ := ca.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
			chains = append(chains, testidp.Chain(leaf, ca))
			all = append(all, testidp.Thumbprint(ca.DER))
		}
		s, err := testidp.Start(testidp.ServerOptions{Chains: chains, Path: "/alternating"})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		arn, stored := create(s.URL(), all)
		if err := st.RecordSeen(ctx, arn, all, time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"--dry-run"}, {}} {
			out, errOut := tpRun(t, bin, env, ExitProblems, append([]string{"stage", "--provider", arn, "--thumbprint", next, "--state-table", table}, args...)...)
			if !strings.Contains(errOut, "no room for the next thumbprint") || !strings.Contains(errOut, "seen live recently") || strings.Contains(out, "new list") {
				t.Fatalf("stage %v: stdout %q stderr %q; want a refusal naming the thumbprints seen live", args, out, errOut)
			}
		}
		if got := stored(); got != strings.Join(all, " ") {
			t.Fatalf("stored %s, want the five untouched", got)
		}
	})

	t.Run("untrusted live chain", func(t *testing.T) {
		private, _ := testidp.NewRoot("Stage Private Root")
		leaf, _ := private.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		s, err := testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{testidp.Chain(leaf, private)}, Path: "/private", Paths: []string{"/private-flag", "/private-tag"}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		live, old := testidp.Thumbprint(private.DER), strings.Repeat("0b", 20)

		arn, stored := create(s.URL(), []string{old})
		out, _ := tpRun(t, bin, env, ExitOK, "stage", "--provider", arn, "--thumbprint", next)
		if !strings.Contains(out, "not publicly trusted") || !strings.Contains(out, live+" is not written") || !strings.Contains(out, "--allow-unverified") {
			t.Fatalf("stage output does not say the live chain is untrusted and withheld:\n%s", out)
		}
		if got := stored(); got != next+" "+old {
			t.Fatalf("stored %s, want the staged thumbprint beside the stored list, the untrusted live one not written", got)
		}

		flagARN, storedFlag := create(s.Host()+"/private-flag", []string{old})
		tpRun(t, bin, env, ExitOK, "stage", "--provider", flagARN, "--thumbprint", next, "--allow-unverified")
		tagARN, storedTag := create(s.Host()+"/private-tag", []string{old}, iamtypes.Tag{Key: aws.String(drift.TagAllowUnverified), Value: aws.String("true")})
		tpRun(t, bin, env, ExitOK, "stage", "--provider", tagARN, "--thumbprint", next)
		for name, got := range map[string]string{"--allow-unverified": storedFlag(), "tag": storedTag()} {
			if got != live+" "+next+" "+old {
				t.Errorf("with %s stored %s, want live, staged, old", name, got)
			}
		}
	})
}
