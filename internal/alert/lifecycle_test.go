package alert_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/alert"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/iac"
	"github.com/thumbprint-drift/thumbprint-drift/internal/state"
)

func TestNext(t *testing.T) {
	const arn = "arn:aws:iam::123456789012:oidc-provider/idp.example"
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	a, b := strings.Repeat("aa", 20), strings.Repeat("bb", 20)
	pol := alert.Policy{RealertInterval: 24 * time.Hour, ProbeFailuresToAlert: 2}
	seenA := map[string]time.Time{a: ago(time.Hour)}
	res := func(o drift.Outcome, live ...string) drift.Result {
		return drift.Result{ProviderARN: arn, Outcome: o, LiveThumbprints: live}
	}
	// alerted is an item with problem o (live) open since since, last sent at sent.
	alerted := func(o drift.Outcome, since, sent time.Time, live ...string) state.Item {
		return state.Item{Key: arn, Version: 3, Problem: string(o), FirstSeen: since, Outcome: string(o), Live: live, AlertedAt: sent, Seen: seenA}
	}
	updated := drift.Result{ProviderARN: arn, Outcome: drift.Updated, LiveThumbprints: []string{a}, StoredThumbprints: []string{b}, NewThumbprints: []string{a, b}}

	tests := []struct {
		name   string
		prev   state.Item
		r      drift.Result
		pol    alert.Policy
		want   alert.Transition
		first  time.Time // zero: not a problem
		write  bool      // quiet fields written (without a transition)
		open   string    // the problem open after delivery ("" none)
		failed int       // probe failures counted after
	}{
		{"first drift is new", state.Item{}, res(drift.Drift, a), pol, alert.TransitionNew, now, true, "drift", 0},
		{"same drift before the interval: nothing, no write", alerted(drift.Drift, ago(5*time.Hour), ago(5*time.Hour), a), res(drift.Drift, a), pol, alert.TransitionNone, ago(5 * time.Hour), false, "drift", 0},
		{"same drift at the interval: reminder", alerted(drift.Drift, ago(48*time.Hour), ago(24*time.Hour), a), res(drift.Drift, a), pol, alert.TransitionReminder, ago(48 * time.Hour), false, "drift", 0},
		{"interval 0 never reminds", alerted(drift.Drift, ago(900*time.Hour), ago(900*time.Hour), a), res(drift.Drift, a), alert.Policy{ProbeFailuresToAlert: 2}, alert.TransitionNone, ago(900 * time.Hour), false, "drift", 0},
		{"live thumbprint changed again: changed, first_seen kept", alerted(drift.Drift, ago(5*time.Hour), ago(5*time.Hour), a), res(drift.Drift, b), pol, alert.TransitionChanged, ago(5 * time.Hour), true, "drift", 0},
		{"live order alone changes nothing", alerted(drift.Drift, ago(5*time.Hour), ago(5*time.Hour), a, b), res(drift.Drift, strings.ToUpper(b), a), pol, alert.TransitionNone, ago(5 * time.Hour), true, "drift", 0},
		{"other outcome: changed, first_seen now", alerted(drift.Drift, ago(5*time.Hour), ago(5*time.Hour), a), res(drift.UpdateFailed, a), pol, alert.TransitionChanged, now, true, "update-failed", 0},
		{"gone: resolved", alerted(drift.Drift, ago(5*time.Hour), ago(5*time.Hour), a), res(drift.InSync, a), pol, alert.TransitionResolved, time.Time{}, true, "", 0},
		{"in sync, nothing open, seen today: nothing", state.Item{Key: arn, Version: 1, Seen: seenA}, res(drift.InSync, a), pol, alert.TransitionNone, time.Time{}, false, "", 0},
		{"in sync, seen a day ago: refresh only", state.Item{Key: arn, Version: 1, Seen: map[string]time.Time{a: ago(24 * time.Hour)}}, res(drift.InSync, a), pol, alert.TransitionNone, time.Time{}, true, "", 0},
		{"in sync, never seen: recorded", state.Item{}, res(drift.InSync, a), pol, alert.TransitionNone, time.Time{}, true, "", 0},
		{"updated closes an open problem: applied", alerted(drift.Drift, ago(5*time.Hour), ago(5*time.Hour), a), updated, pol, alert.TransitionApplied, time.Time{}, true, "", 0},
		{"updated, nothing open: applied, the list it wrote remembered", state.Item{Key: arn, Version: 1, Seen: seenA}, updated, pol, alert.TransitionApplied, time.Time{}, true, "", 0},
		{"the same update applied by a concurrent run: once", state.Item{Key: arn, Version: 2, Seen: seenA, Applied: b + ">" + a + "," + b, AppliedAt: ago(5 * time.Second), Wrote: []string{a, b}, WroteAt: ago(6 * time.Second)}, updated, pol, alert.TransitionNone, time.Time{}, false, "", 0},
		{"the same update hours later, still the function's list: once", state.Item{Key: arn, Version: 2, Seen: seenA, Applied: b + ">" + a + "," + b, AppliedAt: ago(20 * time.Hour), Wrote: []string{strings.ToUpper(a), b}, WroteAt: ago(20 * time.Hour)}, updated, pol, alert.TransitionNone, time.Time{}, false, "", 0},
		{"the same update after another writer's list was in place: applied", state.Item{Key: arn, Version: 2, Seen: seenA, Applied: b + ">" + a + "," + b, AppliedAt: ago(20 * time.Minute)}, updated, pol, alert.TransitionApplied, time.Time{}, true, "", 0},
		{"reverted is new", state.Item{Key: arn, Version: 2, Seen: seenA, Wrote: []string{a, b}}, res(drift.Reverted, a), pol, alert.TransitionNew, now, true, "reverted", 0},
		{"reverted again: nothing, no write", func() state.Item {
			it := alerted(drift.Reverted, ago(5*time.Hour), ago(5*time.Hour), a)
			it.Wrote, it.RevertedAt = []string{a, b}, ago(5*time.Hour)
			return it
		}(), res(drift.Reverted, a), pol, alert.TransitionNone, ago(5 * time.Hour), false, "reverted", 0},
		{"the code fixed after a revert: resolved", func() state.Item {
			it := alerted(drift.Reverted, ago(5*time.Hour), ago(5*time.Hour), a)
			it.Wrote, it.RevertedAt = []string{a, b}, ago(5*time.Hour)
			return it
		}(), drift.Result{ProviderARN: arn, Outcome: drift.InSync, LiveThumbprints: []string{a}, StoredThumbprints: []string{a, b}}, pol, alert.TransitionResolved, time.Time{}, true, "", 0},
		{"first probe failure: counted, not sent", state.Item{}, res(drift.ProbeFailed), pol, alert.TransitionNone, now, true, "", 1},
		{"second probe failure: new, since the first", state.Item{Key: arn, Version: 1, ProbeFailures: 1, FailingSince: ago(time.Hour)}, res(drift.ProbeFailed), pol, alert.TransitionNew, ago(time.Hour), true, "probe-failed", 2},
		{"third probe failure: nothing, no write", state.Item{Key: arn, Version: 2, ProbeFailures: 2, FailingSince: ago(2 * time.Hour), Problem: "probe-failed", FirstSeen: ago(2 * time.Hour), Outcome: "probe-failed", AlertedAt: ago(time.Hour)}, res(drift.ProbeFailed), pol, alert.TransitionNone, ago(2 * time.Hour), false, "probe-failed", 2},
		{"one probe failure while drift is open: drift stays, counted", alerted(drift.Drift, ago(5*time.Hour), ago(5*time.Hour), a), res(drift.ProbeFailed), pol, alert.TransitionNone, now, true, "drift", 1},
		{"drift again after one failure: nothing sent, count reset", func() state.Item {
			it := alerted(drift.Drift, ago(5*time.Hour), ago(5*time.Hour), a)
			it.ProbeFailures, it.FailingSince = 1, ago(time.Hour)
			return it
		}(), res(drift.Drift, a), pol, alert.TransitionNone, ago(5 * time.Hour), true, "drift", 0},
		{"probe failing long enough while drift is open: changed", func() state.Item {
			it := alerted(drift.Drift, ago(5*time.Hour), ago(5*time.Hour), a)
			it.ProbeFailures, it.FailingSince = 1, ago(time.Hour)
			return it
		}(), res(drift.ProbeFailed), pol, alert.TransitionChanged, ago(time.Hour), true, "probe-failed", 2},
		{"threshold 1: the first failure is new", state.Item{}, res(drift.ProbeFailed), alert.Policy{ProbeFailuresToAlert: 1}, alert.TransitionNew, now, true, "probe-failed", 1},
		{"expiring is new", state.Item{}, res(drift.Expiring, a), pol, alert.TransitionNew, now, true, "expiring", 0},
		{"account failed is new", state.Item{}, drift.Result{AccountID: "111122223333", Outcome: drift.AccountFailed}, pol, alert.TransitionNew, now, true, "account-failed", 0},
		{"account reachable again: resolved", state.Item{Key: "account#111122223333", Version: 2, Problem: "account-failed", FirstSeen: ago(time.Hour), Outcome: "account-failed", AlertedAt: ago(time.Hour)},
			drift.Result{AccountID: "111122223333", Outcome: drift.InSync}, pol, alert.TransitionResolved, time.Time{}, true, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.prev.Key == "" {
				tt.prev.Key = tt.r.Key()
			}
			s := alert.Next(tt.prev, tt.r, now, tt.pol)
			if s.Transition != tt.want {
				t.Errorf("transition %q, want %q", s.Transition, tt.want)
			}
			if !s.FirstSeen.Equal(tt.first) {
				t.Errorf("first_seen %v, want %v", s.FirstSeen, tt.first)
			}
			if s.Write != tt.write {
				t.Errorf("write %v, want %v", s.Write, tt.write)
			}
			if s.Full.Outcome != tt.open {
				t.Errorf("open problem after delivery %q, want %q", s.Full.Outcome, tt.open)
			}
			if s.Quiet.ProbeFailures != tt.failed {
				t.Errorf("probe failures %d, want %d", s.Quiet.ProbeFailures, tt.failed)
			}
			// The claim never records the alert; without a transition both are the same.
			if s.Quiet.Outcome != tt.prev.Outcome || !s.Quiet.AlertedAt.Equal(tt.prev.AlertedAt) {
				t.Errorf("quiet item changes the alert fields: %+v", s.Quiet)
			}
			if s.Transition == alert.TransitionNone && fmt.Sprint(s.Full) != fmt.Sprint(s.Quiet) {
				t.Errorf("no transition but Full %+v differs from Quiet %+v", s.Full, s.Quiet)
			}
			if s.Transition != alert.TransitionNone && s.Transition != alert.TransitionResolved && s.Transition != alert.TransitionApplied && !s.Full.AlertedAt.Equal(now) {
				t.Errorf("alerted_at %v after %s", s.Full.AlertedAt, s.Transition)
			}
			for _, l := range tt.r.LiveThumbprints {
				if s.Quiet.Seen[strings.ToLower(l)].IsZero() {
					t.Errorf("live %s not recorded as seen", l)
				}
			}
		})
	}
}

