"""The closed-loop benchmark: from a detractor's answer to the alert and the first email.

Feeds detractor answers through the API while `runworker` processes send to a
loopback SMTP server (aiosmtpd) and a loopback Slack receiver, then times:

  API answer → owner's alert (Slack post) and → first outreach email, p50/p99,
  with one and with two workers;
  deliveries/s per worker against a plain smtplib loop sending the same
  messages to the same server in the same run.
"""

from __future__ import annotations

import http.server
import multiprocessing
import os
import signal
import smtplib
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import psycopg
from aiosmtpd.controller import Controller

from bench.common import free_port, pct

ROOT = Path(__file__).resolve().parent.parent
ANSWERS = int(os.environ.get("BENCH_LOOP_ANSWERS", "1000"))
THROUGHPUT_EMAILS = int(os.environ.get("BENCH_LOOP_EMAILS", "2000"))
# The loopback mail server runs as this many processes on one port, like a real MTA.
SMTP_PROCESSES = int(os.environ.get("BENCH_SMTP_PROCESSES", "2"))
ROUNDS = [int(w) for w in os.environ.get("BENCH_LOOP_WORKERS", "1,2").split(",")]


class Arrivals:
    """Wall-clock arrival time of each message, by recipient (email) or by marker (Slack).

    The receivers run in a process of their own (`sinks`), as a real mail
    server would, so the API clients of this process do not slow them down;
    they log one line per message, which `refresh` reads.
    """

    def __init__(self, log: Path) -> None:
        self.log = log
        self.emails: dict[str, float] = {}
        self.slack: dict[str, float] = {}
        self.count = 0
        self._offset = 0
        self._partial = ""

    def refresh(self) -> Arrivals:
        with self.log.open() as f:
            f.seek(self._offset)
            data = self._partial + f.read()
            self._offset = f.tell()
        *lines, self._partial = data.split("\n")
        for line in lines:
            kind, key, at = line.split("\t")
            if kind == "email":
                self.count += 1
                for rcpt in key.split(","):
                    self.emails.setdefault(rcpt, float(at))
            else:
                self.slack.setdefault(key, float(at))
        return self


class SharedPortController(Controller):
    """An SMTP server that shares its port with its siblings (SO_REUSEPORT), as a
    multi-process mail server would; the kernel spreads connections among them."""

    def _create_server(self) -> Any:
        return self.loop.create_server(
            self._factory_invoker, host=self.hostname, port=self.port, reuse_port=True
        )

    def _trigger_server(self) -> None:
        # aiosmtpd's start-up check connects once and waits for *this* server to answer;
        # on a shared port the kernel may hand that connection to a sibling, so knock
        # until this one has answered.
        for _ in range(200):
            super()._trigger_server()
            if self._factory_invoked.wait(0.05):
                return


def _sink_process(smtp_port: int, log: str, ready: Any, first: bool) -> None:
    """A loopback SMTP server (and, in the first, the Slack receiver), logging arrival times."""
    out = open(log, "a", buffering=1)  # open for the life of the process
    lock = threading.Lock()

    def note(kind: str, key: str) -> None:
        with lock:
            out.write(f"{kind}\t{key}\t{time.time()}\n")

    class Mail:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            note("email", ",".join(r.lower() for r in envelope.rcpt_tos))
            return "250 OK"

    class Handler(http.server.BaseHTTPRequestHandler):
        # One write per answer, sent at once: no Nagle/delayed-ACK stalls between header and body.
        wbufsize = -1
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            text = body.decode(errors="replace")
            marker = (
                text.split("loop-bench-", 1)[1].split("@", 1)[0] if "loop-bench-" in text else ""
            )
            note("slack", marker)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    SharedPortController(Mail(), hostname="127.0.0.1", port=smtp_port).start()
    if not first:
        ready.put(0)
        threading.Event().wait()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    ready.put(int(server.server_address[1]))
    server.serve_forever()


@contextmanager
def sinks(arrivals: Arrivals, smtp_port: int) -> Iterator[int]:
    """Start the receivers' processes; yields the Slack receiver's port."""
    arrivals.log.write_text("")
    ctx = multiprocessing.get_context("spawn")
    procs, ports = [], []
    for n in range(SMTP_PROCESSES):
        ready = ctx.Queue()
        proc = ctx.Process(target=_sink_process, args=(smtp_port, str(arrivals.log), ready, n == 0))
        proc.start()
        procs.append(proc)
        ports.append(int(ready.get(timeout=60)))
    try:
        yield ports[0]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.join(timeout=10)


