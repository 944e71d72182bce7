"""Helpers every benchmark part uses."""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import psycopg

ROOT = Path(__file__).resolve().parent.parent


def recreate_database(url: str) -> None:
    """Drop and create the database `url` names (on the same server)."""
    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def manage_on(url: str, *args: str, **env: str) -> str:
    """`manage.py *args` against the database `url`; its standard output."""
    out = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url, **env},
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    """The q-th quantile (0–1) of `values`, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def gunicorn_command(port: int, workers: int, *extra: str) -> list[str]:
    """gunicorn as `make run` starts it (scripts/run.sh): at a lower CPU priority than
    the worker (WEB_NICE, default 5), from the checkout so it reads gunicorn.conf.py."""
    return [
        "nice",
        "-n",
        os.environ.get("WEB_NICE", "5"),
        sys.executable,
        "-m",
        "gunicorn",
        "closeloop.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        *extra,
    ]


def metrics_row(conn: psycopg.Connection, port: int, key: str, today: date) -> tuple[str, ...]:
    """GET /api/v1/metrics for the last 90 days (and the 90 before) against the same
    aggregate in hand SQL, median of 7; every answer is checked against the SQL's."""
    since = today - timedelta(days=89)
    day = lambda d: datetime(d.year, d.month, d.day, tzinfo=UTC)  # noqa: E731
    sql = (
        "SELECT"
        " count(*) FILTER (WHERE created_at >= %(mid)s AND score >= 9),"
        " count(*) FILTER (WHERE created_at >= %(mid)s AND score BETWEEN 7 AND 8),"
        " count(*) FILTER (WHERE created_at >= %(mid)s AND score <= 6),"
        " count(*) FILTER (WHERE created_at < %(mid)s AND score >= 9),"
        " count(*) FILTER (WHERE created_at < %(mid)s AND score BETWEEN 7 AND 8),"
        " count(*) FILTER (WHERE created_at < %(mid)s AND score <= 6)"
        " FROM surveys_response WHERE created_at >= %(start)s AND created_at < %(end)s"
    )
    params = {
        "start": day(since - timedelta(days=90)),
        "mid": day(since),
        "end": day(today + timedelta(days=1)),
    }
    total = conn.execute("SELECT count(*) FROM surveys_response").fetchone()[0]  # type: ignore[index]
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    path = f"/api/v1/metrics?since={since}&until={today}"
    sql_times, api_times = [], []
    for _ in range(7):
        start = time.perf_counter()
        expected = conn.execute(sql, params).fetchone()
        sql_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        client.request("GET", path, headers={"Authorization": f"Bearer {key}"})
        response = client.getresponse()
        status, body = response.status, response.read()
        api_times.append(time.perf_counter() - start)
        assert status == 200 and expected is not None, (status, body[:300])
        got = json.loads(body)
        shown = [got[k] for k in ("promoters", "passives", "detractors")]
        shown += [got["previous"][k] for k in ("promoters", "passives", "detractors")]
        assert shown == list(expected), (shown, expected)
    conn.rollback()
    sql_med, api_med = statistics.median(sql_times), statistics.median(api_times)
    return (
        f"GET /metrics over {total:,} responses (checked: both periods' counts)",
        f"{api_med * 1000:.0f} ms",
        f"hand SQL {sql_med * 1000:.0f} ms",
        f"{api_med / sql_med:.2f}",
        "≤ 2.00",
    )
