# Set-up and checks; see README.md. Everything installs into ./.venv from PyPI.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# the stamp files re-run the install when pyproject.toml changes
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

# The browser UI (src/citytwin/web): its npm packages come from the lock file, and it is
# built into src/citytwin/web/dist, which the Python package serves; rebuilt only when its
# sources change (the BUILT stamp is written last by the build).
WEB := src/citytwin/web
WEB_STAMP := $(WEB)/dist/BUILT
$(WEB)/node_modules/.package-lock.json: $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(WEB_STAMP): $(WEB)/node_modules/.package-lock.json $(WEB)/build.mjs $(wildcard $(WEB)/src/*)
	cd $(WEB) && npm run --silent build

.PHONY: web
web: $(WEB_STAMP)

demo: $(VENV)/.installed $(WEB_STAMP)
	$(BIN)/citytwin demo

serve: $(VENV)/.installed $(WEB_STAMP)
	$(BIN)/citytwin serve

# the web build comes first: lint and type checks walk src/, where it lives
lint: $(VENV)/.installed-test $(WEB_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(VENV)/.installed-test $(WEB_STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

clean:
	rm -rf $(VENV) citytwin-data citytwin-demo .pytest_cache .mypy_cache .ruff_cache test-artifacts
	rm -rf $(WEB)/node_modules $(WEB)/dist

# Benchmarks against the raw database (see benchmarks/README.md). Each database named in
# BENCH_DBS is dropped and created anew. Example of a full run:
#   make bench BENCH_DBS=postgresql://postgres@127.0.0.1/citytwin_bench \
#              BENCH_ARGS="--observations 10000000 --datastreams 1000"
BENCH_DBS ?= sqlite:///benchmarks/results/bench.db postgresql://postgres@127.0.0.1/citytwin_bench
BENCH_ARGS ?= --observations 200000 --datastreams 100

.PHONY: bench
bench: $(VENV)/.installed
	for db in $(BENCH_DBS); do $(BIN)/citytwin bench --db "$$db" $(BENCH_ARGS) || exit 1; done
