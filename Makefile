# The two set-up commands of the README are `make demo` and `make test`.
# Each creates the virtual environment it needs, so both work on a fresh clone.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CAMPAIGN ?= examples/campaign.yaml
DAGSTER_HOME ?= $(CURDIR)/.dialer/dagster

.PHONY: install install-test demo test dev clean

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

# Until the full demo lands, this initialises the embedded SQLite database under
# DIALER_HOME (./.dialer), applies the example campaign, fills its DNC list,
# loads the example list and fills the hopper with whoever may be dialed now.
demo: install
	$(BIN)/dialer init
	$(BIN)/dialer campaign apply $(CAMPAIGN)
	$(BIN)/dialer dnc import acme/internal examples/dnc.txt
	$(BIN)/dialer list upload feb-reminders examples/prospects.csv
	$(BIN)/dialer hopper fill feb-reminders
	$(BIN)/dialer campaign status feb-reminders

test: install-test
	$(BIN)/python -m pytest

# Dagster's UI on 127.0.0.1:3000 with the project's code location.
dev: install
	mkdir -p $(DAGSTER_HOME)
	test -f $(DAGSTER_HOME)/dagster.yaml || cp pipelines/dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

clean:
	rm -rf $(VENV) .dialer .pytest_cache
