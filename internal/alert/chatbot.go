package alert

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/thumbprint-drift/thumbprint-drift/internal/drift"
	"github.com/thumbprint-drift/thumbprint-drift/internal/iac"
)

// Chatbot is an AWS Chatbot (Amazon Q Developer in chat applications) custom
// notification: what ALERT_FORMAT=chatbot publishes as the default variant,
// so a Slack or Microsoft Teams channel subscribed to the topic shows it.
type Chatbot struct {
	// Version must be "1.0".
	Version string `json:"version"`
	// Source must be "custom".
	Source   string          `json:"source"`
	ID       string          `json:"id"`
	Content  ChatbotContent  `json:"content"`
	Metadata ChatbotMetadata `json:"metadata"`
}

// ChatbotContent is what the channel shows.
type ChatbotContent struct {
	// TextType is "client-markdown", the only type Chatbot renders.
	TextType    string   `json:"textType"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	NextSteps   []string `json:"nextSteps"`
	Keywords    []string `json:"keywords"`
}

// ChatbotMetadata threads and annotates the notification.
type ChatbotMetadata struct {
	// ThreadID groups the notifications of one host in one thread.
	ThreadID         string   `json:"threadId"`
	Summary          string   `json:"summary"`
	EventType        string   `json:"eventType"`
	RelatedResources []string `json:"relatedResources"`
	// AdditionalContext holds the key fields and, under "document", the JSON
	// document as a string.
	AdditionalContext map[string]string `json:"additionalContext"`
}

// chatbotListed is how many providers a notification's description and
// next steps name; the document in additionalContext lists every one that fit.
const chatbotListed = 10

// ChatbotNotification is d as an AWS Chatbot custom notification (JSON).
func ChatbotNotification(d Document) (string, error) {
	doc, err := marshal(d)
	if err != nil {
		return "", err
	}
	n := Chatbot{
		Version: "1.0",
		Source:  "custom",
		ID:      chatbotID(d),
		Content: ChatbotContent{
			TextType:    "client-markdown",
			Title:       fmt.Sprintf("%s %s", severityEmoji(d), headline(d)),
			Description: chatbotDescription(d),
			NextSteps:   chatbotNextSteps(d),
			Keywords:    chatbotKeywords(d),
		},
		Metadata: ChatbotMetadata{
			ThreadID:         "thumbprint-drift/" + hostOr(d),
			Summary:          fmt.Sprintf("thumbprint-drift: %s %s %s (%s)", d.Transition, d.Outcome, hostOr(d), count(d)),
			EventType:        DetailType(d.Transition),
			RelatedResources: []string{},
			AdditionalContext: map[string]string{
				"transition":       string(d.Transition),
				"outcome":          string(d.Outcome),
				"severity":         string(d.Severity),
				"host":             d.Host,
				"live_thumbprints": strings.Join(d.LiveThumbprints, " "),
				"mode":             d.Mode,
				"checked_at":       d.CheckedAt,
				"count":            strconv.Itoa(d.Count),
				"omitted":          strconv.Itoa(d.Omitted),
				"document":         doc,
			},
		},
	}
	for _, r := range d.Results {
		if r.ProviderARN != "" {
			n.Metadata.RelatedResources = append(n.Metadata.RelatedResources, r.ProviderARN)
		}
	}
	if len(d.Results) == 1 && d.Results[0].ManagedBy != "" {
		n.Metadata.AdditionalContext["managed_by"] = d.Results[0].ManagedBy
		n.Metadata.AdditionalContext["code_fix"] = d.Results[0].CodeFix
	}
	return marshal(n)
}

// chatbotID identifies the notification: the same message of the same run
// has the same id.
func chatbotID(d Document) string {
	h := sha256.Sum256([]byte(strings.Join([]string{string(d.Transition), string(d.Outcome), d.Host,
		strings.Join(d.LiveThumbprints, ","), d.CheckedAt}, "\n")))
	return "thumbprint-drift-" + hex.EncodeToString(h[:12])
}

func severityEmoji(d Document) string {
	switch {
	case d.Transition == TransitionResolved || d.Transition == TransitionApplied:
		return ":white_check_mark:"
	case d.Severity == drift.SeverityCritical:
		return ":rotating_light:"
	case d.Severity == drift.SeverityWarning:
		return ":warning:"
	}
	return ":information_source:"
}

func chatbotDescription(d Document) string {
	var b strings.Builder
	b.WriteString(happened(d))
	if len(d.LiveThumbprints) > 0 {
		fmt.Fprintf(&b, "\nLive thumbprint(s): `%s`", strings.Join(d.LiveThumbprints, "`, `"))
	}
	fmt.Fprintf(&b, "\n*What breaks:* %s\n", breaks(d))
	for i, r := range d.Results {
		if i == chatbotListed {
			break
		}
		name := r.ProviderARN
		if name == "" {
			name = "account " + r.AccountID
		}
		mark := ""
		if r.BreaksAssumeRole {
			mark = " *breaks AssumeRoleWithWebIdentity*"
		}
		fmt.Fprintf(&b, "\n• `%s`%s", name, mark)
	}
	if more := d.Count - min(len(d.Results), chatbotListed); more > 0 {
		fmt.Fprintf(&b, "\n…and %d more (the document in additionalContext lists %d; the function's log names every one).", more, len(d.Results))
	}
	return b.String()
}

func chatbotNextSteps(d Document) []string {
	steps := []string{}
	for _, r := range d.Results {
		if r.Fix == "" && r.CodeFix == "" {
			continue
		}
		if len(steps) == chatbotListed {
			steps = append(steps, "Fix commands of the other providers: the email variant and the document.")
			break
		}
		switch {
		case r.CodeFix != "" && iac.Resource(iac.Tool(r.ManagedBy)) != "":
			// Owned by code: the change to make there, never a command the
			// next apply would undo.
			fix := "`" + r.CodeFix + "`"
			if strings.Contains(r.CodeFix, "\n") {
				fix = "```\n" + r.CodeFix + "\n```"
			}
			steps = append(steps, fmt.Sprintf("Change the code (%s `%s` of `%s`), then apply it: %s",
				r.ManagedBy, iac.Resource(iac.Tool(r.ManagedBy)), r.ProviderARN, fix))
		case r.CodeFix != "":
			steps = append(steps, fmt.Sprintf("Owned by code (%s): change it to declare this list, or run `%s`", r.ManagedBy, r.CodeFix))
		default:
			steps = append(steps, "`"+r.Fix+"`")
		}
	}
	text, _ := silence(d)
	if d.Outcome != drift.AccountFailed {
		text = "Silence a provider with the tag `" + TagMode + "=ignore` (or `=report`)."
	}
	return append(steps, text)
}

func chatbotKeywords(d Document) []string {
	k := []string{string(d.Transition), string(d.Outcome), string(d.Severity)}
	if d.Host != "" {
		k = append(k, d.Host)
	}
	return k
}
