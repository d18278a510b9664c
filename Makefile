# The two commands of the README: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test fuzz floors bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $@ $(VENV)/.run-installed

# A developer's machine: no client authentication (the service says so loudly at start-up).
run: $(VENV)/.run-installed
	CDS_AUTH_MODE=off $(BIN)/cds-service serve --host $(HOST) --port $(PORT)

test: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest -n auto

# The fuzz tests of `make test`, with many more examples each (FUZZ_EXAMPLES; about 10 minutes).
fuzz: $(VENV)/.test-installed
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-1000} $(BIN)/pytest tests/fuzz

# `make test` on the oldest releases pyproject.toml allows (uv's lowest-direct resolution), in a
# virtual environment of its own: a floor that no longer holds fails here, not on a user's
# machine. About 12 minutes (schemathesis is slow at its floor); not part of `make test`.
floors:
	rm -rf .venv-floors
	$(PYTHON) -m venv .venv-floors
	.venv-floors/bin/pip install --quiet --disable-pip-version-check uv
	.venv-floors/bin/uv pip install --quiet --python .venv-floors/bin/python --resolution lowest-direct -e ".[test]"
	touch .venv-floors/.test-installed .venv-floors/.run-installed
	$(MAKE) test VENV=.venv-floors

$(VENV)/.bench-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[test,bench]"
	touch $@ $(VENV)/.test-installed $(VENV)/.run-installed

# The service against a bare orjson echo, driven by wrk (bench/run.py): prints the table and the
# issue-17 targets, writes bench/results.md; then 500-entry histories as a site sends them
# (bench/variety_wrk.py), added to it. About eight minutes; not part of `make test`.
# valgrind is for bench/instructions.py and bench/then_and_now.py: instructions, the A/B figure that does not drift.
bench: $(VENV)/.bench-installed
	command -v wrk >/dev/null || apt-get install -y wrk || sudo apt-get install -y wrk
	command -v valgrind >/dev/null || apt-get install -y valgrind || sudo apt-get install -y valgrind
	$(BIN)/python bench/run.py
	$(BIN)/python bench/variety_wrk.py --append-to bench/results.md

clean:
	rm -rf $(VENV) .venv-floors var .pytest_cache .ruff_cache
