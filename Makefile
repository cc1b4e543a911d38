# The two commands a new user needs: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo lint typecheck unit clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip uninstall -q -y runbook 2>/dev/null || true  # older checkouts installed it as `runbook`
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check runbook checks stages tests bench
	$(BIN)/ruff format --check runbook checks stages tests bench

typecheck: $(STAMP)
	$(BIN)/mypy runbook tests  # runbook/checks and runbook/flags are the top-level checks/ and stages/ (symlinks)

# Test files run on PYTEST_JOBS pytest-xdist workers, a file per worker (module-level counters and fixtures
# stay together), handed out in collection order (tests/conftest.py puts the slowest first; xdist would
# otherwise order files by their number of tests); PYTEST_JOBS=0 runs them in this process.
PYTEST_JOBS ?= 2

test: lint typecheck
	$(BIN)/python -m pytest -n $(PYTEST_JOBS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/migrate demo

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) build dist *.egg-info .cache .pytest_cache .mypy_cache .ruff_cache
