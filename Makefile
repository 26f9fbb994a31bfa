# vprim — every entry point a user needs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
SCALE ?= small
VPRIM_ROOT ?= $(CURDIR)/data
DAGSTER_HOME ?= $(CURDIR)/.dagster_home
PYTEST_ARGS ?=
# the lock tool, pinned here (it is not a dependency of vprim)
UV_VERSION := 0.13.8
# where torch's CPU wheel (2.13.0+cpu) lies; elsewhere set PIP_EXTRA_INDEX_URL to PyTorch's CPU index
TORCH_WHEELS ?= /opt/wheels
TORCH_FIND_LINKS := $(if $(wildcard $(TORCH_WHEELS)),--find-links $(TORCH_WHEELS))
# the local cluster's folder: its data, logs, processes and env file (`make cluster-up`)
CLUSTER_DIR ?= $(CURDIR)/.cluster
# Debian's package tool, through sudo unless we are root (CI and containers are)
APT := $(if $(filter 0,$(shell id -u)),,sudo) apt-get
export DAGSTER_HOME VPRIM_ROOT

.PHONY: help setup lock rebuild-dataset test ui bench lint format clean services bench-cluster cluster-up \
	cluster-down

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# Every package comes from requirements.lock, each file checked against its hash, so a new
# upstream release cannot change what a fresh clone installs. vprim itself goes in editable,
# with no dependencies of its own and the locked setuptools as its build backend. A changed lock
# rebuilds .venv from empty, so it holds the lock and nothing left over from an older one.
$(BIN)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps $(TORCH_FIND_LINKS) -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $@

setup: $(BIN)/.installed ## create .venv and install the locked packages, then vprim (editable)

lock: ## re-resolve requirements.lock from pyproject.toml's ranges (review, test, commit it alone)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip compile --quiet pyproject.toml $(TORCH_FIND_LINKS) --upgrade -o requirements.lock

rebuild-dataset: setup ## curate the default corpus (SCALE=tiny|small|full) or VPRIM_CATALOG into the lake
	$(BIN)/vprim rebuild-dataset --scale $(SCALE) --root $(VPRIM_ROOT)

test: setup ## run the test suite (what CI runs)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

ui: setup ## Dagster UI on http://127.0.0.1:3000 over the project's DAGSTER_HOME
	$(BIN)/vprim ui --host 127.0.0.1 --port 3000

bench: setup ## benchmarks: figures and ratios against peers measured in the same run
	$(BIN)/python -m vprim.assets.bench

bench-cluster: setup services ## the local vs the distributed engine (tiny, small) and the N-worker estimate
	$(BIN)/python -m vprim.dagster_project.bench_cluster

lint: setup ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

services: ## install redis-server and postgresql from Debian when missing (the cluster needs them)
	@if ! command -v redis-server >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		$(APT) update -qq && DEBIAN_FRONTEND=noninteractive $(APT) install -y -qq redis-server postgresql; \
	fi

cluster-up: setup services ## a local cluster on 127.0.0.1: Redis, PostgreSQL, S3, 2 Celery workers, daemon, UI
	$(BIN)/vprim cluster up --dir $(CLUSTER_DIR) --scale $(SCALE)

cluster-down: setup ## stop every process of the local cluster (its in-memory S3 objects go too)
	$(BIN)/vprim cluster down --dir $(CLUSTER_DIR)

clean: ## remove generated data, DAGSTER_HOME and caches (keeps .venv)
	rm -rf data .dagster_home bench_out .pytest_cache .ruff_cache
