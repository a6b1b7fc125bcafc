# Blastwall: `make run` starts a server on SQLite; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# pytest-xdist workers for `make test`: auto is one per CPU; 0 runs the suite in one process.
TEST_WORKERS ?= auto

.PHONY: run test check lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/blastwall init
	$(BIN)/blastwall inventory apply examples/inventory
	@echo "Admin token (shown once; a new one each run, the previous one revoked):"
	@$(BIN)/blastwall token create --name make-run-admin --role admin --replace
	@echo "Try: curl -H 'Authorization: Bearer <token>' http://$(HOST):$(PORT)/api/v1/systems"
	$(BIN)/blastwall serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

bench: $(STAMP)
	$(BIN)/python bench/api.py
	$(BIN)/python bench/decode.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/hostile_text.py

clean:
	rm -rf $(VENV) .blastwall .pytest_cache .mypy_cache .ruff_cache .hypothesis
