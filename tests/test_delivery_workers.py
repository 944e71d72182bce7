"""Real worker processes on PostgreSQL: two never send the same row; SIGTERM loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from closeloop.delivery.models import Attempt, Delivery
from closeloop.loop.outcomes import LISTENERS

from .loopback import SmtpServer

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="SQLite serialises writers; nothing to race"
    ),
]


class WorkerProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.out = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runworker"],
            cwd=ROOT,
            env=env,
            stdout=self.out,
            stderr=subprocess.STDOUT,
        )

    def wait_started(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while "worker started" not in self.log.read_text():
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "worker did not start"
            time.sleep(0.05)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.out.close()
        return code


@pytest.fixture
def start_worker(smtp: SmtpServer, tmp_path: Path) -> Iterator[Callable[[], WorkerProcess]]:
    """Starts `manage.py runworker` processes against the test database and SMTP server."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "EMAIL_URL": smtp.url,
        "WORKER_IDLE_SECONDS": "0.05",
        "DATA_DIR": str(tmp_path),
    }
    started: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        worker = WorkerProcess(env, tmp_path / f"worker{len(started)}.log")
        started.append(worker)
        worker.wait_started()
        return worker

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait()
        worker.out.close()


def queue_emails(count: int) -> None:
    Delivery.objects.bulk_create(
        Delivery(
            kind="email",
            purpose="owner_alert",
            to=f"user{i}@example.com",
            from_email="alerts@example.com",
            subject=f"alert {i}",
            body="hello",
        )
        for i in range(count)
    )


def wait_sent(count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while Delivery.objects.filter(status="sent").count() < count:
        assert time.monotonic() < deadline, "deliveries were not all sent in time"
        time.sleep(0.1)


def message_ids(smtp: SmtpServer) -> Counter[str]:
    return Counter(str(m["Message-ID"]) for m in smtp.inbox.messages)


def test_it_never_sends_a_delivery_twice_with_two_workers(
    start_worker: Callable[[], WorkerProcess], smtp: SmtpServer
) -> None:
    first, second = start_worker(), start_worker()
    queue_emails(600)
    wait_sent(600)
    assert first.stop() == 0 and second.stop() == 0
    ids = message_ids(smtp)
    assert len(ids) == 600 and max(ids.values()) == 1
    assert Attempt.objects.count() == 600
    # Both processes took a share of the work.
    assert len(set(Attempt.objects.values_list("worker", flat=True))) == 2


def test_it_finishes_its_claimed_deliveries_when_told_to_stop(
    start_worker: Callable[[], WorkerProcess], smtp: SmtpServer
) -> None:
    worker = start_worker()
    queue_emails(400)
    while len(smtp.inbox.messages) < 30:
        time.sleep(0.01)
    assert worker.stop() == 0
    # Nothing is left claimed: every row is either sent or still waiting its turn.
    assert not Delivery.objects.filter(status="sending").exists()
    sent = Delivery.objects.filter(status="sent").count()
    assert sent == len(smtp.inbox.messages) and sent < 400
    start_worker()
    wait_sent(400)
    ids = message_ids(smtp)
    assert len(ids) == 400 and max(ids.values()) == 1


def test_it_renews_the_lease_while_a_slow_relay_is_still_sending(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    import asyncio
    import threading
    from datetime import timedelta

    from aiosmtpd.controller import Controller

    from closeloop.delivery import sending
    from closeloop.delivery.models import Delivery
    from closeloop.delivery.transports import kept_mailer

    from .loopback import Inbox, free_port

    class SlowInbox(Inbox):
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            await asyncio.sleep(0.4)  # a relay taking its time over each message
            return await super().handle_DATA(server, session, envelope)

    inbox, port = SlowInbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    monkeypatch.setattr(sending, "LEASE", timedelta(seconds=0.6))
    monkeypatch.setattr(sending, "RENEW_EVERY", timedelta(seconds=0.15))
    for n in range(12):  # 3 messages per session, 1.2 s or more for the batch
        Delivery.objects.create(kind="email", purpose="owner_alert", to=f"o{n}@example.com")

    def send_batch() -> None:
        from django.db import connection as thread_connection

        try:
            sending.handle_email_batch(LISTENERS)
        finally:
            thread_connection.close()

    first = threading.Thread(target=send_batch)
    try:
        first.start()
        time.sleep(1.0)  # the first lease (0.6 s) would have run out by now
        assert sending.claim([Delivery.Kind.EMAIL], 100) == []
        first.join(10)
    finally:
        kept_mailer().close()
        controller.stop()
    assert Delivery.objects.filter(status="sent").count() == 12
    assert len(inbox.messages) == 12
