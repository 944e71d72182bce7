# closeloop: `make run` to try it, `make test` to check it. Everything installs from here.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run migrate demo test test-postgres e2e lint bench faults chromium clean

$(STAMP): pyproject.toml constraints.txt
	@echo "== [1/4] installing closeloop and its packages into $(VENV) (about 2 minutes the first time)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The theme model of the shipped examples: the encoder exported with int8 weights, then
# the classifier trained once per version of the examples (about 30 s on 2 cores), both
# loaded by every process. The sentiment model is tuned later, in the background, by the
# worker (closeloop/themes/tuning.py).
THEME_MODEL := $(VENV)/share/closeloop/.themes-stamp
$(THEME_MODEL): $(STAMP) closeloop/themes/data/theme_examples.jsonl closeloop/themes/classifier.py closeloop/themes/quantised.py
	@echo "== [2/4] training the theme model of the shipped examples (about 25 s)"
	$(PY) manage.py prepare_models
	touch $(THEME_MODEL)

install: $(STAMP) $(THEME_MODEL)

# Browser tests drive Debian's chromium; install it once if the machine lacks it.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

migrate: install
	@echo "== [3/4] migrating the database"
	$(PY) manage.py migrate --noinput

demo: migrate
	@echo "== [4/4] loading the demo data (once)"
	$(PY) manage.py seed_demo --once

run: demo
	$(PY) manage.py ensure_admin
	HOST=$(HOST) PORT=$(PORT) PY=$(PY) bash scripts/run.sh

test: install chromium
	$(PY) -m pytest -q

test-postgres: install chromium
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/closeloop} $(PY) -m pytest -q

# The running stack end to end: gunicorn + runworker (as `make run` starts them) on
# PostgreSQL, with a real SMTP server and HTTP receiver on loopback (a few minutes).
e2e: install chromium
	$(PY) -m pytest -q -m e2e tests/test_e2e_stack.py

# Style, types, and the layers of docs/architecture.md (import-linter, configured in
# pyproject.toml); run by .ci/run.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy closeloop
	$(VENV)/bin/lint-imports

bench: install
	$(PY) -m bench

# The outbox under faults (SMTP down, bad webhook receivers, a worker SIGKILLed, PostgreSQL
# restarted) on a throw-away PostgreSQL cluster; prints the table issue 18 asks for.
faults: install
	$(PY) -m bench.faults

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
