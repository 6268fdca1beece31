# The two commands of the README. Each sets itself up from a fresh clone with
# only Python 3.11+ present: a virtualenv in .venv with the project installed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Worker processes for `make test` (auto: one per CPU; measured on 2 cores, 3 or 4
# were no faster than 2, within the noise of a shared machine).
TEST_WORKERS ?= auto

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
# In parallel (pytest-xdist); TEST_WORKERS=0 runs it in this one process.
test: $(VENV)/.installed
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

## bench: performance harness (prints numbers and ratios; not a test)
bench: $(VENV)/.installed
	$(BIN)/python benchmarks/run.py

## lint: ruff on everything, mypy on the engine (its settings are in pyproject.toml)
lint: $(VENV)/.installed
	$(BIN)/ruff check opsconsole screens tests benchmarks
	$(BIN)/mypy opsconsole

clean:
	rm -rf $(VENV) .pytest_cache
