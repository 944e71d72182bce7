"""The closed-loop benchmark: from a detractor's answer to the alert and the first email.

Feeds detractor answers through the API while `runworker` processes send to a
loopback SMTP server (aiosmtpd) and a loopback Slack receiver, then times:

  API answer → owner's alert (Slack post) and → first outreach email, p50/p99,
  with one and with two workers;
  deliveries/s per worker against a plain smtplib loop sending the same
  messages to the same server in the same run.
"""

from __future__ import annotations

import atexit
import collections
import csv
import email.policy
import http.server
import json
import multiprocessing
import os
import random
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.parser import BytesParser
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
# Rounds with heavy work in the worker during the burst (empty: none).
SCENARIOS = os.environ.get("BENCH_LOOP_SCENARIOS", "retraining,import").split(",")


class Arrivals:
    """Every message the receivers got: each email's recipient, subject, arrival time and
    which sink process took it; each Slack post's marker and arrival time.

    The receivers run in processes of their own (`sinks`), as a real mail server would,
    so the API clients of this process do not slow them down; they log one line per
    message, which `refresh` reads.
    """

    def __init__(self, log: Path) -> None:
        self.log = log
        self.mail: list[tuple[str, str, float, str]] = []  # (recipient, subject, at, sink)
        self.emails: dict[tuple[str, str], float] = {}  # (recipient, subject) → first arrival
        self.slack: dict[str, float] = {}
        self._offset = 0
        self._partial = ""

    @property
    def count(self) -> int:
        return len(self.mail)

    def refresh(self) -> Arrivals:
        with self.log.open() as f:
            f.seek(self._offset)
            data = self._partial + f.read()
            self._offset = f.tell()
        *lines, self._partial = data.split("\n")
        for line in lines:
            kind, rest = line.split("\t", 1)
            if kind == "email":
                rcpts, subject, sink, at = rest.split("\t")
                for rcpt in rcpts.split(","):
                    self.mail.append((rcpt, subject, float(at), sink))
                    self.emails.setdefault((rcpt, subject), float(at))
            else:
                marker, at = rest.split("\t")
                self.slack.setdefault(marker, float(at))
        return self

    def check(self, since: int, sent: list[tuple[str, ...]], what: str) -> dict[str, int]:
        """The emails that arrived after the first `since` are exactly the `sent` outbox
        messages (`messages` rows: recipient and subject compared), each as often as sent:
        none missing, none extra, none twice. How many each sink process took."""
        got = collections.Counter((rcpt, subject) for rcpt, subject, _, _ in self.mail[since:])
        wanted = collections.Counter((m[0].lower(), one_line(m[3])) for m in sent)
        if got != wanted:
            missing, extra = wanted - got, got - wanted
            raise SystemExit(
                f"{what}: the receivers did not get exactly what was sent: "
                f"{sum(missing.values())} missing (e.g. {list(missing)[:2]}), "
                f"{sum(extra.values())} extra (e.g. {list(extra)[:2]})"
            )
        return dict(collections.Counter(sink for _, _, _, sink in self.mail[since:]))


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
    """A loopback SMTP server (and, in the first, the Slack receiver), logging each
    message's recipients and subject (decoded) and its arrival time."""
    out = open(log, "a", buffering=1)  # open for the life of the process
    lock = threading.Lock()
    me = str(os.getpid())

    def note(kind: str, *fields: str) -> None:
        with lock:
            out.write("\t".join([kind, *fields, str(time.time())]) + "\n")

    class Mail:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            parser = BytesParser(policy=email.policy.default)
            message = parser.parsebytes(envelope.content, headersonly=True)
            subject = one_line(str(message["Subject"] or ""))
            note("email", ",".join(r.lower() for r in envelope.rcpt_tos), subject, me)
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
        atexit.register(self.stop)  # a failed bench leaves no worker behind
        time.sleep(3)  # Django start-up, so timing starts with idle workers

    def stop(self) -> None:
        """SIGTERM (each lane ends after its step); killed if that takes over a minute."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_until(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("loop benchmark: deliveries did not all arrive in time")
        time.sleep(0.02)


OWNER = "alex@bench.example"
MARK = re.compile(r"loop-bench-(\S+?)@")


def latency_round(
    workers: int,
    run: int,
    db_url: str,
    conn: psycopg.Connection,
    client_factory: Any,
    arrivals: Arrivals,
    smtp_port: int,
    tmp: Path,
    disturb: Callable[[], Callable[[], bool]] | None = None,
) -> tuple[dict[str, list[float]], bool]:
    """Feed ANSWERS detractors through the API; seconds from each answer to its owner's
    alert email, its Slack alert and its first outreach email, each checked against the
    outbox row's recipient and subject. With `disturb`, heavy work is started in the
    workers first (it returns once that work runs, with a check of whether it still
    does) and the burst goes in while it runs; whether it still ran when the last
    answer went in comes back too."""
    pool = Workers(workers, db_url, smtp_port, tmp)
    still_running = disturb() if disturb else None
    answered: dict[str, float] = {}
    lock = threading.Lock()
    clients = 4
    per = ANSWERS // clients

    def feed(cid: int) -> None:
        client = client_factory()
        for i in range(per):
            tag = f"{run}-{cid}-{i}"
            body = {
                "person": {
                    "email": f"loop-bench-{tag}@customer.example",
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
    overlapped = still_running() if still_running else True
    owner, outreach = _outbox_subjects(conn, list(answered))

    def arrived() -> bool:
        arrivals.refresh()
        return all(
            t in arrivals.slack
            and (OWNER, owner[t]) in arrivals.emails
            and (_address(t), outreach[t]) in arrivals.emails
            for t in answered
        )

    wait_until(arrived, timeout=600)
    pool.stop()
    found = {
        "owner": [arrivals.emails[(OWNER, owner[t])] - at for t, at in answered.items()],
        "slack": [arrivals.slack[t] - at for t, at in answered.items()],
        "outreach": [
            arrivals.emails[(_address(t), outreach[t])] - at for t, at in answered.items()
        ],
    }
    return found, overlapped


def _address(tag: str) -> str:
    return f"loop-bench-{tag}@customer.example"


def _outbox_subjects(
    conn: psycopg.Connection, tags: list[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Each answer's owner alert subject and outreach subject, as its case's rows in the
    outbox have them (the receivers must get exactly those)."""
    rows = conn.execute(
        'SELECT d.purpose, d."to", d.subject, p.email FROM delivery_delivery d'
        " JOIN loop_followupcase c ON c.id = d.case_id JOIN surveys_person p ON p.id = c.person_id"
        " WHERE d.kind = 'email' AND d.purpose IN ('owner_alert', 'outreach')"
        " AND p.email = ANY(%s)",
        ([_address(t) for t in tags],),
    ).fetchall()
    conn.commit()
    owner, outreach = {}, {}
    for purpose, to, subject, address in rows:
        match = MARK.match(address)
        assert match is not None
        tag = match.group(1)
        if purpose == "owner_alert":
            assert to == OWNER, (to, subject)
            owner[tag] = one_line(subject)
        else:
            assert to == address, (to, address)
            outreach[tag] = one_line(subject)
    missing = set(tags) - (set(owner) & set(outreach))
    if missing:
        raise SystemExit(f"loop benchmark: no owner alert or outreach queued for {len(missing)}")
    return owner, outreach


