# docflow: the commands the README opens with, and the ones around them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO_NEXTEST := $(shell command -v cargo-nextest 2>/dev/null)

help: ## List targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

services: ## Start local Postgres and RabbitMQ if they are down
	@scripts/ensure-services.sh

nextest:
ifndef CARGO_NEXTEST
	cargo install --locked cargo-nextest
endif

test: services nextest ## Run every test against the local Postgres and RabbitMQ (and a headless Chromium)
	scripts/ensure-browser.sh
	scripts/ensure-blob-servers.sh
	scripts/check-deploy.sh
	scripts/sqlx-prepare.sh --check
	cargo nextest run --workspace --no-fail-fast

sqlx-prepare: services ## Regenerate .sqlx/ after changing a query or a migration
	scripts/sqlx-prepare.sh

run: services ## Run the platform locally and process a sample document
	@scripts/run-local.sh $(RUN_ARGS)

install: ## Install the `docflow` CLI into ~/.cargo/bin (cargo install --path services/docflow-cli --locked)
	cargo install --path services/docflow-cli --locked

build: ## Build every service in release mode
	cargo build --release --workspace

BENCH_ARGS ?= --repeat 3
BASELINE_N ?= 3000

bench: services ## Load generator (release): the real services, measured 3 times per phase: throughput, latency, CPU, per-job counts (~9 min run; BENCHMARKS.md)
	cargo build --release --bin ingest-api --bin worker --bin metrics-tracker --bin docflow-bench
	target/release/docflow-bench $(BENCH_ARGS)

bench-baseline: services ## The Celery baseline (../shared/baseline-celery, ~5 min), then `make bench` with the ratios to it
	../shared/baseline-celery/run.sh $(BASELINE_N)
	$(MAKE) bench BENCH_ARGS="$(BENCH_ARGS) --baseline $$(ls -t /tmp/celery-baseline/run-*.json | head -1)"

bench-micro: services ## Criterion micro-benchmarks: ingest vs a direct transaction; metrics report vs a raw scan; console overview render
	cargo bench -p ingest-api --bench submit
	cargo bench -p metrics-tracker --bench report
	cargo bench -p dlq-admin --bench overview

N ?= 10000
RATE ?= 60

chaos: services nextest ## Soak: N jobs (RATE/s) through kill -9, broker and database cuts and SIGTERM; prints lost/duplicated and recovery times
	CHAOS_JOBS=$(N) CHAOS_RATE=$(RATE) cargo nextest run --workspace --no-capture --no-fail-fast \
		-E 'test(=chaos::chaos_every_job_completes_exactly_once)'

CORPUS ?= ../shared/corpus/einvoice-zugferd
EVAL_JSON ?= target/eval.json

eval: ## Score field extraction on the e-invoice corpus (structured reader and visible text), JSON to $(EVAL_JSON)
	@test -d "$(CORPUS)" || { echo "corpus not found at $(CORPUS) (set CORPUS=...)"; exit 1; }
	cargo run --release -p pipeline --example eval -- "$(CORPUS)" --json "$(EVAL_JSON)" $(EVAL_ARGS)

lint: ## Formatting and clippy, warnings as errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

.PHONY: help services nextest test sqlx-prepare run install build bench bench-baseline bench-micro chaos eval lint
