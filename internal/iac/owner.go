package iac

import (
	"fmt"
	"strings"
	"time"
)

// TagManagedBy declares the code that owns a provider.
const TagManagedBy = "thumbprint-drift:managed-by"

// Owner says whether a provider is owned by code, and by what.
type Owner struct {
	// ManagedBy is the tag's value, else the recorded writer's tool; empty
	// when the provider is not owned by code.
	ManagedBy Tool
	// Why says how ownership was learnt, in a phrase a detail quotes.
	Why string
	// Warning names a managed-by tag value not understood (and ignored).
	Warning string
}

// Owned reports whether the provider is owned by code.
func (o Owner) Owned() bool { return o.ManagedBy != "" }

// Ownership decides whether a provider is owned by code (DESIGN.md
// "Infrastructure as code"): tagged thumbprint-drift:managed-by = terraform,
// cloudformation, pulumi, eksctl or other (case-insensitive; another value is
// ignored with a warning); or last written by terraform, cloudformation,
// pulumi or eksctl; or reverted once (a list the function applied was set
// back), whoever set it back: then ManagedBy is the last writer's tool, or
// unknown when no CloudTrail event named one. last may be nil.
func Ownership(tags map[string]string, last *Writer, reverted bool) Owner {
	var o Owner
	if v, ok := tags[TagManagedBy]; ok {
		switch t := Tool(strings.ToLower(strings.TrimSpace(v))); {
		case t.Code() || t == Other:
			o.ManagedBy = t
			o.Why = fmt.Sprintf("tagged %s=%s", TagManagedBy, t)
			return o
		default:
			o.Warning = fmt.Sprintf("tag %s=%q is not terraform, cloudformation, pulumi, eksctl or other; ignored", TagManagedBy, v)
		}
	}
	switch {
	case last != nil && last.Tool.Code():
		o.ManagedBy = last.Tool
		o.Why = "last written by " + last.String()
	case reverted:
		o.ManagedBy = Unknown
		if last != nil {
			o.ManagedBy = last.Tool
		}
		o.Why = "a list the function applied was set back by " + last.String()
	}
	return o
}

// NotWritten is the detail of a drift left in place because the provider is
// owned by code: why, and what to do instead.
func (o Owner) NotWritten() string {
	return fmt.Sprintf("owned by code (%s): not written, since the code's next apply would set it back; change the code (code_fix), or tag %s=remediate to let the function write it",
		o.Why, tagMode)
}

// tagMode is drift.TagMode, the tag that lets remediate write a provider owned by code.
const tagMode = "thumbprint-drift:mode"

// Revert is a list the function applied that another writer set back.
type Revert struct {
	// Wrote is the list the function applied, at WroteAt.
	Wrote   []string
	WroteAt time.Time
	// SetTo is the list found instead.
	SetTo []string
	// By is who set it back; nil when no CloudTrail event named a writer since
	// the function wrote.
	By *Writer
}

// SetBackBy is the writer who set back a list the function wrote at wroteAt:
// last, when it wrote since (or when is unknown); else nil (unknown).
// CloudTrail's eventTime counts whole seconds, so a write in the same second
// counts as since.
func SetBackBy(last *Writer, wroteAt time.Time) *Writer {
	if last == nil || !last.At.IsZero() && !wroteAt.IsZero() && last.At.Before(wroteAt.Truncate(time.Second)) {
		return nil
	}
	return last
}

// Detail says what happened, for the result's detail and the message.
func (r Revert) Detail() string {
	wrote := "the function wrote [" + strings.Join(r.Wrote, " ") + "]"
	if !r.WroteAt.IsZero() {
		wrote += " at " + r.WroteAt.UTC().Format(time.RFC3339)
	}
	by := "an unknown writer (no CloudTrail event since)"
	if r.By != nil {
		by = r.By.String()
	}
	return fmt.Sprintf("reverted: %s; %s set it back to [%s], without a live thumbprint; not written again: the provider is owned by code, put the list in the code (code_fix)",
		wrote, by, strings.Join(r.SetTo, " "))
}
