# `make demo` and `make test` each bootstrap .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench clean packages

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ads-infra demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# PgBouncer, PostgreSQL's server programs and openssl for the tests' private
# servers: installed when missing (root), else named.
packages:
	@bash .ci/install-packages

test: lint typecheck packages
	$(BIN)/pytest $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/ads-infra bench

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache
