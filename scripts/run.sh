#!/usr/bin/env bash
# Start the worker and the web server together; Ctrl-C or SIGTERM stops both cleanly.
set -euo pipefail
PY=${PY:-.venv/bin/python}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}

"$PY" manage.py runworker &
worker=$!
# The web server yields the CPU to the worker when both want it, so a flood of API calls
# cannot hold back owner alerts and outreach (WEB_NICE=0 turns this off).
nice -n "${WEB_NICE:-5}" "$PY" -m gunicorn closeloop.wsgi --bind "$HOST:$PORT" \
  --workers "${WEB_WORKERS:-2}" --access-logfile - &
web=$!

stop() { kill -TERM "$worker" "$web" 2>/dev/null || true; }
trap stop INT TERM
echo "closeloop is running on http://$HOST:$PORT (Ctrl-C stops it)"
wait -n "$worker" "$web" || true
stop
wait
