package samtemplate

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/thumbprint-drift/thumbprint-drift/internal/rehearsal"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer"
	"github.com/thumbprint-drift/thumbprint-drift/internal/testpeer/peertest"
)

// onBehalf are actions a role must allow that the function never calls
// itself, so the rehearsal cannot record them, with who calls them.
var onBehalf = map[string]string{
	"kms:GenerateDataKey*": "SNS, encrypting each message with the topic's key for the publisher",
	"kms:Decrypt":          "SNS, encrypting each message with the topic's key for the publisher",
	"logs:CreateLogStream": "Lambda, writing the function's logs",
	"logs:PutLogEvents":    "Lambda, writing the function's logs",
	"sqs:SendMessage":      "Lambda, sending a failed asynchronous invocation to the on-failure destination",
}

// TestRoleActionsAreTheRehearsedCalls derives the roles' action lists from
// the deploy rehearsal (make rehearse): every action the function role or the
// member role allows, in any parameter set of the matrix, was called by the
// real function in a set that allows it, or is called on the function's
// behalf (onBehalf). The rehearsal itself fails a call no policy allows.
func TestRoleActionsAreTheRehearsedCalls(t *testing.T) {
	if testing.Short() {
		t.Skip("the rehearsal of every parameter set takes tens of seconds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	results, err := rehearsal.Run(ctx, rehearsal.Options{Root: repoRoot(t)})
	if errors.Is(err, testpeer.ErrMissing) {
		peertest.Missing(t, "moto_server and python3 with aws-sam-translator")
	}
	if err != nil {
		t.Fatalf("rehearsal: %v", err)
	}
	for _, role := range []string{"function", "member"} {
		granted, called := map[string][]string{}, map[string]bool{}
		for _, r := range results {
			for _, s := range r.Policies[role] {
				if s.Effect == "Allow" {
					for _, a := range s.Action {
						granted[a] = append(granted[a], r.Set.Name)
					}
				}
			}
			for _, a := range r.Actions(role) {
				called[a] = true
			}
		}
		if len(granted) == 0 {
			t.Errorf("no set of the matrix made a call as the %s role", role)
		}
		for _, a := range slices.Sorted(maps.Keys(granted)) {
			used := slices.ContainsFunc(slices.Collect(maps.Keys(called)), func(c string) bool { return rehearsal.Wildcard(a, c, true) })
			if !used && onBehalf[a] == "" {
				t.Errorf("the %s role allows %s (sets %v), and the function never called it in the rehearsal: remove it, or name who calls it in onBehalf", role, a, granted[a])
			}
		}
		t.Logf("%s role: called %v", role, slices.Sorted(maps.Keys(called)))
	}
}
