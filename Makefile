# riskgrid: `make demo` to try it, `make test` to check it. See README.md.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PG_MAJOR ?= 15
# PostGIS for the data; Chromium and CJK fonts for the browser tests and their screenshots;
# nginx for the proxy test of deploy/nginx.conf; pango for WeasyPrint's risk letters as PDF.
SYSTEM_PACKAGES := postgresql-$(PG_MAJOR) postgresql-$(PG_MAJOR)-postgis-3 chromium fonts-noto-cjk nginx \
  libpango-1.0-0 libpangoft2-1.0-0
ASSETS := web/static/vendor/.built

.PHONY: setup system-packages demo test lint format bench clean

setup: system-packages $(STAMP) $(ASSETS)

# PostGIS comes from Debian's packages: installed when run as root, else the exact command.
system-packages:
	@command -v dpkg >/dev/null || { echo "riskgrid needs Debian/Ubuntu packages: $(SYSTEM_PACKAGES)"; exit 1; }
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing system packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing system packages:$$missing"; \
	    echo "run: sudo apt-get install -y$$missing   (then run make again)"; exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "riskgrid needs Python 3.11"' \
	  || { echo "set PYTHON=/path/to/python3.11"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	@touch $(STAMP)

# Leaflet, plugins, styles and fonts, pinned in web/package-lock.json and served by riskgrid.
$(ASSETS): web/package.json web/package-lock.json web/assets.py $(STAMP)
	npm ci --prefix web --no-audit --no-fund --ignore-scripts --loglevel=error
	$(BIN)/python -m web.assets
	@touch $(ASSETS)

demo: setup
	$(BIN)/riskgrid db up
	$(BIN)/riskgrid demo
	$(BIN)/riskgrid serve --host 127.0.0.1 --port 8000

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check geo api boundaries web riskgrid tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: setup
	$(BIN)/ruff format geo api boundaries web riskgrid tests bench
	$(BIN)/ruff check --fix .

test: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest

bench: setup
	$(BIN)/python -m bench.foundation
	$(BIN)/python -m bench.assignment
	$(BIN)/python -m bench.hotspots
	$(BIN)/python -m bench.maps
	$(BIN)/python -m bench.risk
	$(BIN)/python -m bench.identity
	$(BIN)/python -m bench.soak
	$(BIN)/python -m bench.photos
	$(BIN)/python -m bench.case_handling
	$(BIN)/python -m bench.campaigns
	$(BIN)/python -m bench.letters
	$(BIN)/python -m bench.evaluation

clean:
	-$(BIN)/riskgrid db down
	rm -rf $(VENV) .riskgrid .pytest_cache .ruff_cache .mypy_cache tests/artifacts bench/results \
	  web/node_modules web/static/vendor
