# `make demo` and `make test` each bootstrap .venv on a fresh machine: the demo
# installs the runtime dependencies only, the tests the whole toolchain.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# uv installs in seconds what pip takes a minute for; pip brings uv itself.
UV := VIRTUAL_ENV=$(VENV) $(BIN)/uv

.PHONY: demo demo-s3 test lint typecheck unit bench clean packages

$(BIN)/uv:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv

$(VENV)/.runtime: pyproject.toml | $(BIN)/uv
	$(UV) pip install --quiet -e .
	touch $@

# The example plugin package too: its tests (tests/integration/plugins) choose it
# through configuration alone, as a host app would after installing it.
PLUGIN_EXAMPLE := examples/ads-infra-plugin-example

$(VENV)/.test: pyproject.toml $(PLUGIN_EXAMPLE)/pyproject.toml | $(BIN)/uv
	$(UV) pip install --quiet -e '.[test]' -e $(PLUGIN_EXAMPLE)
	touch $@ $(VENV)/.runtime

# DEMO_ARGS: e.g. "--users 1 --days 7" for a short run.
demo: $(VENV)/.runtime
	$(BIN)/ads-infra demo $(DEMO_ARGS)

# The demo on S3: a local moto_server with the bucket created, stopped afterwards.
demo-s3: $(VENV)/.test
	$(BIN)/python -m tests.s3 demo $(DEMO_ARGS)

lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.test
	$(BIN)/mypy

# PgBouncer, etcd, PostgreSQL's server programs and openssl for the tests' private
# servers: installed when missing (root), else named.
packages:
	@bash .ci/install-packages

test: lint typecheck packages
	$(BIN)/pytest $(PYTEST_ARGS)

unit: $(VENV)/.test
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

bench: $(VENV)/.test
	$(BIN)/ads-infra bench

clean:
	rm -rf $(VENV) var build .mypy_cache .pytest_cache .ruff_cache
