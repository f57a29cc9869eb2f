# SnapEarth — two set-up commands: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= data
export SNAPEARTH_DATA ?= $(abspath $(DATA))

.PHONY: demo test venv web system-deps lint typecheck pytest clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv
	$(VENV)/bin/uv pip install -q --python $(PY) -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

# The web UI bundle (Leaflet + Natural Earth from the npm registry, built with esbuild; no CDN at run time).
WEB := src/snapearth/web/frontend
$(WEB)/node_modules/.package-lock.json: $(WEB)/package-lock.json
	npm --prefix $(WEB) ci --no-audit --no-fund --loglevel=error

src/snapearth/web/static/dist/app.js: $(WEB)/node_modules/.package-lock.json $(wildcard $(WEB)/src/*) $(WEB)/build.mjs
	npm --prefix $(WEB) run --silent build

web: src/snapearth/web/static/dist/app.js

# Debian packages the tests need: PostgreSQL 15 + PostGIS 3 (scale backend), Chromium (web UI tests).
system-deps:
	@missing=""; for p in postgresql-15 postgresql-15-postgis-3 chromium chromium-driver; do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: venv
	$(VENV)/bin/mypy src benchmarks tests

PYTEST_ARGS ?=
pytest: venv web system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

test: venv system-deps lint typecheck pytest

# The main job on the embedded default: sample archive -> SQLite catalog -> EarthSignature -> API + web UI.
SAMPLE := $(SNAPEARTH_DATA)/sample
$(SAMPLE)/catalog.json: | venv
	$(VENV)/bin/snapearth sample build --scenario demo --out $(SAMPLE)

demo: venv web $(SAMPLE)/catalog.json
	$(VENV)/bin/snapearth catalog ingest --mode ignore $(SAMPLE)/catalog.json
	$(VENV)/bin/snapearth enrich
	@echo "SnapEarth is on http://127.0.0.1:8000 (API: /api.html, STAC: /, openEO: /openeo/1.2)"
	$(VENV)/bin/snapearth serve --host 127.0.0.1 --port 8000

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
