"""Survey benchmarks: a wave of survey emails, and Delighted's people create.

a wave of WAVE survey emails (multipart, signed links) scheduled, then sent by
one worker to a loopback SMTP server  vs  the same rendered messages sent by plain
smtplib loops over as many sessions as a worker opens, to the same server, in the
same run (the receivers checked for exactly one invitation per person, both times);
POST /v1/people through the official Delighted client  vs  POST /api/v1/people
with plain `requests` (also a new connection per call, as the client makes).
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import psycopg
import requests

from bench import loop

ROOT = Path(__file__).resolve().parent.parent
WAVE = int(os.environ.get("BENCH_SURVEY_WAVE", "10000"))
CREATES = int(os.environ.get("BENCH_DELIGHTED_CREATES", "400"))
THREADS = 4


def _schedule_wave(manage: Any, due_in: float) -> None:
    """WAVE people scheduled into the default survey, all due `due_in` seconds from now."""
    manage(
        "shell",
        "-c",
        "from datetime import timedelta\n"
        "from django.utils import timezone\n"
        "from closeloop.core.db import bulk_insert\n"
        "from closeloop.surveys.models import Person, Survey\n"
        "from closeloop.surveys.sending import schedule\n"
        f"people = [Person(email=f'wave{{i}}@customer.example') for i in range({WAVE})]\n"
        "bulk_insert(people)\n"
        f"schedule(people, Survey.default(), at=timezone.now() + timedelta(seconds={due_in}))\n",
    )


def _rate(calls: list[Any]) -> float:
    """Calls per second with THREADS threads sharing the list."""
    start = time.perf_counter()
    threads = [threading.Thread(target=lambda c=c: [f() for f in c]) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(len(c) for c in calls) / (time.perf_counter() - start)


def _people_create(port: int, key: str) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import delighted

    client = delighted.Client(api_key=key, api_base_url=f"http://127.0.0.1:{port}/v1/")
    per = CREATES // THREADS

    def via_client(n: int) -> Any:
        return lambda: delighted.Person.create(
            client=client, email=f"dl{n}@customer.example", properties={"plan": "pro"}, send=False
        )

    def via_api(n: int) -> Any:
        def call() -> None:
            reply = requests.post(
                f"http://127.0.0.1:{port}/api/v1/people",
                json={"email": f"api{n}@customer.example", "properties": {"plan": "pro"}},
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
            reply.raise_for_status()

        return call

    theirs = _rate([[via_client(t * per + i) for i in range(per)] for t in range(THREADS)])
    ours = _rate([[via_api(t * per + i) for i in range(per)] for t in range(THREADS)])
    return theirs, ours


def run(
    db_url: str, conn: psycopg.Connection, manage: Any, port: int, key: str
) -> list[tuple[str, ...]]:
    """The survey figures, as table rows (figure, closeloop, baseline, ratio, goal)."""
    tmp = ROOT / "var" / "bench"
    tmp.mkdir(parents=True, exist_ok=True)
    arrivals = loop.Arrivals(tmp / "survey-arrivals.log")
    smtp_port = loop.free_port()
    rows: list[tuple[str, ...]] = []
    with loop.sinks(arrivals, smtp_port):
        loop.clear_outbox(conn)
        lead = 20.0
        _schedule_wave(manage, lead)
        first = conn.execute(
            "SELECT min(scheduled_at) FROM surveys_surveyrequest WHERE status = 'scheduled'"
        ).fetchone()
        conn.commit()
        assert first is not None and first[0] is not None
        due = first[0].timestamp()
        pool = loop.Workers(1, db_url, smtp_port, tmp)
        before = arrivals.refresh().count
        time.sleep(max(0.0, due - time.time()))
        start = time.perf_counter()
        loop.wait_until(lambda: arrivals.refresh().count - before >= WAVE, timeout=900)
        sent = WAVE / (time.perf_counter() - start)
        pool.stop()
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM delivery_delivery WHERE purpose = 'survey' AND status = 'sent'"
                " AND \"to\" LIKE 'wave%%@customer.example'"
            ).fetchall()
        ]
        wave = loop.messages(conn, ids)
        if len(wave) != WAVE or len({m[0] for m in wave}) != WAVE:
            raise SystemExit(f"survey wave: {len(wave)} invitations sent for {WAVE} people")
        ours = arrivals.check(before, wave, "survey wave")
        sessions = loop.smtp_sessions(manage)
        plain, theirs = loop.plain_smtplib(smtp_port, arrivals, wave, sessions)
        rows.append(
            (
                f"survey wave of {WAVE:,} emails, 1 worker (sinks got {loop.split_of(ours)})",
                f"{sent:,.0f} emails/s",
                f"smtplib, {sessions} sessions {plain:,.0f}/s ({loop.split_of(theirs)})",
                f"{sent / plain:.2f}",
                "≥ 0.50",
            )
        )
    theirs, ours = _people_create(port, key)
    rows.append(
        (
            "Delighted client Person.create",
            f"{theirs:,.0f} people/s",
            f"POST /api/v1/people {ours:,.0f}/s",
            f"{theirs / ours:.2f}",
            "—",
        )
    )
    return rows
