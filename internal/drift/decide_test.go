package drift

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/iac"
)

// Thumbprints for tests: 40 hex characters each.
func tp(c byte) string { return strings.Repeat(string(c), 40) }

var (
	t1, t2, t3, t4, t5, t6, t7 = tp('1'), tp('2'), tp('3'), tp('4'), tp('5'), tp('6'), tp('7')
)

func TestMerge(t *testing.T) {
	tests := []struct {
		name        string
		live        []string
		stored      []string
		want        []string
		wantDropped []string
	}{
		{"live first then stored", []string{t1}, []string{t2, t3}, []string{t1, t2, t3}, nil},
		{"two live in order seen", []string{t1, t2}, []string{t3}, []string{t1, t2, t3}, nil},
		{"stored order kept, live removed from it", []string{t2}, []string{t3, t2, t4}, []string{t2, t3, t4}, nil},
		{"cut to five, oldest dropped", []string{t1}, []string{t2, t3, t4, t5, t6}, []string{t1, t2, t3, t4, t5}, nil},
		{"live lowercased", []string{strings.ToUpper(tp('a'))}, []string{t2}, []string{tp('a'), t2}, nil},
		{"case-insensitive duplicate of live in stored removed", []string{tp('b')}, []string{strings.ToUpper(tp('b')), t3}, []string{tp('b'), t3}, nil},
		{"stored duplicates collapse", []string{t1}, []string{t2, t2, t3}, []string{t1, t2, t3}, nil},
		{"malformed stored dropped and reported", []string{t1}, []string{"abc", t2, "zz" + t3[2:]}, []string{t1, t2}, []string{"abc", "zz" + t3[2:]}},
		{"empty stored", []string{t1}, nil, []string{t1}, nil},
		{"six live cut to five", []string{t1, t2, t3, t4, t5, t6}, []string{t7}, []string{t1, t2, t3, t4, t5}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, dropped := Merge(tt.live, tt.stored, nil)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Merge list = %v, want %v", got, tt.want)
			}
			if !reflect.DeepEqual(dropped, tt.wantDropped) {
				t.Errorf("Merge dropped = %v, want %v", dropped, tt.wantDropped)
			}
		})
	}
}

