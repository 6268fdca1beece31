# The two commands of the README. Each sets itself up from a fresh clone with
# only Python 3.11+ present: a virtualenv in .venv with the project installed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench lint clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "opsconsole needs Python 3.11 or newer (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $@

## demo: open the console on the built-in demo sandbox
demo: $(VENV)/.installed
	$(BIN)/opsconsole demo

## test: run the whole test suite (unit, integration, snapshot, UI, end-to-end)
test: $(VENV)/.installed
	$(BIN)/python -m pytest

## bench: performance harness (prints numbers and ratios; not a test)
bench: $(VENV)/.installed
	$(BIN)/python benchmarks/run.py

lint: $(VENV)/.installed
	$(BIN)/ruff check opsconsole screens tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
