"""`make faults`: the outbox under faults, on PostgreSQL with two workers.

For each fault a fresh database on a throw-away PostgreSQL cluster (started here
with `pg_ctl` on a port of its own), gunicorn and two `runworker` processes as
`make run` starts them, a loopback SMTP server and Slack receiver in a process of
their own, and FAULTS_ANSWERS detractors (default 1,000) through the API while:

  a. the SMTP server is killed, and restarted 20 s later;
  b. two more webhook channels point at a receiver answering garbage and at one
     trickling a byte a second, for the whole run;
  c. one worker is killed with SIGKILL, and restarted 5 s later;
  d. PostgreSQL is restarted.

Each detractor is owed three messages: the customer's outreach email, the owner's
alert email and the Slack alert. For each fault the table says how many were lost
(never arrived), how many arrived twice (by Message-ID, or for Slack by case),
how many customers were marked bounced (every address is good, so any is wrong),
and the p99 wait for the Slack alert and the outreach email, counted from the
answer or, for answers given while the fault lasted, from when it cleared.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import free_port, gunicorn_command, pct

ROOT = Path(__file__).resolve().parent.parent
ANSWERS = int(os.environ.get("FAULTS_ANSWERS", "1000"))
FAULTS = os.environ.get("FAULTS", "a,b,c,d").replace(" ", "").split(",")
PG_BIN = Path(os.environ.get("PG_BIN", "")) if os.environ.get("PG_BIN") else None


# --- a PostgreSQL cluster of our own ---------------------------------------------------------


def _pg_bin(name: str) -> str:
    if PG_BIN is not None:
        return str(PG_BIN / name)
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"faults: {name} not found (set PG_BIN)")
    return found


def _as_postgres(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root; run its tools as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class Cluster:
    """A throw-away cluster in a temporary directory, on a free port."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="closeloop-faults-pg-"))
        self.port = free_port()
        self.data = self.dir / "data"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(
            _as_postgres(
                [_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N"]
            ),
            check=True,
            capture_output=True,
        )

    def ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres(
                [
                    _pg_bin("pg_ctl"),
                    "-D",
                    str(self.data),
                    "-o",
                    f"-p {self.port} -k {self.dir} -c fsync=off",
                    "-l",
                    str(self.dir / "log"),
                    "-w",
                    *args,
                ]
            ),
            check=True,
            capture_output=True,
        )

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self.ctl("stop", "-m", "immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


# --- receivers: SMTP and Slack in a process of their own, garbage and trickle -----------------


def _sink(smtp_port: int, slack_port: int, log: str) -> None:
    from aiosmtpd.controller import Controller

    out = open(log, "a", buffering=1)
    lock = threading.Lock()

    def note(kind: str, key: str) -> None:
        with lock:
            out.write(f"{kind}\t{key}\t{time.time()}\n")

    class Mail:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            content = envelope.content.decode(errors="replace")
            mid = ""
            for line in content.split("\r\n"):
                if line.lower().startswith("message-id:"):
                    mid = line.split(":", 1)[1].strip()
                    break
            note("email", f"{','.join(envelope.rcpt_tos).lower()} {mid}")
            return "250 OK"

    import http.server

    class Slack(http.server.BaseHTTPRequestHandler):
        wbufsize = -1
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            marker = body.split("fault-", 1)[1].split("@", 1)[0] if "fault-" in body else "?"
            note("slack", marker)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    Controller(Mail(), hostname="127.0.0.1", port=smtp_port).start()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", slack_port), Slack)
    server.daemon_threads = True
    server.serve_forever()


class Sinks:
    """The SMTP server and Slack receiver process; the SMTP side can be killed."""

    def __init__(self, tmp: Path) -> None:
        self.log = tmp / "arrivals.log"
        self.log.write_text("")
        self.smtp_port, self.slack_port = free_port(), free_port()
        self.proc: Any = None
        self.start()

    def start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.proc = ctx.Process(target=_sink, args=(self.smtp_port, self.slack_port, str(self.log)))
        self.proc.start()
        _wait_port(self.smtp_port)
        _wait_port(self.slack_port)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join(10)

    def arrivals(self) -> tuple[Counter[str], dict[str, float], dict[str, float]]:
        """Emails by (recipient, Message-ID) and Slack alerts by case marker, counted; the
        first Slack arrival time of each marker; the first email time of each recipient."""
        mails: Counter[str] = Counter()
        slack: Counter[str] = Counter()
        first: dict[str, float] = {}
        emailed: dict[str, float] = {}
        for line in self.log.read_text().splitlines():
            kind, key, at = line.split("\t")
            if kind == "email":
                mails[key] += 1
                emailed.setdefault(key.split(" ", 1)[0], float(at))
            else:
                slack[key] += 1
                first.setdefault(key, float(at))
        return mails + Counter({f"slack {k}": n for k, n in slack.items()}), first, emailed


def _wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"faults: nothing listens on {port}")


