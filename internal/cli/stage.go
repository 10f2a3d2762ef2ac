package cli

import (
	"context"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/thumbprint-drift/thumbprint-drift/internal/awsclient"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/iac"
	"github.com/thumbprint-drift/thumbprint-drift/internal/oidcprovider"
	"github.com/thumbprint-drift/thumbprint-drift/internal/thumbprint"
)

// SeenRecorder is the state table as stage uses it: when a provider's
// thumbprints were last seen live (within the window the engine's merge
// uses), and recording a staged thumbprint as seen, so the engine's merge
// keeps it ahead of entries never seen until the new chain goes live.
type SeenRecorder interface {
	// Recall is what the state remembers of a provider: when its
	// thumbprints were last seen live, its last writer, a revert.
	Recall(ctx context.Context, providerARN string, now time.Time) (drift.Recall, error)
	RecordSeen(ctx context.Context, providerARN string, thumbprints []string, at time.Time) error
}

// NewSeenRecorder opens the state table for stage; set by the state store's
// wiring (nil: stage cannot read or record, and says so when --state-table is given).
var NewSeenRecorder func(ctx context.Context, table string) (SeenRecorder, error)

// ErrStageFull: the live thumbprints (and those seen live recently) already
// fill the list, so the next one cannot be added without dropping one.
var ErrStageFull = errors.New("no room for the next thumbprint")

// StagePlan is what stage writes.
type StagePlan struct {
	// List is the new list.
	List []string
	// Changed tells whether List differs from the stored list.
	Changed bool
	// Withheld are live thumbprints not stored and not written: the live
	// chain is not publicly trusted and writing it was not allowed.
	Withheld []string
}

// PlanStage is the list stage writes: the live thumbprints first, then the
// stored entries seen live recently (seen, the state's record, most recent
// first: a server that alternates chains may not have shown them to this
// probe), then next, then the other stored entries (malformed ones dropped),
// cut to 5. It never drops a live thumbprint or one seen live recently: when
// they and next do not fit in 5 it is ErrStageFull. writeLive false (the
// live chain is not publicly trusted, and neither the provider's
// allow-unverified tag nor --allow-unverified allows it, the rule remediate
// applies) keeps the live thumbprints that are stored and withholds the
// others.
func PlanStage(live, stored []string, seen drift.LastSeen, next string, writeLive bool) (StagePlan, error) {
	next = strings.ToLower(next)
	var plan StagePlan
	have := map[string]bool{}
	add := func(t string) {
		t = strings.ToLower(t)
		if !have[t] && len(plan.List) < oidcprovider.MaxThumbprints {
			plan.List = append(plan.List, t)
		}
		have[t] = true
	}
	isStored := map[string]bool{}
	var valid []string
	for _, s := range stored {
		if oidcprovider.ValidThumbprint(s) {
			isStored[strings.ToLower(s)] = true
			valid = append(valid, s)
		}
	}
	for _, l := range live {
		if writeLive || isStored[strings.ToLower(l)] {
			add(l)
		} else if !slices.Contains(plan.Withheld, strings.ToLower(l)) {
			plan.Withheld = append(plan.Withheld, strings.ToLower(l))
		}
	}
	slices.SortStableFunc(valid, func(a, b string) int {
		return seen[strings.ToLower(b)].Compare(seen[strings.ToLower(a)])
	})
	kept := 0
	for _, s := range valid {
		if !seen[strings.ToLower(s)].IsZero() {
			add(s)
			kept++
		}
	}
	if !have[next] && len(have) >= oidcprovider.MaxThumbprints {
		return StagePlan{}, fmt.Errorf("%w: the %d live thumbprints and %d stored ones seen live recently fill IAM's limit of %d; "+
			"none can be dropped while the server may still send its chain", ErrStageFull, len(have)-kept, kept, oidcprovider.MaxThumbprints)
	}
	add(next)
	for _, s := range valid {
		add(s)
	}
	if err := oidcprovider.ValidateList(plan.List); err != nil {
		return StagePlan{}, err
	}
	plan.Changed = !oidcprovider.SameList(plan.List, stored)
	return plan, nil
}

// PEMThumbprint is the thumbprint of the last certificate in a PEM file: the
// certificate the openssl procedure hashes when the server sends that chain.
func PEMThumbprint(data []byte) (string, error) {
	var last []byte
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return "", fmt.Errorf("certificate is not valid X.509: %w", err)
		}
		last = b.Bytes
	}
	if last == nil {
		return "", errors.New("no PEM CERTIFICATE block")
	}
	sum := sha1.Sum(last)
	return hex.EncodeToString(sum[:]), nil
}