def clear_outbox(conn: psycopg.Connection) -> None:
    """Retire rows left by earlier parts or rounds, so each measurement sends only its own."""
    conn.execute(
        "UPDATE delivery_delivery SET status = 'failed', last_error = 'retired by the benchmark'"
        " WHERE status IN ('pending', 'sending')"
    )
    conn.commit()


# --- heavy work in the worker during a burst -----------------------------------------


def retraining(manage: Any, conn: psycopg.Connection) -> Callable[[], Callable[[], bool]]:
    """A theme retraining in the workers' heavy lane: a person's correction (so the
    training set, and with it the model's version, changes) and Retrain now."""

    def start() -> Callable[[], bool]:
        marker = uuid.uuid4().hex[:8]
        manage(
            "shell",
            "-c",
            "from closeloop.themes.learning import request_training\n"
            "from closeloop.themes.models import ThemeExample\n"
            f"ThemeExample.objects.create(text='Exports time out every morning {marker}',"
            " themes=['bugs'], source='correction', via='bench')\n"
            "request_training()\n",
        )
        run_id = _wait_for(
            conn, "SELECT max(id) FROM insights_themetraining WHERE status = 'running'", 120
        )
        return lambda: _still(
            conn,
            "SELECT count(*) FROM insights_themetraining WHERE id = %s AND status = 'running'",
            (run_id,),
        )

    return start


