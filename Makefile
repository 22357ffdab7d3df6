# Two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
export SKIPPY_HOME ?= $(CURDIR)/.skippy

.PHONY: run test env lint typecheck pytest bench clean

$(UV):
	python3 -m pip install --user --quiet uv || python3 -m pip install --quiet uv

env: $(UV)
	$(UV) sync --frozen --quiet --compile-bytecode

## Initialise the embedded stores, load the synthetic market, train both agents, serve the API (:5000) and the MLflow UI (:5001).
run: env
	$(UV) run --frozen skippy up

## ruff + the import contract (pyproject: imports run one way) + mypy + the whole suite (SQLite and PostgreSQL).
test: env lint typecheck pytest

lint:
	$(UV) run --frozen ruff check mlops tracking sweeps drift app dashboard tests bench
	$(UV) run --frozen lint-imports --no-cache

typecheck:
	$(UV) run --frozen mypy

pytest:
	$(UV) run --frozen pytest -n 2 --dist loadfile

bench: env
	$(UV) run --frozen python bench/retrain.py
	$(UV) run --frozen python bench/sweep.py
	$(UV) run --frozen python bench/drift.py
	$(UV) run --frozen python bench/api.py
	$(UV) run --frozen python bench/decisions.py
	$(UV) run --frozen python bench/rollback.py
	$(UV) run --frozen python bench/insights.py
	$(UV) run --frozen python bench/dashboard.py

clean:
	rm -rf .skippy .pytest_cache .mypy_cache .ruff_cache
