package handler

import (
	"io"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// NewLogger returns the function's logger: Lambda's own JSON log handler (with
// the request id) when the function's log format is JSON, else a JSON handler
// to w, so logs are structured JSON everywhere.
func NewLogger(w io.Writer) *slog.Logger {
	if os.Getenv("AWS_LAMBDA_LOG_FORMAT") == "JSON" {
		return lambdacontext.NewLogger()
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{ReplaceAttr: lambdacontext.ReplaceAttr}))
}