def importing(manage: Any, conn: psycopg.Connection, tmp: Path) -> Callable[[], Callable[[], bool]]:
    """A large import in the workers' heavy lane: IMPORT_ROWS historical answers with
    comments (a Delighted export's worth), the burst going in once their comments are
    being read."""

    def start() -> Callable[[], bool]:
        path = tmp / "bench-import.csv"
        rng = random.Random(11)
        with path.open("w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["email", "score", "comment", "created_at", "account_external_id"])
            for i in range(IMPORT_ROWS):
                out.writerow(
                    [
                        f"imported{i}-{uuid.uuid4().hex[:6]}@customer{i % 300}.example",
                        rng.randint(0, 10),
                        f"{rng.choice(IMPORT_COMMENTS)} (#{i})",
                        f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T10:00:00Z",
                        f"imp-{i % 300}",
                    ]
                )
        manage(
            "shell",
            "-c",
            "from django.core.files.uploadedfile import SimpleUploadedFile\n"
            "from closeloop.loop import imports\n"
            f"data = open({str(path)!r}, 'rb').read()\n"
            "imports.queue(SimpleUploadedFile('bench-import.csv', data, 'text/csv'),"
            " 'responses', valid_only=True, dry_run=False, user=None)\n",
        )
        # The import is stored, and the worker is reading its comments.
        _wait_for(
            conn,
            "SELECT 1 FROM surveys_response WHERE source = 'import' AND themes_status = 'done'"
            " LIMIT 1",
            600,
        )
        return lambda: _still(
            conn,
            "SELECT count(*) FROM surveys_response WHERE source = 'import'"
            " AND themes_status = 'pending' AND comment <> ''",
        )

    return start


IMPORT_ROWS = int(os.environ.get("BENCH_LOOP_IMPORT_ROWS", "20000"))
IMPORT_COMMENTS = [
    "Exports keep timing out when the report is large",
    "Support took four days to answer my ticket",
    "Too expensive for what we use, the new pricing hurt",
    "Setup was confusing and the docs are out of date",
    "We need SSO and an audit log before we can roll it out",
    "The dashboard is slow and the filters reset every time",
    "Great product, the team loves it",
    "Billing charged us twice this month",
]


def _wait_for(conn: psycopg.Connection, sql: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        row = conn.execute(sql).fetchone()
        conn.commit()
        if row is not None and row[0] is not None:
            return row[0]
        if time.monotonic() > deadline:
            raise SystemExit(f"loop benchmark: gave up waiting for {sql}")
        time.sleep(0.1)


def _still(conn: psycopg.Connection, sql: str, params: tuple[Any, ...] = ()) -> bool:
    row = conn.execute(sql, params).fetchone()
    conn.commit()
    return bool(row and row[0])


# --- throughput ------------------------------------------------------------------------


def queue_cases(
    conn: psycopg.Connection, client_factory: Any, manage: Any, count: int, name: str
) -> list[Any]:
    """Open `count` real detractor cases through the batch API and the worker's intake
    lane (no other lane running), each with its owner's alert and its first outreach in
    the outbox, and hold those emails back. Their ids."""
    since = conn.execute("SELECT coalesce(max(id), 0) FROM delivery_delivery").fetchone()[0]  # type: ignore[index]
    conn.commit()
    client = client_factory()
    for start in range(0, count, 500):
        batch = [
            {
                "person": {
                    "email": f"{name}{i}@customer.example",
                    "name": f"Throughput {name} {i}",
                    "account": {"external_id": "loop-bench-acc"},
                },
                "score": 3 + i % 2,  # moderate: an automated first outreach
                "comment": "Exports keep timing out",
            }
            for i in range(start, min(count, start + 500))
        ]
        status, content = client.call("POST", "/api/v1/responses/batch", {"responses": batch})
        if status >= 300 or json.loads(content).get("rejected"):
            raise SystemExit(f"loop benchmark: batch refused: {status} {content[:300]!r}")
    manage("runworker", "--lane", "intake", "--until-idle")
    ids = [
        row[0]
        for row in conn.execute(
            "UPDATE delivery_delivery SET next_attempt_at = now() + interval '1 day'"
            " WHERE id > %s AND kind = 'email' AND status = 'pending' RETURNING id",
            (since,),
        ).fetchall()
    ]
    conn.commit()
    return ids


def messages(conn: psycopg.Connection, ids: list[Any]) -> list[tuple[str, ...]]:
    """(to, from, reply-to, subject, body, html) of these outbox emails."""
    rows = conn.execute(
        'SELECT "to", from_email, reply_to, subject, body, html FROM delivery_delivery'
        " WHERE id = ANY(%s) ORDER BY id",
        (ids,),
    ).fetchall()
    conn.commit()
    return [tuple(r) for r in rows]


def throughput(
    workers: int,
    db_url: str,
    conn: psycopg.Connection,
    arrivals: Arrivals,
    port: int,
    tmp: Path,
    ids: list[Any],
) -> tuple[float, dict[str, int]]:
    """Emails/s for `workers` workers sending the held emails of real cases: from their
    release (once the workers have read the cases' comments) to the moment every one has
    arrived and every case has its first touch and its timeline entries (what the worker
    writes after sending is part of the time)."""
    held = messages(conn, ids)
    pool = Workers(workers, db_url, port, tmp)
    # The cases' comments are read first (the heavy lane, beside the mail lane in the same
    # process), so what is timed is sending, as for the baseline.
    _wait_for(
        conn,
        "SELECT CASE WHEN count(*) = 0 THEN 1 END FROM surveys_response"
        " WHERE themes_status = 'pending'",
        600,
    )
    since = arrivals.refresh().count
    start = time.perf_counter()
    conn.execute("UPDATE delivery_delivery SET next_attempt_at = now() WHERE id = ANY(%s)", (ids,))
    conn.commit()

    def done() -> bool:
        if arrivals.refresh().count - since < len(ids):
            return False
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE c.first_touch_at IS NULL),"
            " count(*) FILTER (WHERE d.status <> 'sent')"
            " FROM delivery_delivery d JOIN loop_followupcase c ON c.id = d.case_id"
            " WHERE d.id = ANY(%s)",
            (ids,),
        ).fetchone()
        conn.commit()
        return row is not None and row[0] == 0 and row[1] == 0

    wait_until(done, timeout=600)
    elapsed = time.perf_counter() - start
    pool.stop()
    sinks = arrivals.check(since, held, f"{workers} worker(s)")
    logged = conn.execute(
        "SELECT count(*) FROM loop_activity a JOIN delivery_delivery d"
        " ON d.case_id = a.case_id AND d.purpose = 'outreach'"
        " WHERE d.id = ANY(%s) AND a.kind = 'email_sent'",
        (ids,),
    ).fetchone()[0]  # type: ignore[index]
    conn.commit()
    outreach = sum(1 for m in held if m[0] != OWNER)
    if logged != outreach:
        raise SystemExit(f"loop benchmark: {logged} outreach emails on timelines, {outreach} sent")
    return len(ids) / elapsed, sinks


