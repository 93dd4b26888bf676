# Quickstart: `make demo` runs the demo federation into runs/demo/; `make test` runs the test suite.
# Both create .venv and install everything on first use.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[test]"
	touch $@

demo: $(STAMP)
	$(VENV)/bin/fedvlm simulate --out runs/demo --overwrite

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/python -m bench.communication
	$(VENV)/bin/python -m bench.federated_vs_centralized
	$(VENV)/bin/python -m bench.simulation_overhead

clean:
	rm -rf $(VENV) runs .pytest_cache