func TestNextForgetsOldSightings(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	seen := map[string]time.Time{"old": now.Add(-alert.SeenWindow - time.Hour)}
	for i := range alert.MaxSeen + 4 {
		seen[fmt.Sprintf("t%02d", i)] = now.Add(-time.Duration(i+25) * time.Hour)
	}
	prev := state.Item{Key: "k", Version: 1, Seen: seen}
	s := alert.Next(prev, drift.Result{ProviderARN: "k", Outcome: drift.InSync, LiveThumbprints: []string{"new"}}, now, alert.Policy{ProbeFailuresToAlert: 2})
	if !s.Write || len(s.Quiet.Seen) != alert.MaxSeen {
		t.Fatalf("write %v, %d sightings kept, want %d", s.Write, len(s.Quiet.Seen), alert.MaxSeen)
	}
	if _, ok := s.Quiet.Seen["old"]; ok {
		t.Error("a sighting past SeenWindow kept")
	}
	if !s.Quiet.Seen["new"].Equal(now) || s.Quiet.Seen["t00"].IsZero() {
		t.Errorf("the most recent sightings not kept: %v", s.Quiet.Seen)
	}
	if len(prev.Seen) != alert.MaxSeen+5 {
		t.Error("Next changed the item it was given")
	}
}

// An applied whose message was not delivered is owed: the retry finds the
// provider in sync, and sends applied for the earlier update, not resolved.
func TestNextOwedApplied(t *testing.T) {
	const arn = "arn:aws:iam::123456789012:oidc-provider/idp.example"
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	a, b := strings.Repeat("aa", 20), strings.Repeat("bb", 20)
	pol := alert.Policy{RealertInterval: time.Hour, ProbeFailuresToAlert: 2}
	open := state.Item{Key: arn, Version: 4, Problem: "drift", FirstSeen: now.Add(-time.Hour), Outcome: "drift", Live: []string{a}, AlertedAt: now.Add(-time.Hour)}

	upd := alert.Next(open, drift.Result{ProviderARN: arn, Outcome: drift.Updated, LiveThumbprints: []string{a}, StoredThumbprints: []string{b}, NewThumbprints: []string{a, b}}, now, pol)
	id := b + ">" + a + "," + b
	if upd.Transition != alert.TransitionApplied || upd.Quiet.Owed != id || upd.Full.Owed != "" || upd.Full.Applied != id {
		t.Fatalf("update: %s, claim owes %q, record owes %q applied %q", upd.Transition, upd.Quiet.Owed, upd.Full.Owed, upd.Full.Applied)
	}

	// The delivery failed: the item holds the claim's quiet fields.
	released := upd.Quiet
	released.Version = 5
	retry := alert.Next(released, drift.Result{ProviderARN: arn, Outcome: drift.InSync, LiveThumbprints: []string{a}}, now.Add(time.Minute), pol)
	if retry.Transition != alert.TransitionApplied || retry.Owed != id || !retry.OwedAt.Equal(now) {
		t.Fatalf("retry: %s owed %q at %v, want applied of %q", retry.Transition, retry.Owed, retry.OwedAt, id)
	}
	if retry.Full.Outcome != "" || retry.Full.Owed != "" || retry.Full.Applied != id || !retry.Full.AppliedAt.Equal(now) {
		t.Fatalf("retry records %+v", retry.Full)
	}

	// One failed probe keeps it owed; a problem seen again drops it.
	if s := alert.Next(released, drift.Result{ProviderARN: arn, Outcome: drift.ProbeFailed}, now.Add(time.Minute), pol); s.Transition != alert.TransitionNone || s.Quiet.Owed != id {
		t.Fatalf("one probe failure: %s, owed %q", s.Transition, s.Quiet.Owed)
	}
	if s := alert.Next(released, drift.Result{ProviderARN: arn, Outcome: drift.Drift, LiveThumbprints: []string{b}}, now.Add(time.Minute), pol); s.Transition != alert.TransitionChanged || s.Quiet.Owed != "" || !s.Write {
		t.Fatalf("drift again: %s, owed %q, write %v", s.Transition, s.Quiet.Owed, s.Write)
	}
}