def _plain_session(port: int, rows: list[tuple[str, ...]], start: Any) -> None:
    start.wait()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for i, (to, sender, reply_to, subject, body, html) in enumerate(rows):
            msg = EmailMessage()
            msg["From"] = sender
            msg["To"] = to
            if reply_to:
                msg["Reply-To"] = reply_to
            msg["Subject"] = subject
            msg["Message-ID"] = f"<plain-{os.getpid()}-{i}@bench.example>"
            msg.set_content(body)
            if html:
                msg.add_alternative(html, subtype="html")
            smtp.send_message(msg)


def plain_smtplib(
    port: int, arrivals: Arrivals, rows: list[tuple[str, ...]], sessions: int
) -> tuple[float, dict[str, int]]:
    """The same messages sent by plain smtplib loops, one per SMTP session a worker opens
    (`sessions`), each in a process of its own: the best a plain loop can do with as
    many connections. Checked like the worker's."""
    ctx = multiprocessing.get_context("fork")
    go = ctx.Event()
    procs = [
        ctx.Process(target=_plain_session, args=(port, rows[k::sessions], go))
        for k in range(sessions)
    ]
    for proc in procs:
        proc.start()
    since = arrivals.refresh().count
    start = time.perf_counter()
    go.set()
    wait_until(lambda: arrivals.refresh().count - since >= len(rows), timeout=600)
    elapsed = time.perf_counter() - start
    for proc in procs:
        proc.join(timeout=30)
    sinks = arrivals.check(since, rows, "smtplib")
    return len(rows) / elapsed, sinks


