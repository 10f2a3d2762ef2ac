// Command drift-check is the Lambda function: on each invocation it checks the
// account's IAM OIDC providers' thumbprints and returns the report.
package main

import (
	"context"
	"os"
	"runtime/debug"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/thumbprint-drift/thumbprint-drift/internal/app"
	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
	"github.com/thumbprint-drift/thumbprint-drift/internal/handler"
)

func main() {
	ctx := context.Background()
	logger := handler.NewLogger(os.Stdout)
	if limit, ok := handler.MemoryLimit(os.Getenv); ok {
		debug.SetMemoryLimit(limit)
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		logger.ErrorContext(ctx, "bad configuration: nothing checked", "error", err.Error())
		os.Exit(1)
	}
	svc, err := app.New(ctx, cfg, logger)
	if err != nil {
		logger.ErrorContext(ctx, "start-up failed: nothing checked", "error", err.Error())
		os.Exit(1)
	}
	h := handler.New(svc.Engine, svc.Pipeline, logger, os.Stdout, os.Getenv("AWS_LAMBDA_FUNCTION_NAME"), cfg.Mode)
	if cfg.ShardBucket != "" {
		sharder, err := app.NewSharder(ctx, cfg, logger)
		if err != nil {
			logger.ErrorContext(ctx, "start-up failed: nothing checked", "error", err.Error())
			os.Exit(1)
		}
		h = h.WithSharder(sharder)
	}
	lambda.Start(h.Handle)
}
