# darkflow: the two set-up commands of the README, and a few helpers.
#   make demo   simulate a night, calibrate it, write the HTML report (creates .venv if missing)
#   make test   run the test suite (creates .venv with the dev extras if missing)
#   make unit   the unit loop: no whole nights, notebooks, browsers or slow cases (about a minute)

SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DATA ?= demo/data
DEMO_WORK ?= demo/work
DEMO_REPORTS ?= reports
SEED ?= 42
PYTEST_ARGS ?=

# The first Python 3.11+ on PATH (python3.13, python3.12, python3.11, python3).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)

.PHONY: demo test unit test-slow lint bench clean-demo help

help:
	@echo "make demo   simulate a night, run darkflow on it, write the HTML report"
	@echo "make test   run the test suite (all but the slow cases)"
	@echo "make unit   the unit loop: no integration or slow tests"
	@echo "make test-slow / make lint   the slow cases / ruff check, format check and import layers"

$(BIN)/python:
	@if [ -z "$(PYTHON)" ]; then echo "darkflow needs Python 3.11 or newer on PATH" >&2; exit 1; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the package metadata changes.
$(VENV)/.installed-run: pyproject.toml setup.py | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml setup.py | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@ $(VENV)/.installed-run

demo: $(VENV)/.installed-run
	$(BIN)/darkflow simulate $(DEMO_DATA) --preset demo --seed $(SEED) --overwrite
	$(BIN)/darkflow nightly $(DEMO_DATA) --workdir $(DEMO_WORK) --reports $(DEMO_REPORTS)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

unit: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m "not integration and not slow" $(PYTEST_ARGS)

test-slow: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

clean-demo:
	rm -rf demo $(DEMO_REPORTS)/*/ $(DEMO_REPORTS)/index.html