def smtp_sessions(manage: Any) -> int:
    """How many SMTP sessions a worker sends over (`sending.SMTP_SESSIONS`)."""
    told = manage(
        "shell", "-c", "from closeloop.delivery import sending; print(sending.SMTP_SESSIONS)"
    )
    return int(told.split()[-1])


def one_line(subject: str) -> str:
    """A subject as compared: folded header lines and runs of spaces as one space."""
    return " ".join(subject.split())


def split_of(sinks: dict[str, int]) -> str:
    return " + ".join(str(n) for n in sorted(sinks.values(), reverse=True))


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
            f"'{OWNER}', 'first_name': 'Alex', 'last_name': 'Morgan'}})",
        )
        client = client_factory()
        client.call(
            "POST",
            "/api/v1/accounts",
            {
                "external_id": "loop-bench-acc",
                "name": "Loop Bench",
                "tier": "smb",
                "owner_email": OWNER,
            },
        )
        client.call(
            "POST", "/api/v1/channels", {"kind": "slack", "url": f"http://127.0.0.1:{slack_port}/"}
        )
        rounds: list[tuple[int, str, Any]] = [(w, "idle", None) for w in ROUNDS]
        if "retraining" in SCENARIOS:
            rounds.append((1, "during a theme retraining", retraining(manage, conn)))
        if "import" in SCENARIOS:
            rounds.append(
                (1, f"while a {IMPORT_ROWS:,}-row import is read", importing(manage, conn, tmp))
            )
        for run, (workers, label, disturb) in enumerate(rounds, start=1):
            clear_outbox(conn)
            found, overlapped = latency_round(
                workers, run, db_url, conn, client_factory, arrivals, smtp_port, tmp, disturb
            )
            note = "" if overlapped else " (the heavy work ended before the burst did)"
            for key, what, goal in (
                ("owner", "owner's alert email", "p99 < 2 s"),
                ("slack", "Slack alert", "p99 < 2 s"),
                ("outreach", "first outreach email", "p99 < 10 s"),
            ):
                rows.append(
                    (
                        f"answer → {what}, {workers} worker(s), {label}{note}, p50 / p99",
                        f"{pct(found[key], 0.5):.2f} / {pct(found[key], 0.99):.2f} s",
                        "—",
                        "—",
                        goal,
                    )
                )
        # Throughput: real cases' emails, Slack off so only email is timed.
        clear_outbox(conn)
        conn.execute("UPDATE delivery_channel SET active = false")
        conn.commit()
        cases = THROUGHPUT_EMAILS // 2  # each case: its owner's alert and its outreach
        first = queue_cases(conn, client_factory, manage, cases, "one")
        sessions = smtp_sessions(manage)
        plain, plain_sinks = plain_smtplib(smtp_port, arrivals, messages(conn, first), sessions)
        one, one_sinks = throughput(1, db_url, conn, arrivals, smtp_port, tmp, first)
        second = queue_cases(conn, client_factory, manage, cases, "two")
        # What the receivers and this machine take from twice the sessions: 2 workers'
        # ceiling here (the receivers share the 2 cores with the workers and PostgreSQL).
        ceiling, _ = plain_smtplib(smtp_port, arrivals, messages(conn, second), 2 * sessions)
        two, two_sinks = throughput(2, db_url, conn, arrivals, smtp_port, tmp, second)
        rows.append(
            (
                f"deliveries/s, 1 worker ({len(first):,} emails of {cases:,} real cases; "
                f"sinks got {split_of(one_sinks)})",
                f"{one:,.0f} emails/s",
                f"smtplib, {sessions} sessions {plain:,.0f}/s ({split_of(plain_sinks)})",
                f"{one / plain:.2f}",
                "≥ 0.50",
            )
        )
        rows.append(
            (
                f"deliveries/s, 2 workers (sinks got {split_of(two_sinks)})",
                f"{two:,.0f} emails/s",
                f"1 worker {one:,.0f}/s",
                f"{two / one:.2f}",
                "≥ 1.80",
            )
        )
        rows.append(
            (
                "  2 workers against plain smtplib over as many sessions, same messages",
                f"{two:,.0f} emails/s",
                f"smtplib, {2 * sessions} sessions {ceiling:,.0f}/s",
                f"{two / ceiling:.2f}",
                "—",
            )
        )
    return rows
