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
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/thumbprint-drift/thumbprint-drift/internal/awsclient"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/oidcprovider"
	"github.com/thumbprint-drift/thumbprint-drift/internal/thumbprint"
)

// SeenRecorder remembers, in the state table, that thumbprints of a provider
// count as seen live at a time, so the engine's merge keeps them ahead of
// entries never seen until the new chain goes live.
type SeenRecorder interface {
	RecordSeen(ctx context.Context, providerARN string, thumbprints []string, at time.Time) error
}

// NewSeenRecorder opens the state table for stage; set by the state store's
// wiring (nil: stage cannot record, and says so when --state-table is given).
var NewSeenRecorder func(ctx context.Context, table string) (SeenRecorder, error)

// ErrStageFull: the live thumbprints already fill the list, so the next one
// cannot be added without dropping a live one.
var ErrStageFull = errors.New("no room for the next thumbprint")

// PlanStage is the list stage writes: the live thumbprints first, then next,
// then the stored entries without them (malformed ones dropped), cut to 5.
// It never drops a live thumbprint: when live and next do not fit in 5 it is
// ErrStageFull. The second result tells whether the list changes.
func PlanStage(live, stored []string, next string) ([]string, bool, error) {
	next = strings.ToLower(next)
	var list []string
	seen := map[string]bool{}
	add := func(t string) {
		t = strings.ToLower(t)
		if !seen[t] && len(list) < oidcprovider.MaxThumbprints {
			list = append(list, t)
		}
		seen[t] = true
	}
	for _, l := range live {
		add(l)
	}
	if !seen[next] && len(list) == oidcprovider.MaxThumbprints {
		return nil, false, fmt.Errorf("%w: the %d live thumbprints fill IAM's limit of %d", ErrStageFull, len(list), oidcprovider.MaxThumbprints)
	}
	add(next)
	for _, s := range stored {
		if oidcprovider.ValidThumbprint(s) {
			add(s)
		}
	}
	if err := oidcprovider.ValidateList(list); err != nil {
		return nil, false, err
	}
	return list, !oidcprovider.SameList(list, stored), nil
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

const stageUsage = `usage: thumbprint-drift stage --provider ARN (--thumbprint HEX | --pem FILE) [--dry-run] [--state-table NAME]

Adds the next certificate's thumbprint to a provider ahead of a planned rotation:
the live thumbprints stay first, the staged one follows, older stored entries after,
at most 5; a live thumbprint is never dropped. With a state table the staged
thumbprint is recorded as seen, so the scheduled check keeps it until the new
chain goes live. --pem takes the last certificate in the file (the one the
openssl procedure hashes when the server sends that chain).

Exit codes: 0 staged (or already there), 1 could not run (AWS or the probe failed),
2 usage error (bad flag, thumbprint, PEM file or unknown provider).

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
	live, err := thumbprint.New(thumbprint.Options{Handshakes: cfg.ProbeHandshakes, Timeout: *timeout}).NewRun().Probe(pctx, p.URL)
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "stage: probe %s to learn the live thumbprints (never dropped): %v; nothing written\n", p.URL, err)
		return ExitError
	}
	list, changed, err := PlanStage(live.Thumbprints, p.Thumbprints, next)
	if err != nil {
		fmt.Fprintf(stderr, "stage: %s: %v; nothing written\n", *arn, err)
		return ExitError
	}
	fmt.Fprintf(stdout, "provider  %s\nlive      %s\nstored    %s\nstaged    %s\nnew list  %s\n", *arn,
		listOrDash(live.Thumbprints), listOrDash(p.Thumbprints), next, listOrDash(list))
	if *dryRun {
		fmt.Fprintln(stdout, "dry run: nothing written")
		return ExitOK
	}
	if changed {
		// Read again just before writing: never overwrite someone else's change.
		cur, err := store.Get(ctx, *arn)
		if err != nil {
			fmt.Fprintf(stderr, "stage: re-read %s before writing: %v; nothing written\n", *arn, err)
			return ExitError
		}
		if !oidcprovider.SameList(cur.Thumbprints, p.Thumbprints) {
			fmt.Fprintf(stderr, "stage: %s changed from %q to %q while staging; nothing written, run stage again\n", *arn, p.Thumbprints, cur.Thumbprints)
			return ExitError
		}
		if err := store.Update(ctx, *arn, list); err != nil {
			fmt.Fprintf(stderr, "stage: %v\n", err)
			return ExitError
		}
		fmt.Fprintln(stdout, "written")
	} else {
		fmt.Fprintln(stdout, "already staged: list unchanged")
	}
	if *table != "" {
		rec, err := NewSeenRecorder(ctx, *table)
		if err == nil {
			err = rec.RecordSeen(ctx, *arn, []string{next}, time.Now().UTC())
		}
		if err != nil {
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
