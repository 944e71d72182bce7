"""Helpers every benchmark part uses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
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
