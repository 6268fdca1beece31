# The two commands of the README. Each sets itself up from a fresh clone with
# only Python 3.11+ present: a virtualenv in .venv with the project installed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Worker processes for `make test` (auto: one per CPU; measured on 2 cores, 3 or 4
# were no faster than 2, within the noise of a shared machine).
TEST_WORKERS ?= auto
# pip stays quiet for `make test`; `make demo` shows its progress on the first run
PIP_QUIET ?= --quiet

.PHONY: demo test bench lint clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "opsconsole needs Python 3.11 or newer (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_QUIET) --upgrade pip
	$(BIN)/python -m pip install $(PIP_QUIET) -e ".[test]"
	@touch $@

## demo: open the console on the built-in demo sandbox
# The first run installs for about a minute: say what and how long, never a silent wait.
demo:
	@if [ ! -f $(VENV)/.installed ] || [ pyproject.toml -nt $(VENV)/.installed ]; then \
	  echo "Setting up $(VENV) (once): opsconsole and its dependencies:"; \
	  $(PYTHON) -c 'import re, tomllib; deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; print("  " + ", ".join(re.split(r"[<>=!~\[; ]", d)[0] for d in deps))' 2>/dev/null || true; \
	  echo "This usually takes about a minute; pip's own progress follows."; \
	  start=$$(date +%s); \
	  $(MAKE) --no-print-directory $(VENV)/.installed PIP_QUIET= || exit $$?; \
	  echo "Installed in $$(( $$(date +%s) - start )) s."; \
	fi
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
