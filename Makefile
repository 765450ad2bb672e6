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

.PHONY: test-daemon-race
test-daemon-race: toolcheck ## the end-to-end tests with the portier they start built with the race detector too (~6 min)
	PORTIER_E2E_RACE=1 $(GO) test -tags '$(TAGS)' -race -count=1 -timeout 30m ./cmd/portier/

.PHONY: bench
bench: toolcheck ## run the benchmarks and print the figures the issues ask for (name=value)
	@set -o pipefail; $(GO) test -tags '$(TAGS)' -run '^$$' -bench . -benchtime=1x -timeout 30m ./... | tee bench.out | \
	  awk '/^Benchmark/ { for (i = 3; i <= NF; i++) if ($$i ~ /^[a-z0-9]+_[a-z0-9_]+$$/) print $$i "=" $$(i-1) } /^(FAIL|panic|---)/ { print > "/dev/stderr" }'

.PHONY: fleet
fleet: toolcheck ## 200+ gateways on a 3-node RabbitMQ cluster, nodes killed: lost/duplicate/reconnect figures (docs/fleet.md)
	cloud/mqtt/fleet/fleet.sh full

.PHONY: fleet-ci
fleet-ci: toolcheck ## the fleet harness's small variant that CI runs (20 gateways, one node kill, one cluster restart)
	cloud/mqtt/fleet/fleet.sh ci

.PHONY: powercut
powercut: toolcheck ## cut the power CUTS times (default 200) under `portier run` on the power-cut test file system
	@set -o pipefail; PORTIER_POWERCUT_CUTS=$${CUTS:-200} $(GO) test -tags '$(TAGS)' -count=1 -timeout 60m -v -run '^TestPowerCut$$' ./cmd/portier/ | \
	  awk '/power_cut_points=/ { for (i = 1; i <= NF; i++) if ($$i ~ /^power_cut_[a-z]+=/) { sub(/;$$/, "", $$i); print $$i } } /^(--- FAIL|FAIL|panic)/ || /Error/ { print > "/dev/stderr" }'

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each (default 20s)
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -tags '$(TAGS)' -run '^$$' -fuzz "^$$f\$$" -fuzztime $${FUZZTIME:-20s} $$pkg || exit 1; \
	  done; done

# Cross builds: one cgo build per Debian architecture, into dist/<arch>/portier.
# CGO_ENABLED is exported above: with GOARCH set and cgo not forced, Go
# silently builds without cgo and go-sqlite3 becomes a stub that fails on the
# gateway (nocgo.go turns that into a compile error).
CROSS_ARCHES ?= arm64 armhf amd64
GOARCH_arm64 := arm64
GOARCH_armhf := arm
GOARCH_amd64 := amd64
GOARM_armhf := 7
CC_arm64 := aarch64-linux-gnu-gcc
CC_armhf := arm-linux-gnueabihf-gcc
CC_amd64 := x86_64-linux-gnu-gcc
CCPKG_arm64 := gcc-aarch64-linux-gnu
CCPKG_armhf := gcc-arm-linux-gnueabihf
CCPKG_amd64 := gcc-x86-64-linux-gnu (on an amd64 machine: gcc)

.PHONY: cross
cross: $(CROSS_ARCHES:%=dist-%) ## cgo builds for linux/arm64, linux/arm (armv7) and linux/amd64 into dist/<arch>/portier

.PHONY: $(CROSS_ARCHES:%=dist-%)
$(CROSS_ARCHES:%=dist-%): dist-%: toolcheck
	@command -v $(CC_$*) >/dev/null || { echo "make cross: $(CC_$*) not found: install Debian's C cross compiler for $*: sudo apt-get install $(CCPKG_$*)"; exit 1; }
	GOOS=linux GOARCH=$(GOARCH_$*) GOARM=$(GOARM_$*) CC=$(CC_$*) CGO_ENABLED=1 \
	  $(GO) build -tags '$(TAGS)' -trimpath -ldflags '-s -w $(LDFLAGS)' -o dist/$*/portier ./cmd/portier

# Packages: nfpm pinned in its own module (packaging/tools) so its dependency
# graph stays out of go.mod; v2.45.2 is the newest that installs from the
# module proxy. Debian versions must start with a digit: untagged builds
# become 0.0.0+git<describe>.
NFPM := .portier/tools/nfpm
DEB_VERSION ?= $(shell echo '$(VERSION)' | sed -E 's/^v//; /^[0-9]+\./!s/^/0.0.0+git/; s/-/+/; s/-/./g')

$(NFPM): packaging/tools/go.mod packaging/tools/go.sum
	cd packaging/tools && GOBIN=$(CURDIR)/.portier/tools $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm
	@touch $@

.PHONY: deb
deb: cross $(NFPM) ## one .deb per architecture into dist/ (packaging/nfpm.yaml)
	@set -e; for a in $(CROSS_ARCHES); do \
	  install -D -m 0755 dist/$$a/portier dist/pkgroot/portier; \
	  DEB_ARCH=$$a DEB_VERSION='$(DEB_VERSION)' $(NFPM) package --config packaging/nfpm.yaml --packager deb --target dist/; \
	done

.PHONY: lint
lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags '$(TAGS)' ./...
	$(GO) vet -tags '$(TAGS) fleet' ./cloud/mqtt/fleet/

.PHONY: clean
clean: ## remove build output
	rm -rf bin dist bench.out