class Workers:
    """`manage.py runworker` processes, started idle and stopped with SIGTERM."""

    def __init__(self, count: int, db_url: str, smtp_port: int, tmp: Path) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
            "WORKER_IDLE_SECONDS": "0.05",
            "DATA_DIR": str(tmp),
            "LOG_LEVEL": "WARNING",
            "SITE_URL": "http://127.0.0.1:8000",
        }
        self.procs = [
            subprocess.Popen(
                [sys.executable, "manage.py", "runworker"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=open(tmp / "worker.log", "a"),  # kept for reading after a run
            )
            for _ in range(count)
        ]
        time.sleep(3)  # Django start-up, so timing starts with idle workers

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            proc.wait(timeout=60)


def wait_until(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("loop benchmark: deliveries did not all arrive in time")
        time.sleep(0.02)


def latency_round(
    workers: int,
    run: int,
    db_url: str,
    client_factory: Any,
    arrivals: Arrivals,
    smtp_port: int,
    tmp: Path,
) -> tuple[list[float], list[float]]:
    """Feed ANSWERS detractors through the API; seconds to the Slack alert and to the outreach."""
    pool = Workers(workers, db_url, smtp_port, tmp)
    answered: dict[str, float] = {}
    lock = threading.Lock()
    clients = 4
    per = ANSWERS // clients

    def feed(cid: int) -> None:
        client = client_factory()
        for i in range(per):
            tag = f"{run}-{cid}-{i}"
            email = f"loop-bench-{tag}@customer.example"
            body = {
                "person": {
                    "email": email,
                    "name": f"loop-bench-{tag}@",
                    "account": {"external_id": "loop-bench-acc"},
                },
                "score": 3 + (i % 2),
                "comment": "Exports keep timing out",
            }
            status, content = client.call("POST", "/api/v1/responses", body)
            if status != 201:
                raise SystemExit(f"loop benchmark: {status} {content[:200]!r}")
            with lock:
                answered[tag] = time.time()

    threads = [threading.Thread(target=feed, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tags = list(answered)
    wait_until(
        lambda: (
            all(t in arrivals.refresh().slack for t in tags)
            and all(f"loop-bench-{t}@customer.example" in arrivals.emails for t in tags)
        ),
        timeout=600,
    )
    pool.stop()
    alert = [arrivals.slack[t] - answered[t] for t in tags]
    outreach = [arrivals.emails[f"loop-bench-{t}@customer.example"] - answered[t] for t in tags]
    return alert, outreach


def clear_outbox(conn: psycopg.Connection) -> None:
    """Retire rows left by earlier parts or rounds, so each measurement sends only its own."""
    conn.execute(
        "UPDATE delivery_delivery SET status = 'failed', last_error = 'retired by the benchmark'"
        " WHERE status IN ('pending', 'sending')"
    )
    conn.commit()


def queue_emails(conn: psycopg.Connection, count: int) -> None:
    now = datetime.now(UTC)
    columns = (
        'kind, purpose, status, "to", from_email, reply_to, subject, body, payload, event,'
        " event_id, attempts, next_attempt_at, claim_token, last_error, permanent_failure,"
        " bounced, created_at, html, headers"
    )
    with conn.cursor() as cur, cur.copy(f"COPY delivery_delivery ({columns}) FROM STDIN") as cp:
        for i in range(count):
            cp.write_row(
                (
                    "email",
                    "outreach",
                    "pending",
                    f"throughput{i}@customer.example",
                    "Alex Morgan <alex@bench.example>",
                    "replies+tok@bench.example",
                    "Your 4/10 for our product",
                    BODY,
                    "{}",
                    "",
                    uuid.uuid4(),
                    0,
                    now,
                    "",
                    "",
                    False,
                    False,
                    now,
                    "",
                    "{}",
                )
            )
    conn.commit()


BODY = (
    "Hi Pat,\n\nThanks for your score of 4 out of 10 and for taking the time to answer. I'm "
    "Alex, and I look after your account.\n\nWhat was the main experience behind your score?"
    "\n\nA couple of lines in reply are plenty.\n\nAlex Morgan"
)


def throughput(
    workers: int, db_url: str, conn: psycopg.Connection, arrivals: Arrivals, port: int, tmp: Path
) -> float:
    """Deliveries/s for `workers` workers sending THROUGHPUT_EMAILS queued emails."""
    pool = Workers(workers, db_url, port, tmp)
    before = arrivals.refresh().count
    start = time.perf_counter()
    queue_emails(conn, THROUGHPUT_EMAILS)
    wait_until(lambda: arrivals.refresh().count - before >= THROUGHPUT_EMAILS, timeout=600)
    elapsed = time.perf_counter() - start
    pool.stop()
    return THROUGHPUT_EMAILS / elapsed


def plain_smtplib(port: int, arrivals: Arrivals) -> float:
    """The same messages through one smtplib connection: the ceiling for the server."""
    before = arrivals.refresh().count
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for i in range(THROUGHPUT_EMAILS):
            msg = EmailMessage()
            msg["From"] = "Alex Morgan <alex@bench.example>"
            msg["To"] = f"plain{i}@customer.example"
            msg["Reply-To"] = "replies+tok@bench.example"
            msg["Subject"] = "Your 4/10 for our product"
            msg["Message-ID"] = f"<plain-{i}@bench.example>"
            msg.set_content(BODY)
            smtp.send_message(msg)
    wait_until(lambda: arrivals.refresh().count - before >= THROUGHPUT_EMAILS, timeout=60)
    return THROUGHPUT_EMAILS / (time.perf_counter() - start)


def run(
    db_url: str, conn: psycopg.Connection, manage: Any, client_factory: Any
) -> list[tuple[str, ...]]:
    """All closed-loop figures, as table rows (figure, closeloop, baseline, ratio, goal)."""

    tmp = ROOT / "var" / "bench"
    tmp.mkdir(parents=True, exist_ok=True)
    arrivals = Arrivals(tmp / "arrivals.log")
    smtp_port = free_port()
    rows: list[tuple[str, ...]] = []
    with sinks(arrivals, smtp_port) as slack_port:
        manage(
            "shell",
            "-c",
            "from closeloop.team.models import User; "
            "User.objects.get_or_create(username='loop-owner', defaults={'email': "
            "'alex@bench.example', 'first_name': 'Alex', 'last_name': 'Morgan'})",
        )
        client = client_factory()
        client.call(
            "POST",
            "/api/v1/accounts",
            {
                "external_id": "loop-bench-acc",
                "name": "Loop Bench",
                "tier": "smb",
                "owner_email": "alex@bench.example",
            },
        )
        client.call(
            "POST", "/api/v1/channels", {"kind": "slack", "url": f"http://127.0.0.1:{slack_port}/"}
        )
        for run, workers in enumerate(ROUNDS, start=1):
            clear_outbox(conn)
            alert, outreach = latency_round(
                workers, run, db_url, client_factory, arrivals, smtp_port, tmp
            )
            rows.append(
                (
                    f"answer → Slack alert, {workers} worker(s), p50 / p99",
                    f"{pct(alert, 0.5):.2f} / {pct(alert, 0.99):.2f} s",
                    "—",
                    "—",
                    "p99 < 10 s",
                )
            )
            rows.append(
                (
                    f"answer → first outreach email, {workers} worker(s)",
                    f"{pct(outreach, 0.5):.2f} / {pct(outreach, 0.99):.2f} s",
                    "—",
                    "—",
                    "p99 < 10 s",
                )
            )
        clear_outbox(conn)
        plain = plain_smtplib(smtp_port, arrivals)
        one = throughput(1, db_url, conn, arrivals, smtp_port, tmp)
        clear_outbox(conn)
        two = throughput(2, db_url, conn, arrivals, smtp_port, tmp)
        rows.append(
            (
                "deliveries/s, 1 worker",
                f"{one:,.0f} emails/s",
                f"smtplib loop {plain:,.0f}/s",
                f"{one / plain:.2f}",
                "≥ 0.50",
            )
        )
        rows.append(
            (
                "deliveries/s, 2 workers",
                f"{two:,.0f} emails/s",
                f"1 worker {one:,.0f}/s",
                f"{two / one:.2f}",
                "≥ 1.60",
            )
        )
    return rows
