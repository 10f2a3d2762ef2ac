package main

import (
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
)

func TestParseFlags(t *testing.T) {
	def := config.Default()
	defaults := orgSetting{def.AccountConcurrency, def.Concurrency}
	o, err := parseFlags(nil, io.Discard)
	if err != nil || o.org != (load{Accounts: 1000, Providers: 5, Hosts: 3}) || o.orgSettings[0] != defaults || len(o.orgSettings) != 2 ||
		o.awsLatency != 50*time.Millisecond || len(o.loads) != 2 || !slices.Equal(o.conc, []int{1, 8, 32}) {
		t.Errorf("defaults: %+v, %v", o, err)
	}
	o, err = parseFlags([]string{"-quick"}, io.Discard)
	if err != nil || o.org.Accounts != 100 || !slices.Equal(o.orgSettings, []orgSetting{defaults}) || !slices.Equal(o.conc, []int{8}) || o.rssRuns != 1 {
		t.Errorf("-quick: %+v, %v", o, err)
	}
	o, err = parseFlags([]string{"-quick", "-org-accounts", "0", "-org-shape", "100x20", "-org-conc", "4/8, 20/8"}, io.Discard)
	if err != nil || o.org != (load{Accounts: 0, Providers: 100, Hosts: 20}) || !slices.Equal(o.orgSettings, []orgSetting{{4, 8}, {20, 8}}) || o.orgSettings[0].String() != "4/8" {
		t.Errorf("-quick with organisation flags: %+v, %v", o, err)
	}
	if o, err = parseFlags([]string{"-org-conc", "none"}, io.Discard); err != nil || len(o.orgSettings) != 0 {
		t.Errorf("-org-conc none: %+v, %v", o.orgSettings, err)
	}
	for _, bad := range [][]string{
		{"-org-shape", "5x6"}, {"-org-shape", "5x3,4x2"}, {"-org-accounts", "-1"}, {"-org-conc", "0/8"}, {"-org-conc", "4/65"},
		{"-org-conc", "4/8,"}, {"-aws-latency", "3s"}, {"-loads", "10x20"}, {"-conc", "0"}, {"extra"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestOrgModel(t *testing.T) {
	m := orgModel{
		Providers: 5, Setting: orgSetting{16, 8}, Latency: 50 * time.Millisecond, ListLatency: 50 * time.Millisecond, Probe: time.Second,
		DDBReads: 0.1, DDBWrites: 6.4, CPUPerAccount: 2 * time.Millisecond, RSSBaseMiB: 17, RSSPerAccountMiB: 0.01,
	}
	// 3 calls in sequence per account (AssumeRole, List, one round of 5 Gets)
	if m.chain() != 3 {
		t.Errorf("chain = %d, want 3", m.chain())
	}
	// 1 s + 500 pages x 50 ms + 625 waves x 150 ms + (1,000 reads + 64,000 writes / 16) x 10 ms
	if got, want := m.Network(10000), time.Second+25*time.Second+93750*time.Millisecond+50*time.Second; got != want {
		t.Errorf("Network(10000) = %v, want %v", got, want)
	}
	// 20 s of CPU at a quarter vCPU is 80 s (to the rounding of 1,769 / 442.25)
	if got := m.CPU(10000, lambdaMBPerVCPU/4); got < 79*time.Second || got > 81*time.Second {
		t.Errorf("CPU at a quarter vCPU = %v, want 80 s", got)
	}
	if got := m.Wall(10000, 128); got != m.CPU(10000, 128) || got < m.Network(10000) {
		t.Errorf("Wall at 128 MB = %v: want the CPU term (%v), above the network's (%v)", got, m.CPU(10000, 128), m.Network(10000))
	}
	if got := m.RSSMiB(10000); math.Abs(got-117) > 1e-9 {
		t.Errorf("RSS = %v MiB, want 117", got)
	}
	m.Providers, m.Setting.Conc = 20, 8 // ceil(20/8) = 3 rounds of Gets
	if m.chain() != 5 {
		t.Errorf("chain of 20 providers at C8 = %d, want 5", m.chain())
	}
	// The bench's limit: no DynamoDB, no listing latency; 20 accounts at 4
	// at a time are 5 waves of 5 calls.
	lim := orgModel{Providers: 20, Setting: orgSetting{4, 8}, Latency: 10 * time.Millisecond, Probe: time.Second}
	if got := lim.IAM(20); got != 250*time.Millisecond || lim.Network(20) != time.Second+250*time.Millisecond {
		t.Errorf("IAM(20) = %v, Network(20) = %v", got, lim.Network(20))
	}
}

func TestModelFromResults(t *testing.T) {
	r := &results{opts: options{rtt: 50 * time.Millisecond, awsLatency: 40 * time.Millisecond}}
	if _, ok := r.model(); ok {
		t.Fatal("a model without an organisation run")
	}
	r.fn.RSS = []invocation{{Measured: testpeer.Measured{HWMKiB: 16 << 10}}}
	r.org = &orgResults{Load: load{Accounts: 100, Providers: 5, Hosts: 3}, Runs: []orgRun{
		{Name: "in-process 16/8", Setting: orgSetting{16, 8}, CPU: 9 * time.Second, Took: 10 * time.Second,
			Limit: orgModel{Setting: orgSetting{16, 8}, Latency: 40 * time.Millisecond, Probe: 300 * time.Millisecond}},
		{Name: "bootstrap", Setting: orgSetting{8, 8}, CPU: time.Second, HWMKiB: 26 << 10, Took: 6 * time.Second,
			Limit: orgModel{Setting: orgSetting{8, 8}, Latency: 40 * time.Millisecond, Probe: 350 * time.Millisecond}},
	}}
	m, ok := r.model()
	if !ok || m.Setting != (orgSetting{8, 8}) || m.Latency != 40*time.Millisecond || m.ListLatency != m.Latency || m.Probe != 350*time.Millisecond ||
		m.CPUPerAccount != 10*time.Millisecond || m.RSSBaseMiB != 16 || math.Abs(m.RSSPerAccountMiB-0.1) > 1e-9 {
		t.Errorf("model %+v", m)
	}
	ts := r.targets()
	line := lastLine(ts)
	want := "bench: limit_ratio=n/a openssl_speedup=n/a cold_start_ms=n/a rss_mb=16.00 bootstrap_mb=n/a org_accounts_per_min=1000.00 org_rss_mb=26.00 handshakes_ratio=n/a cpu_ms_per_account=10.00 floor_ratio=n/a"
	if line != want {
		t.Errorf("last line\n%s\nwant\n%s", line, want)
	}
	r.org.Runs[1].Problem = "checked 4 of 500 providers"
	if !strings.Contains(lastLine(r.targets()), "org_accounts_per_min=n/a") {
		t.Error("a run with a problem still gave a rate")
	}
}