// TestNextRemembersTheCode: the quiet fields of DESIGN.md "Infrastructure as
// code": the writer an event names (the newer one), the list the function
// wrote (forgotten once another writer's list is in sync), when a list it
// wrote was first found set back.
func TestNextRemembersTheCode(t *testing.T) {
	const arn = "arn:aws:iam::123456789012:oidc-provider/idp.example"
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	a, b, c := strings.Repeat("aa", 20), strings.Repeat("bb", 20), strings.Repeat("cc", 20)
	pol := alert.Policy{RealertInterval: 24 * time.Hour, ProbeFailuresToAlert: 2}
	seen := map[string]time.Time{a: now.Add(-time.Hour)}
	tf := &iac.Writer{Tool: iac.Terraform, Principal: "arn:aws:sts::1:assumed-role/tf/ci", At: now.Add(-time.Minute), UserAgent: "Terraform/1.10.5"}
	older := &iac.Writer{Tool: iac.Console, Principal: "arn:aws:sts::1:assumed-role/admin/dave", At: now.Add(-time.Hour)}
	for _, tt := range []struct {
		name       string
		prev       state.Item
		r          drift.Result
		write      bool
		writer     *iac.Writer
		wrote      []string
		revertedAt time.Time
	}{
		{"an event's writer is recorded, in full", state.Item{Seen: seen}, drift.Result{Outcome: drift.InSync, LiveThumbprints: []string{a}, StoredThumbprints: []string{a}, EventWriter: tf},
			true, tf, nil, time.Time{}},
		{"an older event does not replace a newer writer", state.Item{Version: 1, Seen: seen, Writer: tf}, drift.Result{Outcome: drift.InSync, LiveThumbprints: []string{a}, StoredThumbprints: []string{a}, EventWriter: older},
			false, tf, nil, time.Time{}},
		{"the same event again writes nothing", state.Item{Version: 1, Seen: seen, Writer: tf}, drift.Result{Outcome: drift.InSync, LiveThumbprints: []string{a}, StoredThumbprints: []string{a}, EventWriter: tf},
			false, tf, nil, time.Time{}},
		{"an update remembers the list written", state.Item{Version: 1, Seen: seen}, drift.Result{Outcome: drift.Updated, LiveThumbprints: []string{a}, StoredThumbprints: []string{b}, NewThumbprints: []string{a, b}},
			true, nil, []string{a, b}, time.Time{}},
		{"in sync with the function's list: kept", state.Item{Version: 1, Seen: seen, Wrote: []string{a, b}, WroteAt: now.Add(-time.Hour)}, drift.Result{Outcome: drift.InSync, LiveThumbprints: []string{a}, StoredThumbprints: []string{strings.ToUpper(a), b}},
			false, nil, []string{a, b}, time.Time{}},
		{"in sync with another writer's list: forgotten", state.Item{Version: 1, Seen: seen, Wrote: []string{a, b}, WroteAt: now.Add(-time.Hour)}, drift.Result{Outcome: drift.InSync, LiveThumbprints: []string{a}, StoredThumbprints: []string{a, c}},
			true, nil, nil, time.Time{}},
		{"reverted: when, once", state.Item{Version: 1, Seen: seen, Wrote: []string{a, b}}, drift.Result{Outcome: drift.Reverted, LiveThumbprints: []string{a}, StoredThumbprints: []string{b}},
			true, nil, []string{a, b}, now},
		{"reverted again: the first time kept", state.Item{Version: 1, Seen: seen, Wrote: []string{a, b}, RevertedAt: now.Add(-time.Hour), Problem: "reverted", FirstSeen: now.Add(-time.Hour)},
			drift.Result{Outcome: drift.Reverted, LiveThumbprints: []string{a}, StoredThumbprints: []string{b}}, false, nil, []string{a, b}, now.Add(-time.Hour)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.prev.Key, tt.r.ProviderARN = arn, arn
			s := alert.Next(tt.prev, tt.r, now, pol)
			if s.Write != tt.write {
				t.Errorf("write %v, want %v", s.Write, tt.write)
			}
			if !reflect.DeepEqual(s.Quiet.Writer, tt.writer) || !reflect.DeepEqual(s.Quiet.Wrote, tt.wrote) || !s.Quiet.RevertedAt.Equal(tt.revertedAt) {
				t.Errorf("quiet writer %+v wrote %v reverted %v; want %+v %v %v", s.Quiet.Writer, s.Quiet.Wrote, s.Quiet.RevertedAt, tt.writer, tt.wrote, tt.revertedAt)
			}
			if !reflect.DeepEqual(s.Full.Writer, s.Quiet.Writer) || !reflect.DeepEqual(s.Full.Wrote, s.Quiet.Wrote) {
				t.Errorf("the record loses what the claim wrote: %+v", s.Full)
			}
		})
	}
}

