# Every target works from a fresh clone: the first one that needs Python builds .venv (CPU torch, the package, dev tools).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-slow lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build first: a bare `torch` requirement would pull the multi-GB CUDA wheels.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

lint: install
	$(BIN)/ruff check lambda_trl tests benchmarks
	$(BIN)/ruff format --check lambda_trl tests benchmarks

format: install
	$(BIN)/ruff check --fix lambda_trl tests benchmarks
	$(BIN)/ruff format lambda_trl tests benchmarks

bench: install
	$(BIN)/python benchmarks/overhead.py --pairs 6 --steps 14

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
