# agentd — run `make help` for the targets.

SHELL        := /bin/bash
BIN          := bin/agentd
PKG          := github.com/agentd/agentd
COMMIT       := $(shell git rev-parse --short=12 HEAD 2>/dev/null)
DATE         := $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
VERSION      ?= $(shell git describe --tags --match 'v*' 2>/dev/null | sed 's/^v//' || true)
ifeq ($(VERSION),)
VERSION      := 0.1.0~git$(COMMIT)
endif
ARCH         ?= $(shell go env GOARCH)
LDFLAGS      := -s -w -X $(PKG)/internal/buildinfo.Version=$(VERSION) \
                -X $(PKG)/internal/buildinfo.Commit=$(COMMIT) \
                -X $(PKG)/internal/buildinfo.Date=$(DATE)
NFPM_VERSION := v2.43.0
GOBIN        := $(shell go env GOPATH)/bin
TEST_FLAGS   ?= -race -timeout 30m

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the static binary into bin/agentd
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/agentd

.PHONY: run
run: build ## Build and run the daemon in the foreground (Ctrl-C stops it)
	./$(BIN) serve $(ARGS)

.PHONY: demo
demo: build ## Run the daemon on the built-in Ollama simulator, with demo scenarios
	./$(BIN) demo $(ARGS)

.PHONY: test
test: lint ## Lint, then run every test with the race detector
	go test $(TEST_FLAGS) ./...

.PHONY: fuzz
fuzz: ## Fuzz the plan validator, the plan parser and redaction for a bounded time (FUZZTIME, default 30s each)
	go test -run '^$$' -fuzz '^FuzzValidate$$' -fuzztime $(or $(FUZZTIME),30s) ./internal/plan
	go test -run '^$$' -fuzz '^FuzzParsePlan$$' -fuzztime $(or $(FUZZTIME),30s) ./internal/localplanner
	go test -run '^$$' -fuzz '^FuzzRedact$$' -fuzztime $(or $(FUZZTIME),30s) ./internal/fallback

.PHONY: lint
lint: ## go vet and a gofmt check
	go vet ./...
	@out="$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

.PHONY: bench
bench: build ## Run agentd bench on the simulator
	./$(BIN) bench --sim $(ARGS)

$(GOBIN)/nfpm:
	GOFLAGS= go install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

.PHONY: deb
deb: build $(GOBIN)/nfpm ## Build the Debian package into dist/
	@mkdir -p dist
	rm -f dist/agentd_*.deb
	gzip -9nc packaging/agentd.8 > dist/agentd.8.gz
	gzip -9nc packaging/changelog > dist/changelog.gz
	packaging/packaged-config.sh config.toml.example dist/config.toml
	./$(BIN) config check dist/config.toml
	VERSION='$(VERSION)' ARCH='$(ARCH)' $(GOBIN)/nfpm package --config packaging/nfpm.yaml --packager deb --target dist/

.PHONY: check-deb
check-deb: deb ## Check the package with lintian, then (as root, on a machine without agentd) install, verify the unit, purge
	lintian --fail-on error,warning dist/agentd_*.deb
	@if [ "$$(id -u)" = 0 ] && { dpkg -s agentd >/dev/null 2>&1 || [ -e /var/lib/agentd ] || id agentd >/dev/null 2>&1; }; then \
		echo "check-deb: agentd is installed here (package, /var/lib/agentd or the agentd user): the install/purge cycle would delete it — run check-deb in a throwaway container or VM"; \
		exit 1; \
	fi
	@if [ "$$(id -u)" = 0 ]; then \
		set -e; dpkg -i dist/agentd_*.deb; \
		id agentd; /usr/bin/agentd version; /usr/bin/agentd config check /etc/agentd/config.toml; \
		systemd-analyze verify --man=no /lib/systemd/system/agentd.service; \
		dpkg --purge agentd; ! id agentd 2>/dev/null; \
	else \
		echo "not root: skipping the install/verify/purge cycle"; \
	fi

.PHONY: clean
clean: ## Remove build outputs
	rm -rf bin dist screenshots
