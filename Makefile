# Quickstart: `make demo` runs the demo federation into runs/demo/; `make test` runs the test suite.
# Both install Debian's tesseract-ocr (the PII filter's OCR language data) and chromium (the report's render
# test) if missing, create .venv and
# install on first use exactly what requirements.lock lists (versions and hashes); `make lock` refreshes it.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
LOCK := requirements.lock

.PHONY: demo test bench clean system lock

system:
	@{ ls /usr/share/tesseract-ocr/*/tessdata/eng.traineddata && command -v chromium; } >/dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr chromium; }

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet pip==26.3
	$(VENV)/bin/pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

# Re-resolve pyproject.toml's ranges to today's newest versions (uv comes with the locked set).
lock: $(STAMP)
	$(VENV)/bin/uv pip compile pyproject.toml --quiet -o $(LOCK)

demo: system $(STAMP)
	$(VENV)/bin/fedvlm simulate --config configs/hospital.toml --out runs/demo --overwrite

# The layers (import-linter contracts in pyproject.toml) and ruff, then the whole suite.
test: system $(STAMP)
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/python -m pytest -q

bench: system $(STAMP)
	$(VENV)/bin/python -m bench.communication
	$(VENV)/bin/python -m bench.demo_seeds
	$(VENV)/bin/python -m bench.simulation_overhead
	$(VENV)/bin/python -m bench.pii
	$(VENV)/bin/python -m bench.dp
	$(VENV)/bin/python -m bench.deploy
	$(VENV)/bin/python -m bench.audit
	$(VENV)/bin/python -m bench.safety_classifier
	$(VENV)/bin/python -m bench.gates
	$(VENV)/bin/python -m bench.gate_seeds --jobs 2
	$(VENV)/bin/python -m bench.attribution

clean:
	rm -rf $(VENV) runs .pytest_cache
