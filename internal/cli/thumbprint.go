package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/thumbprint"
)

// Limits of the thumbprint command's flags (as PROBE_HANDSHAKES).
const (
	minHandshakes = 1
	maxHandshakes = 5
)

// RunThumbprint implements `thumbprint-drift thumbprint [flags] URL`: it
// computes the live thumbprint of an OIDC issuer as AWS does, and prints each
// host's chains, the live thumbprints and whether the chains are publicly
// trusted. URL may carry https:// or not; flags may come before or after it.
// Exit codes: ExitOK printed, ExitError the probe failed, ExitUsage bad usage.
func RunThumbprint(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("thumbprint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	output := fs.String("output", "table", "table or json")
	handshakes := fs.Int("handshakes", thumbprint.DefaultHandshakes, "TLS handshakes per host, 1 to 5 (servers may alternate chains)")
	timeout := fs.Duration("timeout", 10*time.Second, "time limit of the whole probe")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: thumbprint-drift thumbprint [--output table|json] [--handshakes N] [--timeout D] URL\n\n"+
			"URL is the provider Url as IAM stores it (host[:port][/path]), with or without https://.\n"+
			"HTTPS_PROXY/NO_PROXY are honoured; SSL_CERT_FILE/SSL_CERT_DIR set the trusted roots.\n"+
			"--output json uses the check report's field names (url, live_thumbprints, publicly_trusted).\n\n")
		fs.PrintDefaults()
		fmt.Fprint(stderr, "\n"+exitCodes)
	}
	urls, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	switch {
	case len(urls) != 1:
		fmt.Fprintf(stderr, "thumbprint: want exactly one URL, got %d\n", len(urls))
		fs.Usage()
		return ExitUsage
	case *output != "table" && *output != "json":
		fmt.Fprintf(stderr, "thumbprint: --output %q: want table or json\n", *output)
		return ExitUsage
	case *handshakes < minHandshakes || *handshakes > maxHandshakes:
		fmt.Fprintf(stderr, "thumbprint: --handshakes %d: want %d to %d\n", *handshakes, minHandshakes, maxHandshakes)
		return ExitUsage
	case *timeout <= 0:
		fmt.Fprintf(stderr, "thumbprint: --timeout %v: want a positive duration\n", *timeout)
		return ExitUsage
	}
	if _, err := thumbprint.IssuerHost(urls[0]); err != nil {
		fmt.Fprintf(stderr, "thumbprint: URL %q: %v; want host[:port][/path], with or without https://\n", urls[0], err)
		return ExitUsage
	}

	p := thumbprint.New(thumbprint.Options{Handshakes: *handshakes, Timeout: *timeout})
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := p.Probe(ctx, urls[0])
	if err != nil {
		fmt.Fprintf(stderr, "thumbprint: %v\n", err)
		return ExitError
	}
	if *output == "json" {
		err = writeResultJSON(stdout, res)
	} else {
		err = writeResultTable(stdout, res)
	}
	if err != nil {
		fmt.Fprintf(stderr, "thumbprint: write output: %v\n", err)
		return ExitError
	}
	return ExitOK
}

// parseInterleaved parses flags placed before and after positional
// arguments (everything after "--" is positional) and returns the positionals.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// ProbeOutput is the thumbprint command's JSON: the probe's result with the
// field names of the check report's results (live_thumbprints, url,
// publicly_trusted), so one jq filter reads both.
type ProbeOutput struct {
	*thumbprint.Result
	// LiveThumbprints is Result.Thumbprints under the report's name.
	LiveThumbprints []string `json:"live_thumbprints"`
	// Thumbprints is always nil: at the outer level it hides the embedded
	// Result's "thumbprints" key, and omitempty leaves it out.
	Thumbprints []string `json:"thumbprints,omitempty"`
}

func writeResultJSON(w io.Writer, res *thumbprint.Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(ProbeOutput{Result: res, LiveThumbprints: res.Thumbprints})
}

// writeResultTable prints each host's chains, certificate by certificate,
// marking the thumbprint, then the live thumbprints and the trust verdict.
func writeResultTable(w io.Writer, res *thumbprint.Result) error {
	fmt.Fprintf(w, labelFormat, "issuer", res.Issuer)
	fmt.Fprintf(w, labelFormat, "jwks_uri", res.JWKSURI)
	fmt.Fprintf(w, labelFormat, "discovery TLS", "verified: "+verdict(res.DiscoveryVerified, res.DiscoveryVerifyError))
	for _, h := range res.Hosts {
		sni := h.ServerName
		if sni == "" {
			sni = "none (IP address)"
		}
		fmt.Fprintf(w, "\nhost %s  sni %s  handshakes %d  distinct chains %d\n", h.Host, sni, h.Handshakes, len(h.Chains))
		for i, c := range h.Chains {
			fmt.Fprintf(w, "  chain %d  verified: %s\n", i+1, verdict(c.Verified, c.VerifyError))
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "    #\tSUBJECT\tISSUER\tNOT AFTER\tSHA-1")
			for j, cert := range c.Certificates {
				mark := ""
				if j == len(c.Certificates)-1 {
					mark = "  <- thumbprint"
				}
				fmt.Fprintf(tw, "    %d\t%s\t%s\t%s\t%s%s\n", j+1, cert.Subject, cert.Issuer,
					cert.NotAfter.UTC().Format(time.RFC3339), cert.SHA1, mark)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, labelFormat, "live thumbprints", strings.Join(res.Thumbprints, " "))
	if _, err := fmt.Fprintf(w, labelFormat, "publicly_trusted", fmt.Sprint(res.PubliclyTrusted)); err != nil {
		return err
	}
	if !res.PubliclyTrusted {
		_, err := fmt.Fprintln(w, "\nNot every chain verified: STS accepts this provider's tokens only if its thumbprint list holds the live thumbprint.")
		return err
	}
	return nil
}

// labelFormat prints a label and its value in aligned columns.
const labelFormat = "%-18s%s\n"

func verdict(ok bool, reason string) string {
	if ok {
		return "yes"
	}
	if reason == "" {
		return "no"
	}
	return "no (" + reason + ")"
}
