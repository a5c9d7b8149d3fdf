# The shop's everyday commands; `make` alone lists them.
# Needs a Rust toolchain; PostgreSQL's server binaries and nats-server (and, optional,
# Prometheus) are installed by `tools/deps` when missing (Debian/Ubuntu, root or sudo),
# or it says what to run. No Docker.

CARGO ?= cargo
TARGET_DIR := $(if $(CARGO_TARGET_DIR),$(CARGO_TARGET_DIR),target)
# `make up PROFILE=release` runs optimised binaries (what the benchmarks use).
PROFILE ?= debug
PROFILE_FLAG := $(if $(filter release,$(PROFILE)),--release,)
STACK := $(TARGET_DIR)/$(PROFILE)/stack

.DEFAULT_GOAL := help
.PHONY: help deps up down reset build bins test lint bench check-deploy

help:
	@echo "make up      build, then run the whole shop here: Postgres, NATS, every service, Prometheus"
	@echo "             (installs what is missing first: tools/deps; data in .data/, Ctrl-C stops it all;"
	@echo "             SHOP_PG_PORT moves Postgres off 54329)"
	@echo "make down    stop a running 'make up' (from another terminal)"
	@echo "make reset   down, then delete .data/ (a fresh database next time)"
	@echo "make build   build every crate and test"
	@echo "make test    every test; the integration tests start their own Postgres and NATS"
	@echo "make lint    rustfmt check and clippy, warnings are errors"
	@echo "make check-deploy  validate the Dockerfile, compose, k8s/ and the Prometheus/Grafana assets"
	@echo "             (hadolint, Compose spec, kustomize + Kubernetes 1.30 schemas, promtool; no Docker needed)"
	@echo "make bench   load tests of a running stack: user (wrk) and catalog (start it with: make up PROFILE=release)"

# What the system must provide, checked first (and installed when it can be).
deps:
	tools/deps

up: deps bins
	$(STACK) up

down: $(STACK)
	$(STACK) down

reset: $(STACK)
	$(STACK) reset

# Only when missing: `down` must not wait for a build of the whole workspace.
$(STACK):
	$(CARGO) build $(PROFILE_FLAG) -p shop-stack --bin stack

build:
	$(CARGO) build --workspace --all-targets

bins:
	$(CARGO) build $(PROFILE_FLAG) --workspace --bins

# The e2e tests run the service binaries, which `cargo test` does not build for them.
test:
	SHOP_DEPS_OPTIONAL=0 tools/deps
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace

# Load-test the user service and the catalog of a running `make up PROFILE=release`
# (see bench/README.md; the reservation benchmark is self-contained, see there).
bench:
	bench/run
	LOAD=$(TARGET_DIR)/release/load bench/catalog
	BIN=$(TARGET_DIR)/release bench/gateway

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The deployment and observability assets, checked with real tools (installed when
# missing): see tools/check-deploy and docs/deploy.md.
check-deploy:
	tools/check-deploy
