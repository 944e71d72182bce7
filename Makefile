# closeloop: `make run` to try it, `make test` to check it. Everything installs from here.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run migrate demo test test-postgres lint bench chromium clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The sentiment model: fetches the rated snippets of the vaderSentiment source
# distribution from the package registry and tunes the encoder once per virtualenv
# (about 9 minutes on 2 cores).
SENTIMENT_MODEL := $(VENV)/share/closeloop/.built-stamp
$(SENTIMENT_MODEL): $(STAMP) closeloop/insights/sentiment.py
	$(PY) -m closeloop.insights.sentiment
	touch $(SENTIMENT_MODEL)

install: $(STAMP) $(SENTIMENT_MODEL)

# Browser tests drive Debian's chromium; install it once if the machine lacks it.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

migrate: install
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py seed_demo --once

run: demo
	$(PY) manage.py ensure_admin
	HOST=$(HOST) PORT=$(PORT) PY=$(PY) bash scripts/run.sh

test: install chromium
	$(PY) -m pytest -q

test-postgres: install chromium
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/closeloop} $(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy closeloop

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
