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
	$(VENV)/bin/mypy src

pytest: venv web system-deps
	$(PY) -m pytest

test: venv system-deps lint typecheck pytest

demo: venv
	$(VENV)/bin/snapearth catalog init

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