const stageUsage = `usage: thumbprint-drift stage --provider ARN (--thumbprint HEX | --pem FILE) [--dry-run] [--state-table NAME] [--allow-unverified] [--force]

Adds the next certificate's thumbprint to a provider ahead of a planned rotation:
the live thumbprints stay first, then the stored ones seen live recently (read from
the state table: a server alternating chains may not show every chain to one probe),
the staged one follows, older stored entries after, at most 5; a live thumbprint or
one seen live recently is never dropped, and stage refuses when they leave no room.
A live chain that is not publicly trusted is written under remediate's rule: its
thumbprint is added only when the provider is tagged
thumbprint-drift:allow-unverified=true or with --allow-unverified (verify it out of
band first); otherwise the given thumbprint is staged beside the stored list and
stage says so. With a state table the staged thumbprint is recorded as seen, so the
scheduled check keeps it until the new chain goes live. --pem takes the last
certificate in the file (the one the openssl procedure hashes when the server sends
that chain).

A provider owned by code (tagged thumbprint-drift:managed-by, last written by
Terraform, CloudFormation, Pulumi or eksctl as the state table recorded, or reverted
once) is not written without --force: its code's next apply would set the list back.
stage prints the change to make in the code instead (code fix).

Exit codes: 0 staged (or already there), 1 could not run (AWS, the state table or
the probe failed), 2 usage error (bad flag, thumbprint, PEM file or unknown
provider), 3 problem found: no room (the live thumbprints and those seen live
recently fill the list), or a provider owned by code without --force; nothing
written.

`

