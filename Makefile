# Two commands do all set-up on a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-loaded lint types unit bench bench-full clean lock

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The loopback sandboxes and the demo are their own package (sandboxes/), outside connector's wheel and image;
# the demo, the tests and the benchmarks need both.
$(STAMP): pyproject.toml sandboxes/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]' -e ./sandboxes
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/connector demo

lint: $(STAMP)
	$(BIN)/ruff check connector sandboxes tests benchmarks
	$(BIN)/ruff format --check connector sandboxes tests benchmarks

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -n 2

test: lint types unit

# the suite while busy loops hog every core: timing-dependent tests fail here first (not part of `make test`)
test-loaded: ROUNDS ?= 1
test-loaded: $(STAMP)
	$(BIN)/python scripts/test-under-load --rounds $(ROUNDS)

# The image installs from requirements/runtime.lock (pinned, resolved for Python 3.11 on Linux, as in the image).
# Run after changing dependencies in pyproject.toml; existing pins are kept unless LOCK_FLAGS=--upgrade.
# tests/test_runtime_lock.py fails when the lock no longer satisfies pyproject.toml.
lock: $(STAMP)
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-trusted-host --no-emit-find-links \
		$(LOCK_FLAGS) --output-file requirements/runtime.lock pyproject.toml

# every case in its own process, connector beside a naive baseline; writes docs/benchmarks.md
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py --quick

# 1M people included: most of an hour
bench-full: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .demo build *.egg-info sandboxes/*.egg-info sandboxes/build
