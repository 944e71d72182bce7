"""Helpers every benchmark part uses."""

from __future__ import annotations

import os
import socket
import sys


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