// RunStage implements `thumbprint-drift stage`.
func RunStage(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("stage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	arn := fs.String("provider", "", "ARN of the IAM OIDC provider")
	hexFlag := fs.String("thumbprint", "", "thumbprint to stage: 40 hex characters (SHA-1 of the certificate's DER)")
	pemFile := fs.String("pem", "", "PEM file of the next chain; its last certificate is hashed")
	dryRun := fs.Bool("dry-run", false, "show the list that would be written; write nothing")
	table := fs.String("state-table", os.Getenv("STATE_TABLE"), "DynamoDB state table to record the staged thumbprint in (default $STATE_TABLE)")
	timeout := fs.Duration("timeout", 10*time.Second, "time limit of the probe of the live thumbprints")
	force := fs.Bool("force", false, "write a provider owned by code (tagged "+iac.TagManagedBy+", last written by Terraform, CloudFormation, Pulumi or eksctl, or reverted once); its code's next apply sets the list back")
	allowUnverified := fs.Bool("allow-unverified", false, "write a live thumbprint whose chain is not publicly trusted (verified out of band), as the tag "+drift.TagAllowUnverified+"=true does")
	fs.Usage = func() { fmt.Fprint(stderr, stageUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "stage: "+format+"\n", a...)
		return ExitUsage
	}
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected argument %q", fs.Arg(0))
	case *arn == "":
		return usageErr("--provider is required")
	case !validARN(*arn):
		_, err := oidcprovider.ParseARN(*arn)
		return usageErr("--provider %v", err)
	case (*hexFlag == "") == (*pemFile == ""):
		return usageErr("give exactly one of --thumbprint and --pem")
	}
	next := strings.ToLower(strings.TrimSpace(*hexFlag))
	if *pemFile != "" {
		data, err := os.ReadFile(*pemFile)
		if err != nil {
			return usageErr("--pem %s: %v", *pemFile, err)
		}
		if next, err = PEMThumbprint(data); err != nil {
			return usageErr("--pem %s: %v", *pemFile, err)
		}
	} else if !oidcprovider.ValidThumbprint(next) {
		return usageErr("--thumbprint %q: want 40 hex characters (a SHA-1 thumbprint)", *hexFlag)
	}
	if *table != "" {
		if err := config.CheckTableName(*table); err != nil {
			return usageErr("--state-table %v", err)
		}
	}
	if *table != "" && NewSeenRecorder == nil {
		return usageErr("--state-table %s: this build cannot record in a state table", *table)
	}

	awsCfg, err := awsclient.Load(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "stage: %v\n", err)
		return ExitError
	}
	store := oidcprovider.New(iam.NewFromConfig(awsCfg))
	p, err := store.Get(ctx, *arn)
	if errors.Is(err, oidcprovider.ErrNotFound) {
		return usageErr("--provider %s: no such OIDC provider in this account", *arn)
	}
	if err != nil {
		fmt.Fprintf(stderr, "stage: %v\n", err)
		return ExitError
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "stage: %v\n", err)
		return ExitError
	}
	pctx, cancel := context.WithTimeout(ctx, *timeout)
	live, err := thumbprint.New(thumbprint.Options{Handshakes: cfg.ProbeHandshakes, Timeout: *timeout}).Probe(pctx, p.URL)
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "stage: probe %s to learn the live thumbprints (never dropped): %v; nothing written\n", p.URL, err)
		return ExitError
	}
	var rec SeenRecorder
	var seen drift.LastSeen
	var mem drift.Recall
	if *table != "" {
		if rec, err = NewSeenRecorder(ctx, *table); err == nil {
			mem, err = rec.Recall(ctx, *arn, time.Now().UTC())
			seen = mem.Seen
		}
		if err != nil {
			fmt.Fprintf(stderr, "stage: read when the thumbprints of %s were last seen live from %s: %v; nothing written\n", *arn, *table, err)
			return ExitError
		}
	}
	writeLive := live.PubliclyTrusted || *allowUnverified || drift.ParsePolicy(p.Tags).AllowUnverified
	plan, err := PlanStage(live.Thumbprints, p.Thumbprints, seen, next, writeLive)
	if errors.Is(err, ErrStageFull) {
		fmt.Fprintf(stderr, "stage: %s: %v; nothing written\n", *arn, err)
		return ExitProblems
	}
	if err != nil {
		fmt.Fprintf(stderr, "stage: %s: %v; nothing written\n", *arn, err)
		return ExitError
	}
	list := plan.List
	fmt.Fprintf(stdout, "provider  %s\nlive      %s\nstored    %s\n", *arn, listOrDash(live.Thumbprints), listOrDash(p.Thumbprints))
	if *table != "" {
		fmt.Fprintf(stdout, "seen      %s (seen live recently, from %s: kept like live ones)\n", listOrDash(seenStored(seen, p.Thumbprints)), *table)
	} else {
		fmt.Fprintln(stdout, "seen      - (no --state-table: only the chains this probe saw count as live)")
	}
	if !live.PubliclyTrusted {
		how := "writing it is allowed (" + drift.TagAllowUnverified + "=true or --allow-unverified)"
		if len(plan.Withheld) > 0 {
			how = fmt.Sprintf("its live thumbprint %s is not written: STS checks it, so verify it out of band, then tag %s=true or pass --allow-unverified",
				strings.Join(plan.Withheld, " "), drift.TagAllowUnverified)
		}
		fmt.Fprintf(stdout, "trusted   no: the live chain is not publicly trusted; %s\n", how)
	}
	fmt.Fprintf(stdout, "staged    %s\nnew list  %s\n", next, listOrDash(list))
	changed := plan.Changed
	// A provider owned by code: its next apply would set the list back, so
	// the change belongs in the code.
	owner := iac.Ownership(p.Tags, mem.Writer, !mem.RevertedAt.IsZero())
	if owner.Owned() {
		fmt.Fprintf(stdout, "managed   %s (%s)\n", owner.ManagedBy, owner.Why)
		if changed {
			printCode(stdout, "code fix  ", iac.CodeFix(owner.ManagedBy, *arn, list))
		}
	}
	if *dryRun {
		fmt.Fprintln(stdout, "dry run: nothing written")
		return ExitOK
	}
	if owner.Owned() && changed && !*force {
		fmt.Fprintf(stderr, "stage: %s is owned by code (%s): its next apply would set the list back; "+
			"change the code as printed (code fix), or pass --force to write it anyway; nothing written\n", *arn, owner.Why)
		return ExitProblems
	}
	if changed {
		// The compare-and-swap reads again just before writing: never
		// overwrite someone else's change.
		cur, err := store.UpdateIfUnchanged(ctx, *arn, p.Thumbprints, list)
		if errors.Is(err, oidcprovider.ErrChanged) {
			fmt.Fprintf(stderr, "stage: %s changed from %q to %q while staging; nothing written, run stage again\n", *arn, p.Thumbprints, cur.Thumbprints)
			return ExitError
		}
		if err != nil {
			fmt.Fprintf(stderr, "stage: %v; nothing written\n", err)
			return ExitError
		}
		fmt.Fprintln(stdout, "written")
	} else {
		fmt.Fprintln(stdout, "already staged: list unchanged")
	}
	if rec != nil {
		if err := rec.RecordSeen(ctx, *arn, []string{next}, time.Now().UTC()); err != nil {
			fmt.Fprintf(stderr, "stage: the list is written, but recording %s as seen in %s failed: %v; run stage again to record it\n", next, *table, err)
			return ExitError
		}
		fmt.Fprintf(stdout, "recorded  %s as seen in %s\n", next, *table)
	}
	return ExitOK
}

func validARN(arn string) bool {
	_, err := oidcprovider.ParseARN(arn)
	return err == nil
}

// seenStored are the stored entries seen live recently.
func seenStored(seen drift.LastSeen, stored []string) []string {
	var out []string
	for _, s := range stored {
		if !seen[strings.ToLower(s)].IsZero() {
			out = append(out, strings.ToLower(s))
		}
	}
	return out
}

// printCode prints a code fix, its first line after label and the others
// indented to the same column.
func printCode(w io.Writer, label, code string) {
	pad := strings.Repeat(" ", len(label))
	for i, l := range strings.Split(code, "\n") {
		if i == 0 {
			fmt.Fprintf(w, "%s%s\n", label, l)
		} else {
			fmt.Fprintf(w, "%s%s\n", pad, l)
		}
	}
}
