# Quick start: `make serve` or `make test` on a fresh machine with Python 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Test files run in this many processes (pytest-xdist; a file stays in one): most tests wait on servers, dbt
# and Spark, so 3 on 2 cores finished in 9 min 57 s where 2 took 11 min 55 s (2026-12-07).
TEST_WORKERS ?= 3

.PHONY: serve test build docs bench bench-reference bench-regression clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

build: $(VENV)/.installed
	$(BIN)/duckapi build

serve: build
	HOST=$(HOST) PORT=$(PORT) $(BIN)/duckapi serve

test: $(VENV)/.installed-test
	bash scripts/ensure-java.sh
	bash scripts/ensure-chromium.sh
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

$(VENV)/.installed-docs: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[docs]'
	touch $@ $(VENV)/.installed

# The documentation site, built offline into site/; --strict fails on a broken link.
docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $@ $(VENV)/.installed-test $(VENV)/.installed

bench: $(VENV)/.installed-bench
	$(BIN)/python -m bench.load

bench-reference: $(VENV)/.installed-bench
	$(BIN)/python -m bench.reference

bench-regression: $(VENV)/.installed-bench
	$(BIN)/python -m bench.regression

clean:
	rm -rf $(VENV) duckapi_dbt/target duckapi_dbt/logs duckapi_dbt/*.duckdb