def _bad_receivers() -> tuple[list[str], list[socket.socket]]:
    """One receiver answering garbage, one trickling a byte a second."""
    urls, listeners = [], []
    for kind in ("garbage", "trickle"):
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)
        urls.append(f"http://127.0.0.1:{listener.getsockname()[1]}/{kind}")

        def serve(conn: socket.socket, kind: str = kind) -> None:
            try:
                conn.recv(65536)
                if kind == "garbage":
                    conn.sendall(b"HELLO THERE\r\n\r\n")
                else:
                    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 600:
                        conn.sendall(bytes([byte]))
                        time.sleep(1)
            except OSError:
                pass
            finally:
                conn.close()

        def accept(listener: socket.socket = listener, kind: str = kind) -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                threading.Thread(target=serve, args=(conn, kind), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
    return urls, listeners


# --- the stack --------------------------------------------------------------------------------


@dataclass
class Stack:
    env: dict[str, str]
    port: int
    key: str
    tmp: Path
    web: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise SystemExit(f"faults: manage.py {args[0]} failed: {done.stderr[-2000:]}")
        return done.stdout.strip()

    def worker(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "runworker"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.tmp / "worker.log", "a"),
        )
        self.workers.append(proc)
        return proc

    def call(self, method: str, path: str, body: object) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(
                method,
                path,
                body=json.dumps(body),
                headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
            )
            reply = conn.getresponse()
            return reply.status, reply.read()
        finally:
            conn.close()

    def stop(self) -> None:
        for proc in [*self.workers, *([self.web] if self.web else [])]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.workers, *([self.web] if self.web else [])]:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def stack(cluster: Cluster, name: str, sinks: Sinks, tmp: Path) -> Iterator[Stack]:
    import psycopg

    with psycopg.connect(cluster.url("postgres"), autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}"')
        db.execute(f'CREATE DATABASE "{name}"')
    env = {
        **os.environ,
        "DATABASE_URL": cluster.url(name),
        "DATA_DIR": str(tmp),
        "EMAIL_URL": f"smtp://127.0.0.1:{sinks.smtp_port}",
        "OUTBOUND_ALLOW_HOSTS": "127.0.0.1",
        "WEBHOOK_TIMEOUT_SECONDS": "5",
        "WORKER_IDLE_SECONDS": "0.05",
        "SENTIMENT_TUNING": "off",
        "SITE_URL": "http://127.0.0.1:8000",
        "LOG_LEVEL": "WARNING",
        "DELIGHTED_RATE_LIMIT_PER_MINUTE": "0",
    }
    s = Stack(env, free_port(), "", tmp)
    s.manage("migrate", "--noinput")
    s.key = s.manage("create_api_key", "faults", "--admin").splitlines()[-1]
    s.manage(
        "shell",
        "-c",
        "from closeloop.team.models import User; User.objects.create_user('owner', "
        "'owner@fault.example', 'x', first_name='Olive', last_name='Owner')",
    )
    s.web = subprocess.Popen(
        gunicorn_command(s.port, 2, "--log-level", "warning"),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp / "web.log", "a"),
    )
    _wait_port(s.port, 60)
    s.call(
        "POST",
        "/api/v1/accounts",
        {
            "external_id": "acc",
            "name": "Fault Co",
            "tier": "smb",
            "owner_email": "owner@fault.example",
        },
    )
    s.call(
        "POST",
        "/api/v1/channels",
        {"kind": "slack", "url": f"http://127.0.0.1:{sinks.slack_port}/"},
    )
    try:
        yield s
    finally:
        s.stop()


# --- one fault --------------------------------------------------------------------------------


@dataclass
class Result:
    fault: str
    lost: int
    twice: int
    bounced: int
    p99: float
    note: str


