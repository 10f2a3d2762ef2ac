package drift_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testidp"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

var (
	old1 = strings.Repeat("a1", 20)
	old2 = strings.Repeat("b2", 20)
	old3 = strings.Repeat("c3", 20)
	old4 = strings.Repeat("d4", 20)
	old5 = strings.Repeat("e5", 20)
)

func TestInSyncNoWriteNoMessage(t *testing.T) {
	w := newWorld(t)
	c, tp := w.publicChain()
	s := w.idp("", c)
	arnLower := w.provider(s.URL(), []string{old1, tp}, nil)
	c2, tp2 := w.privateChain()
	s2 := w.idp("/id/UPPER", c2)
	arnUpper := w.provider(s2.URL(), []string{strings.ToUpper(tp2)}, nil)

	rep, err := w.engine().Run(context.Background(), drift.Request{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, arn := range []string{arnLower, arnUpper} {
		r := resultFor(t, rep, arn)
		if r.Outcome != drift.InSync || r.Severity != drift.SeverityNone {
			t.Errorf("%s: outcome %s severity %s, want in-sync none (%s)", arn, r.Outcome, r.Severity, r.Detail)
		}
	}
	if n := w.api.updates.Load(); n != 0 {
		t.Errorf("%d updates, want none", n)
	}
	if msgs := w.messages(); len(msgs) != 0 {
		t.Errorf("messages %+v, want none", msgs)
	}
	if rep.Counts[drift.InSync] != 2 || rep.Checked != 2 {
		t.Errorf("counts %v checked %d", rep.Counts, rep.Checked)
	}
	if got := list(w.stored(arnUpper)...); got != strings.ToUpper(tp2) {
		t.Errorf("upper-case stored list touched: %s", got)
	}
}

func TestPublicDriftRemediated(t *testing.T) {
	w := newWorld(t)
	c, tp := w.publicChain()
	s := w.idp("", c)
	arn := w.provider(s.URL(), []string{old1, old2}, nil)

	rep, err := w.engine().Run(context.Background(), drift.Request{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	r := resultFor(t, rep, arn)
	if r.Outcome != drift.Updated || r.Severity != drift.SeverityInfo || !r.PubliclyTrusted || r.BreaksAssumeRole {
		t.Fatalf("result %+v, want updated info trusted", r)
	}
	if got, want := list(w.stored(arn)...), list(tp, old1, old2); got != want {
		t.Fatalf("stored = %s, want %s", got, want)
	}
	msgs := w.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.Attr("transition") != "applied" || m.Attr("outcome") != "updated" || m.Attr("severity") != "info" || m.Attr("provider_arn") != arn {
		t.Errorf("attributes %+v", m.MessageAttributes)
	}
	if m.Subject != "thumbprint-drift: applied updated "+s.Host() {
		t.Errorf("subject %q", m.Subject)
	}
	if res := m.Results(); len(res) != 1 || res[0]["fix"] != nil && res[0]["fix"] != "" {
		t.Errorf("updated message results %v: want one, without a fix command", res)
	}
	if r.Transition != "applied" {
		t.Errorf("result transition %q, want applied", r.Transition)
	}
}

func TestFiveStoredNewFirstOldestDropped(t *testing.T) {
	w := newWorld(t)
	c, tp := w.publicChain()
	s := w.idp("", c)
	arn := w.provider(s.URL(), []string{old1, old2, old3, old4, old5}, nil)
	if _, err := w.engine().Run(context.Background(), drift.Request{}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got, want := list(w.stored(arn)...), list(tp, old1, old2, old3, old4); got != want {
		t.Fatalf("stored = %s, want %s", got, want)
	}
}

func TestUntrustedDriftAlertedNotWritten(t *testing.T) {
	w := newWorld(t)
	c, tp := w.privateChain()
	s := w.idp("/tenant", c)
	arn := w.provider(s.URL(), []string{old1}, nil)
	c2, tp2 := w.privateChain()
	s2 := w.idp("/allowed", c2)
	arnAllowed := w.provider(s2.URL(), []string{old2}, map[string]string{drift.TagAllowUnverified: "true"})

	rep, err := w.engine().Run(context.Background(), drift.Request{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	r := resultFor(t, rep, arn)
	if r.Outcome != drift.Drift || r.Severity != drift.SeverityCritical || !r.BreaksAssumeRole || r.PubliclyTrusted {
		t.Fatalf("result %+v, want drift critical breaking", r)
	}
	if got := list(w.stored(arn)...); got != old1 {
		t.Fatalf("untrusted chain written: %s", got)
	}
	if got := list(w.stored(arnAllowed)...); got != list(tp2, old2) {
		t.Fatalf("allow-unverified provider = %s, want %s", got, list(tp2, old2))
	}
	if ra := resultFor(t, rep, arnAllowed); ra.Outcome != drift.Updated {
		t.Fatalf("allow-unverified result %+v", ra)
	}

	// Two hosts, two outcomes: two messages of one provider each.
	byARN := w.sentByProvider()
	if len(byARN) != 2 || len(byARN[arn]) != 1 || len(byARN[arnAllowed]) != 1 {
		t.Fatalf("messages by provider %+v, want one each", byARN)
	}
	drifted := byARN[arn][0]
	wantFix := "aws iam update-open-id-connect-provider-thumbprint --open-id-connect-provider-arn " + arn + " --thumbprint-list " + tp + " " + old1
	if drifted.Result["fix"] != wantFix {
		t.Errorf("fix = %v\nwant %s", drifted.Result["fix"], wantFix)
	}
	body := drifted.Message.Body
	if body["severity"] != "critical" || body["outcome"] != "drift" || body["transition"] != "new" || drifted.Result["breaks_assume_role"] != true {
		t.Errorf("body %v", body)
	}
	if drifted.Result["account_id"] != "123456789012" || body["mode"] != "remediate" {
		t.Errorf("body account/mode %v", body)
	}
	if drifted.Message.Attr("severity") != "critical" || drifted.Message.Attr("provider_arn") != arn {
		t.Errorf("attributes %+v", drifted.Message.MessageAttributes)
	}
}

func TestModesAndTags(t *testing.T) {
	w := newWorld(t)
	c, tp := w.publicChain()
	s := w.idp("/default", c)
	mk := func(path string, tags map[string]string) string {
		srv := w.idp(path, c)
		return w.provider(srv.URL(), []string{old1}, tags)
	}
	def := w.provider(s.URL(), []string{old1}, nil)
	tagAlert := mk("/alert", map[string]string{drift.TagMode: "alert"})
	tagReport := mk("/report", map[string]string{drift.TagMode: "REPORT"})
	tagIgnore := mk("/ignore", map[string]string{drift.TagMode: "ignore"})
	tagBad := mk("/bad", map[string]string{drift.TagMode: "yolo"})
	tagRemediate := mk("/remediate", map[string]string{drift.TagMode: "remediate"})

	t.Run("default alert, tags override", func(t *testing.T) {
		rep, err := w.engine(withMode(config.ModeAlert)).Run(context.Background(), drift.Request{})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		want := map[string]drift.Outcome{def: drift.Drift, tagAlert: drift.Drift, tagReport: drift.Drift, tagIgnore: drift.Skipped, tagBad: drift.Drift, tagRemediate: drift.Updated}
		for arn, o := range want {
			if r := resultFor(t, rep, arn); r.Outcome != o {
				t.Errorf("%s: %s (%s), want %s", arn, r.Outcome, r.Detail, o)
			}
		}
		if r := resultFor(t, rep, tagBad); !strings.Contains(r.Detail, `tag thumbprint-drift:mode="yolo"`) {
			t.Errorf("bad tag not reported: %q", r.Detail)
		}
		if r := resultFor(t, rep, tagIgnore); r.Severity != drift.SeverityNone || len(r.LiveThumbprints) != 0 {
			t.Errorf("ignored provider probed or graded: %+v", r)
		}
		if got := list(w.stored(tagRemediate)...); got != list(tp, old1) {
			t.Errorf("remediate tag not applied: %s", got)
		}
		for _, arn := range []string{def, tagAlert, tagReport, tagBad} {
			if got := list(w.stored(arn)...); got != old1 {
				t.Errorf("%s written in alert mode: %s", arn, got)
			}
		}
		// One message each for default, alert, bad (alert default) and remediate;
		// none for report and ignore.
		got := map[string]string{}
		for arn, ss := range w.sentByProvider() {
			for _, s := range ss {
				got[arn] += s.Outcome
			}
		}
		wantMsgs := map[string]string{def: "drift", tagAlert: "drift", tagBad: "drift", tagRemediate: "updated"}
		if len(got) != len(wantMsgs) {
			t.Errorf("messages %v, want %v", got, wantMsgs)
		}
		for arn, o := range wantMsgs {
			if got[arn] != o {
				t.Errorf("message for %s = %q, want %q", arn, got[arn], o)
			}
		}
	})

	t.Run("explicit report: no writes, no messages, tags cannot raise it", func(t *testing.T) {
		before := w.api.updates.Load()
		rep, err := w.engine().Run(context.Background(), drift.Request{Mode: config.ModeReport})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if rep.Mode != config.ModeReport {
			t.Errorf("report mode %s", rep.Mode)
		}
		if n := w.api.updates.Load() - before; n != 0 {
			t.Errorf("%d writes in report mode", n)
		}
		if msgs := w.messages(); len(msgs) != 0 {
			t.Errorf("%d messages in report mode", len(msgs))
		}
		if r := resultFor(t, rep, def); r.Outcome != drift.Drift || list(r.NewThumbprints...) != list(tp, old1) {
			t.Errorf("report result %+v, want drift with the list it would write", r)
		}
	})
}

func TestSharedHostProbedOnce(t *testing.T) {
	w := newWorld(t)
	c, tp := w.publicChain()
	s, err := testidp.Start(testidp.ServerOptions{Chains: []tls.Certificate{c}, Paths: []string{"/id/A", "/id/B"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := w.provider(s.Host()+"/id/A", []string{old1}, nil)
	b := w.provider(s.Host()+"/id/B", []string{old2}, nil)

	var watch probeWatch
	rep, err := w.engine(watch.opt).Run(context.Background(), drift.Request{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	// The run ends its probe run once, after its last probe returned (the
	// probe's idle connections are closed with it).
	if watch.done.Load() != 1 || watch.probes.Load() != 2 || watch.inFlightAtDone.Load() != 0 {
		t.Errorf("probe run ended %d times, after %d probes, %d probes in flight then; want once, after 2, none in flight",
			watch.done.Load(), watch.probes.Load(), watch.inFlightAtDone.Load())
	}
	for arn, old := range map[string]string{a: old1, b: old2} {
		if r := resultFor(t, rep, arn); r.Outcome != drift.Updated {
			t.Errorf("%s: %+v", arn, r)
		}
		if got := list(w.stored(arn)...); got != list(tp, old) {
			t.Errorf("%s stored %s", arn, got)
		}
	}
	// Two discovery requests (one connection, or one each when both went
	// out before either had finished) and one probe of the shared host (1
	// handshake, the TLS 1.2 check; the first discovery's is the other
	// sample); probing per provider would make 4.
	if got := s.Handshakes(); got != 2 && got != 3 {
		t.Errorf("server saw %d handshakes, want 2 or 3 (1 or 2 discovery + 1 probe)", got)
	}
}

func TestAlternatingChainsBothWrittenFirst(t *testing.T) {
	w := newWorld(t)
	cross, err := w.public.Intermediate("Public Test Intermediate 2")
	if err != nil {
		t.Fatal(err)
	}
	c1, tp1 := w.publicChain()
	c2, tp2 := w.chain(cross)
	s := w.idp("", c1, c2)
	arn := w.provider(s.URL(), []string{old1}, nil)
	rep, err := w.engine().Run(context.Background(), drift.Request{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Which chain the server sends first depends on its rotation; both must
	// come first, in the order the probe saw them, then the old entry.
	r := resultFor(t, rep, arn)
	live := list(r.LiveThumbprints...)
	if live != list(tp1, tp2) && live != list(tp2, tp1) {
		t.Fatalf("live %s, want both chains %s %s", live, tp1, tp2)
	}
	if got := list(w.stored(arn)...); got != list(append(r.LiveThumbprints, old1)...) {
		t.Fatalf("stored %s, want both live first then %s", got, old1)
	}
}

func TestProbeFailureNothingWritten(t *testing.T) {
	w := newWorld(t)
	c, _ := w.publicChain()
	good := w.idp("", c)
	goodARN := w.provider(good.URL(), []string{old2}, nil)
	// A listener that refuses: take a free port and leave it closed.
	port, err := testpeer.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dead := w.provider(fmt.Sprintf("127.0.0.1:%d", port), []string{old1}, nil)

	rep, err := w.engine().Run(context.Background(), drift.Request{})
	if err != nil {
		t.Fatalf("Run: %v (a probe failure is not an invocation error)", err)
	}
	r := resultFor(t, rep, dead)
	if r.Outcome != drift.ProbeFailed || r.Severity != drift.SeverityWarning || !strings.Contains(r.Detail, "discovery") {
		t.Fatalf("result %+v", r)
	}
	if got := list(w.stored(dead)...); got != old1 {
		t.Fatalf("written after a failed probe: %s", got)
	}
	if resultFor(t, rep, goodARN).Outcome != drift.Updated {
		t.Fatalf("other provider not processed")
	}
	var outcomes []string
	for _, s := range w.sentByProvider()[dead] {
		outcomes = append(outcomes, s.Transition+" "+s.Outcome)
	}
	// Without a state table, every run alerts a failed probe as new.
	if list(outcomes...) != "new probe-failed" {
		t.Fatalf("messages for the dead provider %v, want one new probe-failed", outcomes)
	}
}

func TestDeletedBetweenListAndGet(t *testing.T) {
	w := newWorld(t)
	c, _ := w.publicChain()
	s := w.idp("", c)
	arn := w.provider(s.URL(), []string{old1}, nil)
	w.api.onGet = func(got string, n int) error {
		if got == arn && n == 1 {
			_, err := w.iam.DeleteOpenIDConnectProvider(context.Background(), &iam.DeleteOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
			return err
		}
		return nil
	}
	rep, err := w.engine().Run(context.Background(), drift.Request{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if r := resultFor(t, rep, arn); r.Outcome != drift.Skipped || !strings.Contains(r.Detail, "not found") {
		t.Fatalf("result %+v, want skipped not found", r)
	}
	if n := w.api.updates.Load(); n != 0 {
		t.Fatalf("%d updates", n)
	}
}

func TestChangedBySomeoneElseBeforeWrite(t *testing.T) {
	w := newWorld(t)
	c, tp := w.publicChain()
	s := w.idp("", c)
	arn := w.provider(s.URL(), []string{old1}, nil)
	// Between the decision (first Get) and the write (second Get), another
	// writer replaces the list.
	w.api.onGet = func(got string, n int) error {
		if got == arn && n == 2 {
			_, err := w.iam.UpdateOpenIDConnectProviderThumbprint(context.Background(), &iam.UpdateOpenIDConnectProviderThumbprintInput{
				OpenIDConnectProviderArn: aws.String(arn), ThumbprintList: []string{old3, old2}})
			return err
		}
		return nil
	}
	rep, err := w.engine().Run(context.Background(), drift.Request{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	r := resultFor(t, rep, arn)
	if r.Outcome != drift.Updated || !strings.Contains(r.Detail, "changed") {
		t.Fatalf("result %+v", r)
	}
	// Decided again on the other writer's list: nothing of it lost.
	if got := list(w.stored(arn)...); got != list(tp, old3, old2) {
		t.Fatalf("stored %s, want %s", got, list(tp, old3, old2))
	}
	if list(r.StoredThumbprints...) != list(old3, old2) {
		t.Errorf("report shows stored %v, want the list the write was based on", r.StoredThumbprints)
	}
}

func TestChangedToInSyncBeforeWrite(t *testing.T) {
	w := newWorld(t)
	c, tp := w.publicChain()
	s := w.idp("", c)
	arn := w.provider(s.URL(), []string{old1}, nil)
	w.api.onGet = func(got string, n int) error {
		if got == arn && n == 2 {
			_, err := w.iam.UpdateOpenIDConnectProviderThumbprint(context.Background(), &iam.UpdateOpenIDConnectProviderThumbprintInput{
				OpenIDConnectProviderArn: aws.String(arn), ThumbprintList: []string{strings.ToUpper(tp)}})
			return err
		}
		return nil
	}
	rep, err := w.engine().Run(context.Background(), drift.Request{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if r := resultFor(t, rep, arn); r.Outcome != drift.InSync {
		t.Fatalf("result %+v, want in-sync after the other writer fixed it", r)
	}
	if n := w.api.updates.Load(); n != 0 {
		t.Fatalf("%d updates over the other writer's fix", n)
	}
}

func TestUpdateFailedOthersProcessed(t *testing.T) {
	w := newWorld(t)
	c, tp := w.publicChain()
	bad := w.provider(w.idp("/bad", c).URL(), []string{old1}, nil)
	c2, tp2 := w.privateChain()
	badUntrusted := w.provider(w.idp("/bad2", c2).URL(), []string{old1}, map[string]string{drift.TagAllowUnverified: "true"})
	good := w.provider(w.idp("/good", c).URL(), []string{old2}, nil)
	w.api.onUpdate = func(arn string) error {
		if arn == bad || arn == badUntrusted {
			return &iamtypes.ServiceFailureException{Message: aws.String("injected")}
		}
		return nil
	}
	rep, err := w.engine().Run(context.Background(), drift.Request{})
	if !errors.Is(err, drift.ErrUpdateFailed) {
		t.Fatalf("Run error = %v, want ErrUpdateFailed", err)
	}
	if r := resultFor(t, rep, bad); r.Outcome != drift.UpdateFailed || r.Severity != drift.SeverityWarning || !strings.Contains(r.Detail, "injected") {
		t.Fatalf("bad: %+v", r)
	}
	if r := resultFor(t, rep, badUntrusted); r.Outcome != drift.UpdateFailed || r.Severity != drift.SeverityCritical {
		t.Fatalf("untrusted bad: %+v, want critical", r)
	}
	if got := list(w.stored(good)...); got != list(tp, old2) {
		t.Fatalf("other provider not processed: %s", got)
	}
	if got := list(w.stored(bad)...); got != old1 {
		t.Fatalf("failed provider changed: %s", got)
	}
	_ = tp2
	n := 0
	for _, s := range w.sentResults() {
		if s.Outcome == "update-failed" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d update-failed messages, want 2", n)
	}
}

func TestSNSDownEveryProviderProcessedThenError(t *testing.T) {
	w := newWorld(t)
	c, tp := w.publicChain()
	a := w.provider(w.idp("/a", c).URL(), []string{old1}, nil)
	b := w.provider(w.idp("/b", c).URL(), []string{old2}, nil)
	// A topic that does not exist: every publish fails.
	e := w.engine(func(o *setup) {
		o.pipe.Integrations = []alert.Integration{alert.NewSNSPublisher(w.sns, w.topicARN+"-deleted")}
	})
	rep, err := e.Run(context.Background(), drift.Request{})
	if !errors.Is(err, alert.ErrNotDelivered) || !strings.Contains(err.Error(), "publish") {
		t.Fatalf("Run error = %v, want a publish error", err)
	}
	for _, r := range rep.Results {
		if r.Transition != "" {
			t.Errorf("%s: transition %q though nothing was delivered", r.ProviderARN, r.Transition)
		}
	}
	if rep == nil || rep.Checked != 2 {
		t.Fatalf("report %+v", rep)
	}
	for arn, old := range map[string]string{a: old1, b: old2} {
		if got := list(w.stored(arn)...); got != list(tp, old) {
			t.Errorf("%s not processed: %s", arn, got)
		}
	}
}

func TestSecondRunIdempotent(t *testing.T) {
	w := newWorld(t)
	c, _ := w.publicChain()
	c2, _ := w.privateChain()
	w.provider(w.idp("/a", c).URL(), []string{old1}, nil)
	w.provider(w.idp("/b", c2).URL(), []string{old2, old3}, map[string]string{drift.TagAllowUnverified: "true"})
	w.provider(w.idp("/c", c).URL(), []string{old1, old2, old3, old4, old5}, nil)
	e := w.engine()
	rep, err := e.Run(context.Background(), drift.Request{})
	if err != nil || rep.Counts[drift.Updated] != 3 {
		t.Fatalf("first run: %v %v", err, rep.Counts)
	}
	w.messages()
	before := w.api.updates.Load()
	rep, err = e.Run(context.Background(), drift.Request{})
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if rep.Counts[drift.InSync] != 3 {
		t.Fatalf("second run counts %v, want all in sync", rep.Counts)
	}
	if n := w.api.updates.Load() - before; n != 0 {
		t.Fatalf("second run wrote %d times", n)
	}
	if msgs := w.messages(); len(msgs) != 0 {
		t.Fatalf("second run published %d messages", len(msgs))
	}
}

func TestNarrowedRequest(t *testing.T) {
	w := newWorld(t)
	c, tp := w.publicChain()
	a := w.provider(w.idp("/a", c).URL(), []string{old1}, nil)
	b := w.provider(w.idp("/b", c).URL(), []string{old2}, nil)
	rep, err := w.engine().Run(context.Background(), drift.Request{Providers: []string{b, b}})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Checked != 1 || rep.Results[0].ProviderARN != b {
		t.Fatalf("report %+v, want only %s", rep, b)
	}
	if got := list(w.stored(a)...); got != old1 {
		t.Fatalf("provider outside the request written: %s", got)
	}
	if got := list(w.stored(b)...); got != list(tp, old2) {
		t.Fatalf("requested provider: %s", got)
	}
}

func TestBadTagOnInSyncProviderLoggedAsWarning(t *testing.T) {
	w := newWorld(t)
	c, tp := w.publicChain()
	bad := w.provider(w.idp("/bad", c).URL(), []string{tp}, map[string]string{drift.TagAllowUnverified: "yes"})
	good := w.provider(w.idp("/good", c).URL(), []string{tp}, nil)
	var logs bytes.Buffer
	rep, err := w.engine(func(o *setup) { o.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) }).Run(context.Background(), drift.Request{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if r := resultFor(t, rep, bad); r.Outcome != drift.InSync || r.Severity != drift.SeverityNone || !strings.Contains(r.Detail, "is not true or false") {
		t.Fatalf("result %+v", r)
	}
	levels := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var v struct {
			Level       string `json:"level"`
			ProviderARN string `json:"provider_arn"`
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		levels[v.ProviderARN] = v.Level
	}
	if levels[bad] != "WARN" || levels[good] != "INFO" {
		t.Fatalf("log levels %v, want WARN for the bad tag, INFO otherwise", levels)
	}
}
