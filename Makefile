# Two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test lint bench clean

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

run: $(INSTALLED)
	$(BIN)/sistercities run

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# Test files run in TEST_PROCESSES processes (pytest-xdist), each file whole in one of them.
TEST_PROCESSES ?= 2

# The browser tests drive Chromium: the system's, else Playwright's download, else (as root)
# the distribution's package; without any, make stops and says what to install.
test: lint
	CHROMIUM_PATH="$$(scripts/ensure_chromium.sh $(BIN)/python)" && export CHROMIUM_PATH && \
	$(BIN)/pytest --numprocesses=$(TEST_PROCESSES) --dist=loadfile $(PYTEST_ARGS)

bench: $(INSTALLED)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
