# Portier — `make` lists the targets.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
TAGS := sqlite_omit_load_extension
export CGO_ENABLED := 1

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@echo "Portier — targets:"
	@grep -hE '^[a-z][a-zA-Z0-9_-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: toolcheck
toolcheck:
	@command -v $(GO) >/dev/null || { echo "Go is not installed: see https://go.dev/doc/install (Go 1.26 or newer)"; exit 1; }
	@command -v $${CC:-cc} >/dev/null || { echo "No C compiler found: Portier uses SQLite through cgo. Install one: sudo apt-get install gcc"; exit 1; }

.PHONY: build
build: toolcheck ## build bin/portier for this machine
	$(GO) build -tags '$(TAGS)' -trimpath -ldflags '$(LDFLAGS)' -o bin/portier ./cmd/portier

.PHONY: demo
demo: build ## the demo: the agent on its embedded defaults (demo coworking site, simulated doors)
	$(GO) run ./cmd/portier-demo --portier bin/portier

.PHONY: test
test: toolcheck ## run all tests (race detector on)
	$(GO) test -tags '$(TAGS)' -race -count=1 -timeout 20m ./...

.PHONY: bench
bench: toolcheck ## run the benchmarks and print the figures the issues ask for (name=value)
	@set -o pipefail; $(GO) test -tags '$(TAGS)' -run '^$$' -bench . -benchtime=1x -timeout 30m ./... | tee bench.out | \
	  awk '/^Benchmark/ { for (i = 3; i <= NF; i++) if ($$i ~ /^[a-z0-9]+_[a-z0-9_]+$$/) print $$i "=" $$(i-1) } /^(FAIL|panic|---)/ { print > "/dev/stderr" }'

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each (default 20s)
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -tags '$(TAGS)' -run '^$$' -fuzz "^$$f\$$" -fuzztime $${FUZZTIME:-20s} $$pkg || exit 1; \
	  done; done

.PHONY: lint
lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags '$(TAGS)' ./...

.PHONY: clean
clean: ## remove build output
	rm -rf bin dist bench.out
