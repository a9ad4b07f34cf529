# The two commands a newcomer needs (README.md): `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/leerdossier: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

.PHONY: install demo test lint bench
install: $(BIN)/leerdossier

demo: install
	$(BIN)/leerdossier sync --config config.example.toml

test: install lint
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check connector adapters tests bench examples
	$(BIN)/mypy --strict connector/ adapters/
	$(BIN)/lint-imports

bench: install
	$(BIN)/python bench/plan_bench.py
