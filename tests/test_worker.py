"""The worker loop: runs its steps, keeps going past a failing one, stops cleanly on signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from closeloop.worker import Worker

ROOT = Path(__file__).resolve().parent.parent


def test_it_runs_every_step_and_survives_one_that_fails() -> None:
    calls: list[str] = []

    def boom() -> bool:
        calls.append("boom")
        raise RuntimeError("step failed")

    def works() -> bool:
        calls.append("works")
        return True

    worker = Worker([boom, works], idle_seconds=0.01)
    assert worker.run_once() is True
    assert calls == ["boom", "works"]


def test_it_reports_idle_when_no_step_did_anything() -> None:
    assert Worker([lambda: False], idle_seconds=0.01).run_once() is False


def test_it_stops_before_the_next_step_once_asked() -> None:
    calls: list[str] = []
    worker = Worker([], idle_seconds=0.01)

    def first() -> bool:
        calls.append("first")
        worker.stop()
        return True

    worker.steps = [first, lambda: calls.append("second") or True]
    worker.run_once()
    assert calls == ["first"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_it_exits_cleanly_on_a_signal(sig: signal.Signals, tmp_path: Path) -> None:
    env = {**os.environ, "DATA_DIR": str(tmp_path), "WORKER_IDLE_SECONDS": "0.2"}
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runworker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        assert proc.stdout is not None
        line = proc.stdout.readline()
        while "worker started" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
        assert "worker started" in line
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
        assert "worker stopped" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
