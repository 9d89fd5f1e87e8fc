# spotify_jobs: `make run` and `make test` are all a newcomer needs; both install into .venv when needed.
# The operator verbs (create-*-job, list-jobs, ...) keep the old manage-jobs.sh names and variables.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/.dagster_home

# Seed variables, passed through to the CLI's settings.
TENANT_ID ?=
PRIORITY ?=
RESOURCE_TIER ?=
DRY_RUN ?= false
PARALLEL_JOBS ?= 4
NAMESPACE ?= spotify-ai-agent-dev
ENVIRONMENT ?= development
export DRY_RUN PARALLEL_JOBS NAMESPACE ENVIRONMENT

.PHONY: install run dev lint format test system-deps clean help

help:
	@echo "make run    - install if needed, then run the main job on the embedded default"
	@echo "make test   - install if needed, then lint + the whole test suite"
	@echo "make dev    - the Dagster UI (webserver + daemon) on http://127.0.0.1:3000"
	@echo "make lint / format / install / system-deps / clean"

install: $(INSTALLED)

# torch first, pinned to the CPU build pip finds locally; the looser range in pyproject then installs nothing more.
$(INSTALLED): pyproject.toml setup.py spotify_jobs/etl/_export_reader.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

system-deps:
	bash scripts/install-system-deps.sh

run: $(INSTALLED) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/spotify-jobs run-main

dev: $(INSTALLED) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(INSTALLED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: $(INSTALLED) system-deps lint
	$(BIN)/pytest -n 2 --dist loadfile

clean:
	rm -rf $(DAGSTER_HOME) data build .pytest_cache .ruff_cache

include ops.mk