// TestNextExpiryOff: with the warning off (EXPIRY_WARNING=0), an alerted
// expiring now in sync sends nothing and is forgotten (a quiet write that
// clears the alert); any other open problem is still resolved, and with the
// warning on the expiring is resolved.
func TestNextExpiryOff(t *testing.T) {
	const arn = "arn:aws:iam::123456789012:oidc-provider/idp.example"
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	a := strings.Repeat("aa", 20)
	open := func(o drift.Outcome) state.Item {
		return state.Item{Key: arn, Version: 3, Outcome: string(o), Live: []string{a}, AlertedAt: now.Add(-time.Hour),
			Seen: map[string]time.Time{a: now.Add(-time.Hour)}}
	}
	inSync := drift.Result{ProviderARN: arn, Outcome: drift.InSync, LiveThumbprints: []string{a}}
	tests := []struct {
		name    string
		prev    state.Item
		off     bool
		want    alert.Transition
		forgets bool
	}{
		{"expiring, warning off: forgotten quietly", open(drift.Expiring), true, alert.TransitionNone, true},
		{"expiring, warning on: resolved", open(drift.Expiring), false, alert.TransitionResolved, false},
		{"drift, warning off: resolved", open(drift.Drift), true, alert.TransitionResolved, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := alert.Next(tt.prev, inSync, now, alert.Policy{RealertInterval: 24 * time.Hour, ProbeFailuresToAlert: 2, ExpiryOff: tt.off})
			if s.Transition != tt.want {
				t.Fatalf("transition %q, want %q", s.Transition, tt.want)
			}
			if tt.forgets && (!s.Write || s.Quiet.Outcome != "" || s.Quiet.Live != nil || !s.Quiet.AlertedAt.IsZero() || s.Full.Outcome != "") {
				t.Errorf("write %v, quiet %+v; want a write that forgets the alert", s.Write, s.Quiet)
			}
		})
	}
}
