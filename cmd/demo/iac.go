package main

import (
	"context"
	"strings"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
)

// iac is scene 6, the fight that does not happen (DESIGN.md "Infrastructure
// as code"): the function applies a list to p; Terraform's next apply sets
// it back (the demo makes the IAM change itself, then sends the
// Terraform-shaped CloudTrail event); the function reports reverted, names
// Terraform and its role, gives the thumbprint_list to put in the code, and
// does not write; Terraform applies the same again: silent, not written;
// the code is fixed (the list set by a Terraform-shaped event): resolved.
func (d *demo) iac(ctx context.Context, p *provider) {
	const (
		sampleHost = "token.actions.githubusercontent.com"
		sampleList = `"1b511abead59c6ce207077c0bf0e0043b1382612"` // the Terraform sample's thumbprintList
		createHost = "gitlab.example.com"
		sampleTime = "2025-01-15T15:41:09Z" // the Terraform sample's eventTime
	)
	// Each event is made now, as CloudTrail would, after the function's write.
	now := func() string { return time.Now().UTC().Format(time.RFC3339) }
	d.line("\n== Scene 6: infrastructure as code, the fight that does not happen (events/cloudtrail-update-thumbprint.json)")
	d.para("  ", "(7) "+p.url+" is declared in Terraform with a stale thumbprint, untagged, and no Terraform event has reached "+
		"the function yet; its creation (the CLI sample, naming (7)) is checked and the function applies the live list:")
	d.do(d.w.create(ctx, p))
	r1 := d.invoke(ctx, "cloudtrail-create.json", createHost, p.url)
	d.show(r1, "")
	d.expect("iac apply", r1, map[int]string{7: "updated applied"}, 1)
	var wrote []string
	if r := resultFor(r1, p.arn); r != nil {
		wrote = r.NewThumbprints
	}

	d.para("  ", "terraform apply sets thumbprint_list back to ["+p.stored+"] (Terraform compares the list, in order, with its "+
		"code); CloudTrail sends its UpdateOpenIDConnectProviderThumbprint (the Terraform sample, naming (7)):")
	d.do(d.w.setThumbprints(ctx, p, []string{p.stored}))
	r2 := d.invoke(ctx, "cloudtrail-update-thumbprint.json", sampleHost, p.url, sampleList, `"`+p.stored+`"`, sampleTime, now())
	d.show(r2, drift.Reverted)
	d.expect("iac revert", r2, map[int]string{7: "reverted new"}, 1)
	d.check(strings.Join(d.w.stored(ctx, p), " ") == p.stored, "iac revert: (7) written after Terraform set it back")
	if r := resultFor(r2, p.arn); r != nil {
		d.line("  managed_by %s; last_writer %s; not written: stored %s", r.ManagedBy, r.LastWriter, strings.Join(d.w.stored(ctx, p), " "))
		d.line("  code_fix   %s", r.CodeFix)
		d.check(r.ManagedBy == "terraform" && r.LastWriter != nil && r.LastWriter.Tool == "terraform" && strings.HasPrefix(r.CodeFix, "thumbprint_list = [") &&
			strings.Contains(r.Detail, "terraform (arn:aws:sts::123456789012:assumed-role/terraform-deploy/GitHubActions"),
			"iac revert: managed_by %q, last_writer %v, code_fix %q, detail %q", r.ManagedBy, r.LastWriter, r.CodeFix, r.Detail)
	}

	d.para("  ", "The next terraform apply (a CI pipeline on every merge) sets the same list and CloudTrail sends the event again:")
	r3 := d.invoke(ctx, "cloudtrail-update-thumbprint.json", sampleHost, p.url, sampleList, `"`+p.stored+`"`, sampleTime, now())
	d.show(r3, "")
	d.para("  ", "Silent, and nothing written: the function does not fight the code; the alert said what to change in it.")
	d.expect("iac apply again", r3, map[int]string{7: "reverted"}, 0)

	d.para("  ", "The team puts the alert's thumbprint_list in the code; terraform apply writes it and CloudTrail sends the event:")
	d.do(d.w.setThumbprints(ctx, p, wrote))
	r4 := d.invoke(ctx, "cloudtrail-update-thumbprint.json", sampleHost, p.url, sampleList, `"`+strings.Join(wrote, `", "`)+`"`, sampleTime, now())
	d.show(r4, "")
	d.expect("iac fixed", r4, map[int]string{7: "in-sync resolved"}, 1)
}
