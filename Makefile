# The two set-up commands of the README are `make demo` and `make test`.
# Each creates the virtual environment it needs, so both work on a fresh clone.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CAMPAIGN ?= examples/campaign.yaml
# Where the embedded defaults live (`make dev DIALER_HOME=…`); empty means ./.dialer.
export DIALER_HOME

.PHONY: install install-test demo test typecheck dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# The whole product on embedded defaults in about a minute (see `dialer demo --help`): campaign,
# DNC list, a synthetic list through the ingestion job, a simulated dialing day, the report.
# Everything lands in $(DIALER_HOME)/demo, emptied at each run.
demo: install
	$(BIN)/dialer demo

# Two workers, each running whole test files (module fixtures such as the demo's run stay one).
test: install-test
	$(BIN)/python -m pytest -n 2 --dist loadfile

# mypy on the domain core and the daemon (settings in pyproject.toml); CI runs it before the tests.
typecheck: install-test
	$(BIN)/mypy

# Dagster's UI on 127.0.0.1:3000 with the project's code location, the voice simulator on
# 127.0.0.1:8765 and the daemon, on $(DIALER_HOME) (default ./.dialer) with the example campaign;
# Ctrl-C stops all three. `make dev DIALER_HOME=$$PWD/.dialer/demo` opens the demo's data.
dev: install
	$(BIN)/dialer init
	$(BIN)/dialer campaign apply $(CAMPAIGN)
	$(BIN)/dialer dnc import acme/internal examples/dnc.txt
	$(BIN)/dialer dev

clean:
	rm -rf $(VENV) .dialer .pytest_cache
