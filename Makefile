# thumbprint-drift: build, test, lint, demo, deploy.
# `sam build` calls build-DriftCheckFunction (BuildMethod: makefile) with ARTIFACTS_DIR set.

GO            ?= go
ARTIFACTS_DIR ?= $(CURDIR)/.aws-sam/build/DriftCheckFunction
GOFLAGS_BUILD := -tags lambda.norpc -trimpath -ldflags='-s -w'

.PHONY: all build build-DriftCheckFunction cli test test-short lint demo bench deploy clean

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

deploy:
	sam build && sam deploy

clean:
	rm -rf bin .aws-sam
