# Two entry points for a fresh machine: `make demo` and `make test`.
# Both install what they need and are safe to run again.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test unit e2e lint typecheck peers venv bench clean

venv: $(STAMP)

$(STAMP): proxy/pyproject.toml operator/pyproject.toml requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c constraints.txt -e proxy -e operator -r requirements-dev.txt
	touch $(STAMP)

peers:
	tools/install-peers

demo: venv
	tools/install-peers oscar-server
	$(PY) tools/demo.py

test: venv peers
	$(PY) -m pytest $(PYTEST_ARGS)

unit: venv
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

e2e: venv peers
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check proxy operator tests bench
	$(VENV)/bin/ruff format --check proxy operator tests bench

typecheck: venv
	$(VENV)/bin/mypy

bench: venv
	tools/install-peers oscar-server
	$(PY) bench/relay.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
