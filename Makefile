# The two commands of the README: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test fuzz bench clean

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
	$(BIN)/pytest -n auto

# The fuzz tests of `make test`, with many more examples each (FUZZ_EXAMPLES; about 10 minutes).
fuzz: $(VENV)/.test-installed
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-1000} $(BIN)/pytest tests/test_fuzz.py

$(VENV)/.bench-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[test,bench]"
	touch $@ $(VENV)/.test-installed $(VENV)/.run-installed

# The service against a bare JSON echo (bench/run.py): prints the table, writes
# bench/results.md and bench/latency.png. About four minutes; not part of `make test`.
bench: $(VENV)/.bench-installed
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
