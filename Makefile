# thumbprint-drift: build, test, lint, demo, deploy.
# `sam build` calls build-DriftCheckFunction (BuildMethod: makefile) with ARTIFACTS_DIR set.

GO            ?= go
ARTIFACTS_DIR ?= $(CURDIR)/.aws-sam/build/DriftCheckFunction
GOFLAGS_BUILD := -tags lambda.norpc -trimpath -ldflags='-s -w'

# The deployed stack, for validate/invoke/logs/delete. template.yaml names the
# function <stack>-drift-check and its log group /aws/lambda/<function>.
STACK_NAME    ?= thumbprint-drift
FUNCTION_NAME ?= $(STACK_NAME)-drift-check
LOG_GROUP     ?= /aws/lambda/$(FUNCTION_NAME)
EVENT         ?= events/manual-report.json
RESPONSE      ?= .aws-sam/invoke-response.json
SAM           := $(shell command -v sam 2>/dev/null)
AWS           := $(shell command -v aws 2>/dev/null)

.PHONY: all build build-DriftCheckFunction cli test test-short lint demo bench rehearse deploy clean validate invoke logs delete

all: lint test

build-DriftCheckFunction:
	mkdir -p $(ARTIFACTS_DIR)
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/drift-check

build: build-DriftCheckFunction cli

cli:
	mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/thumbprint-drift ./cmd/thumbprint-drift

# All tests: unit, integration against moto_server, local TLS identity providers,
# openssl and cfn-lint. Under CI=true a missing peer fails instead of skipping.
test:
	$(GO) test -race -count=1 -timeout 20m ./...

test-short:
	$(GO) test -short -count=1 ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cp go.mod /tmp/go.mod.lint && cp go.sum /tmp/go.sum.lint
	$(GO) mod tidy
	@if ! diff -q go.mod /tmp/go.mod.lint >/dev/null || ! diff -q go.sum /tmp/go.sum.lint >/dev/null; then \
		cp /tmp/go.mod.lint go.mod; cp /tmp/go.sum.lint go.sum; echo "go.mod/go.sum not tidy: run go mod tidy"; exit 1; fi
	cfn-lint template.yaml member-role.yaml

demo:
	$(GO) run ./cmd/demo

bench:
	$(GO) run ./cmd/bench

# The deploy rehearsal: for each parameter set of internal/rehearsal's matrix,
# template.yaml through aws-sam-translator (what sam deploy submits), the stack
# created in moto_server's CloudFormation, the real function run with the
# stack's environment and role, each AWS call it made checked against that
# role's policies, the stack deleted. SET=name runs one set.
rehearse:
	$(GO) run ./cmd/rehearse $(if $(SET),-set $(SET))

deploy:
	sam build && sam deploy

# cfn-lint on both templates (it applies the SAM transform itself); SAM's own
# validation too when the SAM CLI is installed.
validate:
	cfn-lint template.yaml member-role.yaml
ifneq ($(SAM),)
	sam validate --lint
endif

# Runs the deployed function once with $(EVENT) (default: a report-mode run that
# writes and alerts nothing) and prints its report. The AWS CLI's 60 s read timeout
# is lifted: a run may take the function's whole 300 s, and the CLI would otherwise
# invoke it again on timeout.
invoke:
ifneq ($(AWS),)
	@mkdir -p $(dir $(RESPONSE))
	aws lambda invoke --function-name $(FUNCTION_NAME) --payload fileb://$(EVENT) --cli-read-timeout 0 $(RESPONSE) >&2
	@cat $(RESPONSE); echo
else ifneq ($(SAM),)
	sam remote invoke DriftCheckFunction --stack-name $(STACK_NAME) --event-file $(EVENT)
else
	@echo "invoke needs the AWS CLI or the SAM CLI" >&2; exit 1
endif

# Follows the function's JSON log lines.
logs:
ifneq ($(SAM),)
	sam logs --stack-name $(STACK_NAME) --name DriftCheckFunction --tail
else ifneq ($(AWS),)
	aws logs tail $(LOG_GROUP) --follow --format short
else
	@echo "logs needs the SAM CLI or the AWS CLI v2" >&2; exit 1
endif

# Deletes the stack after asking. The alert state table is retained
# (DeletionPolicy: Retain): its name is printed first, to delete it by hand.
delete:
ifneq ($(AWS),)
	@echo "The alert state table is retained; to delete it afterwards: aws dynamodb delete-table --table-name" \
		"$$(aws cloudformation describe-stacks --stack-name $(STACK_NAME) --query "Stacks[0].Outputs[?OutputKey=='StateTableName'].OutputValue" --output text)"
endif
ifneq ($(SAM),)
	sam delete --stack-name $(STACK_NAME)
else ifneq ($(AWS),)
	@printf 'Delete stack %s? [y/N] ' $(STACK_NAME); read answer; [ "$$answer" = y ]
	aws cloudformation delete-stack --stack-name $(STACK_NAME)
	aws cloudformation wait stack-delete-complete --stack-name $(STACK_NAME)
else
	@echo "delete needs the SAM CLI or the AWS CLI" >&2; exit 1
endif

clean:
	rm -rf bin .aws-sam
