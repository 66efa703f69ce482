# Everything the project needs is installed from here into .venv; only python3 and make are assumed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit emulator bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cai demo

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff format --check src tests scripts $(wildcard benchmarks)
	$(BIN)/ruff check src tests scripts $(wildcard benchmarks)

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

unit: $(STAMP)
	$(BIN)/pytest

emulator: $(STAMP)
	$(BIN)/cai emulator

bench: $(STAMP)
	$(BIN)/python -m benchmarks

.PHONY: bench-smoke
bench-smoke: $(STAMP)
	$(BIN)/python -m benchmarks --smoke --no-write

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
