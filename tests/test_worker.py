"""The worker loop: runs its steps, keeps going past a failing one, stops cleanly on signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from closeloop.access.models import ApiKey
from closeloop.worker import Worker

from .conftest import ApiClient
from .loopback import SmtpServer

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


def start_worker(tmp_path: Path, idle: str) -> tuple[subprocess.Popen[bytes], Path]:
    """`manage.py runworker` on a fresh, unmigrated database (every step fails and says
    so), its output in a file: a pipe nobody reads would fill and stall it."""
    env = {**os.environ, "DATA_DIR": str(tmp_path), "WORKER_IDLE_SECONDS": idle}
    env.pop("DATABASE_URL", None)
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "runworker"], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    # Starting imports the models' libraries: allow for a machine busy with other work.
    deadline = time.monotonic() + 150
    while "worker started" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "worker started" in log.read_text()
    return proc, log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_it_exits_cleanly_on_a_signal(sig: signal.Signals, tmp_path: Path) -> None:
    proc, log = start_worker(tmp_path, "0.2")
    try:
        proc.send_signal(sig)
        assert proc.wait(timeout=20) == 0
        assert "worker stopped" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_it_exits_when_signals_come_one_on_another(tmp_path: Path) -> None:
    # `make run`'s script and the terminal both pass on Ctrl-C: the worker used to take
    # a lock in its signal handler and, with a second signal inside the first, hang.
    proc, log = start_worker(tmp_path, "0.01")
    try:
        for _ in range(20):
            proc.send_signal(signal.SIGTERM)
            proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert "worker stopped" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_it_runs_a_lane_while_another_is_stuck_in_a_long_step() -> None:
    from closeloop.worker import Lane, Lanes

    release = threading.Event()
    sent: list[float] = []

    def training() -> bool:  # a heavy step that takes its time
        release.wait(10)
        return False

    def email() -> bool:
        sent.append(time.monotonic())
        return False

    lanes = Lanes([Lane("heavy", (training,)), Lane("mail", (email,))], idle_seconds=0.01)
    lanes.start()
    try:
        deadline = time.monotonic() + 5
        while len(sent) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(sent) >= 3  # the mail lane kept going while training ran
    finally:
        release.set()
        lanes.stop()
        lanes.join()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="threads cannot share the suite's in-memory SQLite database (make run's file works)",
)
def test_it_emails_a_new_detractor_while_a_webhook_receiver_trickles(
    settings: Any, smtp: SmtpServer
) -> None:
    from closeloop.delivery.models import Channel
    from closeloop.surveys.models import Account
    from closeloop.team.models import User
    from closeloop.worker import Lanes, default_lanes

    from .conftest import answer
    from .test_outbound import trickler

    settings.WEBHOOK_TIMEOUT_SECONDS = 8
    owner = User.objects.create_user("alex", "alex@example.com", "pw", first_name="Alex")
    Account.objects.create(name="Initech", external_id="acc-1", tier="smb", owner=owner)
    listener, started = trickler()
    Channel.objects.create(kind="webhook", url=f"http://127.0.0.1:{listener.getsockname()[1]}/")
    client = ApiClient(ApiKey.issue("t")[1])
    lanes = Lanes([lane for lane in default_lanes() if lane.name != "heavy"], 0.05)
    lanes.start()
    try:
        body = answer("first@example.com", 3) | {
            "person": {"email": "first@example.com", "account": {"external_id": "acc-1"}}
        }
        assert client.post_json("/api/v1/responses", body).status_code == 201
        deadline = time.monotonic() + 10
        while not started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started, "the webhook was not posted"
        answered = time.monotonic()
        body["person"]["email"] = "second@example.com"
        assert client.post_json("/api/v1/responses", body).status_code == 201
        while not smtp.inbox.to("second@example.com") and time.monotonic() < answered + 8:
            time.sleep(0.05)
        waited = time.monotonic() - answered
        assert smtp.inbox.to("second@example.com"), "the outreach never went"
        assert waited < 4, f"the outreach waited {waited:.1f} s behind the trickling webhook"
    finally:
        lanes.stop()
        lanes.join()
        listener.close()
