# Set-up and everyday commands. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV ?= .venv
# torch is installed before the package so that pip keeps it: 2.13.0 is the CPU build this project's
# machines have on local disk; on a GPU machine pip takes the normal (CUDA) 2.13.0 build instead.
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.scenewright-installed

.PHONY: install demo test test-slow lint format clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev,web,bench]"
	touch $(STAMP)

demo: install
	$(BIN)/scenewright generate "two red circles left of a blue square" --out out/demo --overwrite

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: install
	$(BIN)/python -m pytest -m slow -q

format: install
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
