# Two commands: `make train` and `make test`. Both create .venv when absent and (re)install the
# project when pyproject.toml changed; running them again does nothing more than the task itself.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.corrlab-installed
ARGS   ?=
PYTEST_ARGS ?= -n 2 --durations=15

.PHONY: setup train eval test test-fast lint format clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py constraints/build.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=25.3"
	$(PY) -m pip install --quiet --build-constraint constraints/build.txt -e ".[dev]"
	@touch $(STAMP)

train: setup
	$(PY) train.py $(ARGS)

eval: setup
	$(PY) eval.py $(ARGS)

# The whole suite, slow tests included (what CI runs).
test: setup
	$(PY) -m pytest -m "slow or not slow" $(PYTEST_ARGS)

# Lint and format check (CI runs it before the tests); `make format` rewrites the files.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The fast subset, for the edit-test loop.
test-fast: setup
	$(PY) -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
