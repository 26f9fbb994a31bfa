# vprim — every entry point a user needs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
SCALE ?= small
VPRIM_ROOT ?= $(CURDIR)/data
DAGSTER_HOME ?= $(CURDIR)/.dagster_home
PYTEST_ARGS ?=
export DAGSTER_HOME VPRIM_ROOT

.PHONY: help setup rebuild-dataset test ui bench lint format clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	# torch first: 2.13.0 is a CPU wheel on this machine's disk; a looser pin downloads GBs.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/.installed ## create .venv and install vprim with its dev tools

rebuild-dataset: setup ## curate the default corpus (SCALE=tiny|small|full) or VPRIM_CATALOG into the lake
	$(BIN)/vprim rebuild-dataset --scale $(SCALE) --root $(VPRIM_ROOT)

test: setup ## run the test suite (what CI runs)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

ui: setup ## Dagster UI on http://127.0.0.1:3000 over the project's DAGSTER_HOME
	$(BIN)/vprim ui --host 127.0.0.1 --port 3000

bench: setup ## benchmarks: figures and ratios against peers measured in the same run
	$(BIN)/python -m vprim.assets.bench

lint: setup ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## remove generated data, DAGSTER_HOME and caches (keeps .venv)
	rm -rf data .dagster_home bench_out .pytest_cache .ruff_cache