func TestMergeWithSeenTimes(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	tests := []struct {
		name   string
		live   []string
		stored []string
		seen   LastSeen
		want   []string
	}{
		{"no state: stored order", []string{t1}, []string{t2, t3, t4, t5, t6}, nil,
			[]string{t1, t2, t3, t4, t5}},
		{"an alternate chain seen an hour ago survives the cut", []string{t1}, []string{t2, t3, t4, t5, t6},
			LastSeen{t1: now, t6: ago(time.Hour)}, []string{t1, t6, t2, t3, t4}},
		{"seen entries first, most recently seen first", []string{t1}, []string{t2, t3, t4, t5, t6},
			LastSeen{t5: ago(48 * time.Hour), t6: ago(time.Hour), t4: ago(30 * 24 * time.Hour)}, []string{t1, t6, t5, t4, t2}},
		{"equal seen times keep stored order", []string{t1}, []string{t2, t3, t4, t5, t6},
			LastSeen{t6: ago(time.Hour), t3: ago(time.Hour)}, []string{t1, t3, t6, t2, t4}},
		{"seen times of live entries change nothing", []string{t1, t2}, []string{t3, t1, t4},
			LastSeen{t1: ago(time.Hour), t4: ago(time.Hour)}, []string{t1, t2, t4, t3}},
		{"upper-case stored entry matched to its seen time", []string{t1}, []string{t2, t3, t4, t5, strings.ToUpper(tp('f'))},
			LastSeen{tp('f'): ago(time.Hour)}, []string{t1, strings.ToUpper(tp('f')), t2, t3, t4}},
		{"more seen than room: the oldest sighting goes", []string{t1, t2}, []string{t3, t4, t5, t6, t7},
			LastSeen{t3: ago(5 * time.Hour), t4: ago(4 * time.Hour), t5: ago(3 * time.Hour), t6: ago(2 * time.Hour), t7: ago(time.Hour)},
			[]string{t1, t2, t7, t6, t5}},
		{"a staged thumbprint (seen, never served yet) kept", []string{t1}, []string{t2, t3, t4, t5, t6},
			LastSeen{t6: now}, []string{t1, t6, t2, t3, t4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := Merge(tt.live, tt.stored, tt.seen)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Merge = %v, want %v", got, tt.want)
			}
			if Cuts(tt.live, tt.stored) != (len(got) == 5 && len(tt.live)+len(tt.stored) > 5) {
				t.Errorf("Cuts = %v for a list of %d", Cuts(tt.live, tt.stored), len(got))
			}
		})
	}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name      string
		live      []string
		stored    []string
		trusted   bool
		mode      config.Mode
		allow     bool
		code      Code
		want      Outcome
		wantApply bool
		wantList  []string
		reason    string
	}{
		{"in sync", []string{t1}, []string{t2, t1}, true, config.ModeRemediate, false, Code{}, InSync, false, nil, ""},
		{"in sync ignoring case", []string{tp('a')}, []string{strings.ToUpper(tp('a'))}, false, config.ModeRemediate, false, Code{}, InSync, false, nil, ""},
		{"in sync needs every live", []string{t1, t2}, []string{t1}, true, config.ModeRemediate, false, Code{}, Drift, true, []string{t1, t2}, ""},
		{"trusted drift remediate applies", []string{t1}, []string{t2}, true, config.ModeRemediate, false, Code{}, Drift, true, []string{t1, t2}, ""},
		{"untrusted drift remediate held", []string{t1}, []string{t2}, false, config.ModeRemediate, false, Code{}, Drift, false, []string{t1, t2}, "not publicly trusted"},
		{"untrusted drift allowed", []string{t1}, []string{t2}, false, config.ModeRemediate, true, Code{}, Drift, true, []string{t1, t2}, ""},
		{"alert mode never applies", []string{t1}, []string{t2}, true, config.ModeAlert, true, Code{}, Drift, false, []string{t1, t2}, "mode alert"},
		{"report mode never applies", []string{t1}, []string{t2}, true, config.ModeReport, false, Code{}, Drift, false, []string{t1, t2}, "mode report"},
		{"no live thumbprint never writes", nil, []string{t2}, true, config.ModeRemediate, false, Code{}, Drift, false, nil, "no thumbprint"},
		{"all stored malformed: list is live only", []string{t1}, []string{"bad"}, true, config.ModeRemediate, false, Code{}, Drift, true, []string{t1}, ""},
		{"owned by code: not written in remediate", []string{t1}, []string{t2}, true, config.ModeRemediate, false, Code{Owner: tagged("terraform")}, Drift, false, []string{t1, t2}, "owned by code (tagged thumbprint-drift:managed-by=terraform)"},
		{"owned by code, tagged mode=remediate: written", []string{t1}, []string{t2}, true, config.ModeRemediate, false, Code{Owner: tagged("pulumi"), Remediate: true}, Drift, true, []string{t1, t2}, ""},
		{"owned by code in alert mode: the mode says why", []string{t1}, []string{t2}, true, config.ModeAlert, false, Code{Owner: tagged("terraform")}, Drift, false, []string{t1, t2}, "mode alert"},
		{"owned by code and untrusted, tagged remediate: the chain still holds it", []string{t1}, []string{t2}, false, config.ModeRemediate, false, Code{Owner: tagged("other"), Remediate: true}, Drift, false, []string{t1, t2}, "not publicly trusted"},
		{"not owned: a console writer", []string{t1}, []string{t2}, true, config.ModeRemediate, false, Code{Owner: iac.Ownership(nil, &iac.Writer{Tool: iac.Console}, false)}, Drift, true, []string{t1, t2}, ""},
		{"the function's list set back: reverted, not written", []string{t1}, []string{t2}, true, config.ModeRemediate, false,
			Code{Wrote: []string{t1, t2}, By: &iac.Writer{Tool: iac.Terraform, Principal: "arn:aws:sts::1:assumed-role/tf/ci"}}, Reverted, false, []string{t1, t2}, "set it back to [" + t2 + "]"},
		{"set back, tagged remediate: still not written", []string{t1}, []string{t2}, true, config.ModeRemediate, false,
			Code{Wrote: []string{t1, t2}, Remediate: true}, Reverted, false, []string{t1, t2}, "an unknown writer"},
		{"the function's list still there after a rotation: written again", []string{t3}, []string{t1, t2}, true, config.ModeRemediate, false,
			Code{Wrote: []string{strings.ToUpper(t1), t2}}, Drift, true, []string{t3, t1, t2}, ""},
		{"the function's list set back, in sync again: in sync", []string{t2}, []string{t2}, true, config.ModeRemediate, false,
			Code{Wrote: []string{t1, t2}}, InSync, false, nil, ""},
		{"reverted in report mode is reported", []string{t1}, []string{t2}, true, config.ModeReport, false,
			Code{Wrote: []string{t1, t2}}, Reverted, false, []string{t1, t2}, "reverted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.live, tt.stored, nil, tt.trusted, tt.mode, tt.allow, tt.code)
			if d.Outcome != tt.want || d.Apply != tt.wantApply {
				t.Fatalf("Decide = %+v, want outcome %s apply %v", d, tt.want, tt.wantApply)
			}
			if tt.want != InSync && !reflect.DeepEqual(d.NewList, tt.wantList) {
				t.Errorf("NewList = %v, want %v", d.NewList, tt.wantList)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("Reason = %q, want it to contain %q", d.Reason, tt.reason)
			}
		})
	}
}

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		name      string
		tags      map[string]string
		want      Policy
		wantWarns int
	}{
		{"none", nil, Policy{}, 0},
		{"alert", map[string]string{TagMode: "alert"}, Policy{Mode: config.ModeAlert}, 0},
		{"upper case value", map[string]string{TagMode: " Report "}, Policy{Mode: config.ModeReport}, 0},
		{"ignore", map[string]string{TagMode: "ignore"}, Policy{Ignore: true}, 0},
		{"allow unverified", map[string]string{TagAllowUnverified: "TRUE"}, Policy{AllowUnverified: true}, 0},
		{"allow unverified false", map[string]string{TagAllowUnverified: "false"}, Policy{}, 0},
		{"bad mode falls back with a warning", map[string]string{TagMode: "fix-it"}, Policy{}, 1},
		{"bad allow falls back to false with a warning", map[string]string{TagAllowUnverified: "yes"}, Policy{}, 1},
		{"other tags ignored", map[string]string{"team": "platform", "thumbprint-drift:other": "x"}, Policy{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParsePolicy(tt.tags)
			if len(got.Warnings) != tt.wantWarns {
				t.Fatalf("warnings = %q, want %d", got.Warnings, tt.wantWarns)
			}
			got.Warnings = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParsePolicy = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestEffectiveMode(t *testing.T) {
	R, A, M := config.ModeReport, config.ModeAlert, config.ModeRemediate
	tests := []struct {
		run      config.Mode
		explicit bool
		tag      config.Mode
		want     config.Mode
	}{
		{M, false, "", M},
		{M, false, A, A},
		{M, false, R, R},
		{A, false, M, M}, // a tag overrides the deployed default
		{R, false, M, M},
		{R, true, M, R}, // a manual report never writes
		{A, true, M, A},
		{A, true, R, R}, // a tag can still make it more careful
		{M, true, A, A},
	}
	for _, tt := range tests {
		if got := EffectiveMode(tt.run, tt.explicit, tt.tag); got != tt.want {
			t.Errorf("EffectiveMode(%s, explicit=%v, tag=%q) = %s, want %s", tt.run, tt.explicit, tt.tag, got, tt.want)
		}
	}
}

func FuzzMerge(f *testing.F) {
	f.Add(t1+","+t2, t3+",bad,"+t1)
	f.Add("", "")
	f.Add(strings.ToUpper(t1), t1+","+t2+","+t3+","+t4+","+t5+","+t6)
	f.Fuzz(func(t *testing.T, liveCSV, storedCSV string) {
		live := strings.Split(liveCSV, ",")
		stored := strings.Split(storedCSV, ",")
		list, dropped := Merge(live, stored, LastSeen{strings.ToLower(stored[len(stored)-1]): time.Unix(1, 0)})
		if len(list) > 5 {
			t.Fatalf("list of %d entries", len(list))
		}
		seen := map[string]bool{}
		for _, e := range list {
			k := strings.ToLower(e)
			if seen[k] {
				t.Fatalf("duplicate %q in %v", e, list)
			}
			seen[k] = true
		}
		for _, s := range stored {
			if !seen[strings.ToLower(s)] && len(list) < 5 && !contains(dropped, s) {
				t.Fatalf("stored %q lost though the list has room: %v", s, list)
			}
		}
		// live entries come first, lowercased, in the order seen.
		var prefix []string
		seenLive := map[string]bool{}
		for _, l := range live {
			if k := strings.ToLower(l); !seenLive[k] && len(prefix) < 5 {
				seenLive[k] = true
				prefix = append(prefix, k)
			}
		}
		if len(list) < len(prefix) || !reflect.DeepEqual(list[:len(prefix)], prefix) {
			t.Fatalf("list %v does not start with the live thumbprints %v", list, prefix)
		}
	})
}

func FuzzParsePolicy(f *testing.F) {
	f.Add("remediate", "true")
	f.Add("IGNORE", "")
	f.Add("\x00", "maybe")
	f.Fuzz(func(t *testing.T, mode, allow string) {
		p := ParsePolicy(map[string]string{TagMode: mode, TagAllowUnverified: allow})
		if p.Ignore && p.Mode != "" {
			t.Fatalf("ignore and mode %q both set", p.Mode)
		}
		if p.Mode != "" {
			if _, err := config.ParseMode(string(p.Mode)); err != nil {
				t.Fatalf("mode %q not a valid mode", p.Mode)
			}
		}
		if p.AllowUnverified && !strings.EqualFold(strings.TrimSpace(allow), "true") {
			t.Fatalf("allow-unverified from %q", allow)
		}
	})
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestWorkOrder(t *testing.T) {
	p := func(url string) string { return "arn:aws:iam::123456789012:oidc-provider/" + url }
	arns := []string{p("a.example/1"), p("a.example/2"), p("a.example/3"), p("b.example"), p("c.example:8443/x"), p("c.example:8443/y"), p("odd")}
	got := WorkOrder(arns)
	want := []int{0, 3, 4, 6, 1, 5, 2}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("WorkOrder = %v, want %v", got, want)
	}
	if len(WorkOrder(nil)) != 0 {
		t.Fatal("WorkOrder(nil) not empty")
	}
}

func tagged(tool string) iac.Owner {
	return iac.Ownership(map[string]string{iac.TagManagedBy: tool}, nil, false)
}