def feed(s: Stack, tag: str, answered: dict[str, float], pause: threading.Event) -> None:
    """ANSWERS detractors through the API from four clients; a refused or failed call is
    retried (as an integration with an Idempotency-Key would), never dropped."""

    def client(cid: int) -> None:
        for i in range(ANSWERS // 4):
            marker = f"{tag}{cid}x{i}"
            body = {
                "person": {
                    "email": f"fault-{marker}@customer.example",
                    "account": {"external_id": "acc"},
                },
                "score": 3,
                "comment": "Exports keep failing",
                "external_id": f"fault-{marker}",
            }
            while True:
                pause.wait()
                try:
                    status, _ = s.call("POST", "/api/v1/responses", body)
                except OSError:
                    status = 0
                if status in (200, 201):
                    answered.setdefault(marker, time.time())
                    break
                time.sleep(0.5)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def run_fault(fault: str, cluster: Cluster, tmp: Path) -> Result:
    sinks = Sinks(tmp)
    cleared = [0.0]
    note = ""
    listeners: list[socket.socket] = []
    try:
        with stack(cluster, f"faults_{fault}", sinks, tmp) as s:
            if fault == "b":
                urls, listeners = _bad_receivers()
                for url in urls:
                    s.call("POST", "/api/v1/channels", {"kind": "webhook", "url": url})
                note = "garbage and trickling webhook receivers throughout"
            s.worker()
            s.worker()
            time.sleep(4)
            answered: dict[str, float] = {}
            go = threading.Event()
            go.set()
            feeder = threading.Thread(target=feed, args=(s, fault, answered, go))
            feeder.start()
            while len(answered) < ANSWERS // 3:
                time.sleep(0.1)
            if fault == "a":
                sinks.kill()
                time.sleep(20)
                sinks.start()
                note = "SMTP server down 20 s"
            elif fault == "c":
                victim = s.workers[0]
                victim.send_signal(signal.SIGKILL)
                time.sleep(5)
                s.worker()
                note = "a worker SIGKILLed, a new one 5 s later"
            elif fault == "d":
                cluster.ctl("restart", "-m", "fast")
                note = "PostgreSQL restarted"
            cleared[0] = time.time()
            feeder.join()
            expected = len(answered)
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                mails, first, _ = sinks.arrivals()
                got = sum(1 for m in answered if f"fault-{m}@customer.example" in _rcpts(mails))
                if got >= expected and len(first) >= expected:
                    break
                time.sleep(1)
            time.sleep(5)  # late duplicates, if any, arrive
            mails, first, emailed = sinks.arrivals()
            rcpts = _rcpts(mails)
            lost = sum(1 for m in answered if f"fault-{m}@customer.example" not in rcpts)
            lost += sum(1 for m in answered if m not in first)
            owner = sum(1 for k in mails if k.startswith("owner@fault.example "))
            lost += max(0, expected - owner)
            twice = sum(n - 1 for n in mails.values() if n > 1)
            bounced = int(
                s.manage(
                    "shell",
                    "-c",
                    "from closeloop.surveys.models import Person; "
                    "print(Person.objects.filter(bounced_at__isnull=False).count())",
                ).splitlines()[-1]
            )
            # From the answer, or from when the fault cleared if the answer came before:
            # the later of the Slack alert and the customer's outreach email.
            waits = [
                max(first[m], emailed[f"fault-{m}@customer.example"]) - max(t, cleared[0])
                for m, t in answered.items()
                if m in first and f"fault-{m}@customer.example" in emailed
            ]
            p99 = pct(waits, 0.99) if waits else float("nan")
            return Result(fault, lost, twice, bounced, p99, note)
    finally:
        for listener in listeners:
            listener.close()
        sinks.kill()


def _rcpts(mails: Counter[str]) -> set[str]:
    return {k.split(" ", 1)[0] for k in mails}


def main() -> None:
    cluster = Cluster()
    tmp = Path(tempfile.mkdtemp(prefix="closeloop-faults-"))
    results = []
    try:
        cluster.ctl("start")
        for fault in FAULTS:
            print(f"== fault {fault}", flush=True)
            results.append(run_fault(fault, cluster, tmp))
    finally:
        cluster.stop()
    print()
    print(f"Fault run: {ANSWERS} detractors through the API, two workers, PostgreSQL")
    print(
        "| fault | lost (goal 0) | sent twice (goal 0) | wrongly bounced (goal 0) "
        "| p99 to Slack alert and outreach once it cleared (goal < 60 s) |"
    )
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r.fault}. {r.note} | {r.lost} | {r.twice} | {r.bounced} | {r.p99:.1f} s |")
    if any(r.lost or r.bounced for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
