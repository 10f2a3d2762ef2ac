package iac

import (
	"fmt"
	"strings"
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
