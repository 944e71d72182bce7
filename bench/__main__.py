"""Ingest and metrics benchmarks against PostgreSQL with gunicorn (2 workers).

Every figure is printed beside a baseline measured in the same run, because
these machines are noisy: a ratio means more than a raw number.

  single POST /api/v1/responses, 8 keep-alive clients  vs  GET /health, same clients
  POST /api/v1/responses/batch rows/s                  vs  raw COPY of the same rows
    then the worker's triage of those answers           vs  the same COPY
  GET /api/v1/metrics over 1,000,000 responses          vs  the same aggregate in hand SQL
  insight pages and /metrics over 10,000,000 responses  vs  bare SQL, and DuckDB over Parquet
  follow-up conversation, 46 scripted personas          vs  the comment alone
  Segment batch ingest events/s                          vs  raw COPY of the same rows
  account health for 20,000 accounts                    vs  bare SQL over the same inputs
  health backtest AUC (churn in 90 days) on the demo     vs  NPS alone and survey signals

Set BENCH_DATABASE_URL to use another server (default: local PostgreSQL,
database closeloop_bench, dropped and re-created).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench import common
from bench.common import free_port, gunicorn_command, pct

ROOT = Path(__file__).resolve().parent.parent
# The bench's Slack receiver listens on loopback; every process it starts may call it.
os.environ.setdefault("OUTBOUND_ALLOW_HOSTS", "127.0.0.1")
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/closeloop_bench")
SINGLE_REQUESTS = int(os.environ.get("BENCH_SINGLE_REQUESTS", "2000"))
CLIENTS = 8
BATCHES = int(os.environ.get("BENCH_BATCHES", "30"))
BIG_ROWS = int(os.environ.get("BENCH_METRICS_ROWS", "1000000"))
# Extra gunicorn arguments, e.g. "--worker-class gthread --threads 4" (measured: no faster).
GUNICORN_ARGS = os.environ.get("BENCH_GUNICORN_ARGS", "").split()
# Which parts to run (1 single POSTs, 2 batch ingest, 3 metrics, 4 closed loop, 5 surveys,
# 6 insight pages, 7 theme classifier, 8 memory and start-up, 9 follow-up conversation
# personas, 10 Segment ingest and account health, 11 the health backtest); default all.
PARTS = set(os.environ.get("BENCH_PARTS", "1,2,3,4,5,6,7,8,9,10,11").replace(" ", "").split(","))


def recreate_database() -> None:
    common.recreate_database(DB_URL)


def manage(*args: str) -> str:
    return common.manage_on(DB_URL, *args, DATA_DIR=str(ROOT / "var" / "bench"))


@contextmanager
def gunicorn(port: int) -> Iterator[None]:
    env = {
        **os.environ,
        "DATABASE_URL": DB_URL,
        "DATA_DIR": str(ROOT / "var" / "bench"),
        "LOG_LEVEL": "WARNING",
        # The bench measures throughput; the Delighted API's per-key limit would cap it.
        "DELIGHTED_RATE_LIMIT_PER_MINUTE": "0",
        # Part 9's email personas reply through the signed inbound endpoint.
        "INBOUND_EMAIL_SECRET": "bench-inbound-secret",
        # Part 10 sends Segment batches with this write key.
        "SEGMENT_WRITE_KEY": "bench-segment-key",
    }
    proc = subprocess.Popen(
        [
            *gunicorn_command(port, 2, "--keep-alive", "30", "--log-level", "warning"),
            *GUNICORN_ARGS,
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


class Client:
    """One keep-alive HTTP connection sending JSON with an API key."""

    def __init__(self, port: int, key: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: object = None) -> tuple[int, bytes]:
        data = json.dumps(body) if body is not None else None
        self.conn.request(method, path, body=data, headers=self.headers)
        response = self.conn.getresponse()
        return response.status, response.read()


def run_clients(
    count: int,
    per_client: int,
    port: int,
    key: str,
    make: Callable[[int, int], tuple[str, str, object]],
    check: Callable[[bytes], str] | None = None,
) -> tuple[float, list[float]]:
    """Run `count` clients, each sending `per_client` requests; (elapsed seconds, latencies).
    A status of 300 or more fails the run, and so does what `check` finds wrong with a
    body (it returns "" when the body is right)."""
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []

    def worker(cid: int) -> None:
        client = Client(port, key)
        mine = []
        for i in range(per_client):
            method, path, body = make(cid, i)
            start = time.perf_counter()
            status, content = client.call(method, path, body)
            mine.append(time.perf_counter() - start)
            if status >= 300:
                errors.append(f"{status} {content[:200]!r}")
            elif check is not None and (wrong := check(content)):
                errors.append(wrong)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(count)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit(f"benchmark requests failed: {errors[:3]}")
    return elapsed, latencies


COMMENTS = [
    "Exports keep timing out when the report is large",
    "Support took four days to answer",
    "Great product, the team loves it",
    "Too expensive for what we use",
    "Setup was confusing and the docs are out of date",
]


def item(n: int, rng: random.Random) -> dict[str, object]:
    account = n % 500
    return {
        "person": {
            "email": f"bench{n}@customer{account}.example",
            "name": f"Bench Person {n}",
            "properties": {"role": rng.choice(["admin", "user"]), "seats": rng.randint(1, 200)},
            "account": {
                "external_id": f"acc-{account}",
                "name": f"Customer {account}",
                "tier": ["enterprise", "mid-market", "smb"][account % 3],
            },
        },
        "score": rng.randint(0, 10),
        "comment": rng.choice(COMMENTS),
        "external_id": f"bench-{n}",
    }


def copy_rows(conn: psycopg.Connection, rows: list[tuple[object, ...]]) -> float:
    """COPY rows into surveys_response; seconds taken."""
    columns = (
        "person_id, survey_id, account_id, score, comment, source, properties, tags, "
        "notes, is_demo, created_at, updated_at"
    )
    start = time.perf_counter()
    with conn.cursor() as cur, cur.copy(f"COPY surveys_response ({columns}) FROM STDIN") as cp:
        for row in rows:
            cp.write_row(row)
    conn.commit()
    return time.perf_counter() - start


def main() -> None:
    if os.environ.get("BENCH_INSIGHT_REUSE", "") != "1":
        recreate_database()
    manage("migrate", "--noinput")
    key = manage("create_api_key", "bench", "--admin")  # part 4 adds a Slack channel
    port = free_port()
    rng = random.Random(7)
    results: list[tuple[str, str, str, str, str]] = []

    with gunicorn(port), psycopg.connect(DB_URL) as conn:
        # 6. Insight pages over their own ten million answers, cleared afterwards for the
        # others (kept with BENCH_INSIGHT_REUSE=1).
        if "6" in PARTS:
            from bench import insights

            results.extend(insights.run(conn, manage, port, key))
            if not insights.REUSE:
                conn.execute(
                    "TRUNCATE loop_activity, loop_followupcase, surveys_response, "
                    "surveys_person, surveys_account CASCADE"
                )
                conn.commit()

        if PARTS & {"1", "2", "3"}:
            ingest_and_metrics(port, key, conn, rng, results)

        # 4. The closed loop: answer → alert and outreach, and delivery throughput.
        if "4" in PARTS and os.environ.get("BENCH_LOOP", "1") != "0":
            from bench import loop

            results.extend(loop.run(DB_URL, conn, manage, lambda: Client(port, key)))

        # 9. The follow-up conversation, played by the scripted personas.
        if "9" in PARTS:
            from bench import conversations

            results.extend(conversations.run(port, key))

        # 10. Churn intelligence: Segment ingest, then account health for many accounts.
        if "10" in PARTS:
            from bench import integrations

            results.extend(integrations.run(conn, manage, port))

        # 11. The health backtest on the demo history, in a database of its own.
        if "11" in PARTS:
            from bench import backtest

            results.extend(backtest.run(DB_URL))

        # 5. Surveys: a wave of survey emails, and the Delighted client's people create.
        if "5" in PARTS:
            from bench import surveys

            results.extend(surveys.run(DB_URL, conn, manage, port, key))

    # 7. The theme classifier on its held-out examples (no database, no server).
    if "7" in PARTS:
        from bench import themes

        results.extend(themes.run())

    # 8. Memory of the worker and a web process, and the first classify after a start.
    if "8" in PARTS:
        from bench import memory

        with psycopg.connect(DB_URL) as conn:
            results.extend(memory.run(DB_URL, conn, manage, key))

    header = ("figure", "closeloop", "baseline (same run)", "ratio", "goal")
    widths = [max(len(r[i]) for r in [header, *results]) for i in range(5)]
    print()
    for row in [header, tuple("-" * w for w in widths), *results]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


def ingest_and_metrics(
    port: int,
    key: str,
    conn: psycopg.Connection,
    rng: random.Random,
    results: list[tuple[str, str, str, str, str]],
) -> None:
    """Parts 1–3, which build on each other's rows: single POSTs, batches, then metrics."""
    # 1. Single POSTs against a no-op request on the same server and clients.
    per = SINGLE_REQUESTS // CLIENTS
    run_clients(CLIENTS, 20, port, key, lambda c, i: ("GET", "/health", None))  # warm-up
    base_s, base_lat = run_clients(CLIENTS, per, port, key, lambda c, i: ("GET", "/health", None))
    items = [item(n, rng) for n in range(CLIENTS * per)]
    post_s, post_lat = run_clients(
        CLIENTS,
        per,
        port,
        key,
        lambda c, i: ("POST", "/api/v1/responses", items[c * per + i]),
    )
    n = CLIENTS * per
    results.append(
        (
            "single POST /responses (8 clients)",
            f"{n / post_s:,.0f} req/s",
            f"GET /health {n / base_s:,.0f} req/s",
            f"{(n / post_s) / (n / base_s):.2f}",
            "—",
        )
    )
    results.append(
        (
            "  latency p50 / p99",
            f"{pct(post_lat, 0.5) * 1000:.1f} / {pct(post_lat, 0.99) * 1000:.1f} ms",
            f"{pct(base_lat, 0.5) * 1000:.1f} / {pct(base_lat, 0.99) * 1000:.1f} ms",
            f"{pct(post_lat, 0.5) / pct(base_lat, 0.5):.2f}",
            "—",
        )
    )

    # 2. Batch ingest, then the same rows by raw COPY.
    offset = 100_000
    batches = [[item(offset + b * 1000 + k, rng) for k in range(1000)] for b in range(BATCHES)]
    batch_s, _ = run_clients(
        2,
        BATCHES // 2,
        port,
        key,
        lambda c, i: (
            "POST",
            "/api/v1/responses/batch",
            {"responses": batches[c * (BATCHES // 2) + i]},
        ),
        check=_all_accepted,
    )
    rows_sent = (BATCHES // 2) * 2 * 1000
    _check_stored(conn, [row for batch in batches[: rows_sent // 1000] for row in batch])
    with conn.cursor() as cur:
        cur.execute(
            "SELECT person_id, survey_id, account_id, score, comment, source, properties::text,"
            " tags::text, notes, is_demo, created_at, updated_at FROM surveys_response"
            " WHERE external_id LIKE 'bench-1%%' AND length(external_id) >= 11"
        )
        same_rows = cur.fetchall()
    copy_s = copy_rows(conn, same_rows)
    batch_rate, copy_rate = rows_sent / batch_s, len(same_rows) / copy_s
    results.append(
        (
            "batch ingest (2 clients × 1,000 rows)",
            f"{batch_rate:,.0f} rows/s",
            f"COPY {copy_rate:,.0f} rows/s",
            f"{batch_rate / copy_rate:.2f}",
            "≥ 0.50",
        )
    )
    # The batch answers' triage, which the worker's intake lane does right after.
    triage_s = _triage_queued(conn, batches[: rows_sent // 1000])
    both = rows_sent / (batch_s + triage_s)
    results.append(
        (
            "  then triaged by the worker (intake lane)",
            f"{rows_sent / triage_s:,.0f} rows/s",
            f"COPY {copy_rate:,.0f} rows/s",
            f"{rows_sent / triage_s / copy_rate:.2f}",
            "—",
        )
    )
    results.append(
        ("  stored and triaged, one after the other", f"{both:,.0f} rows/s", "", "", "—")
    )

    # 3. Metrics over a million answers against the hand-written aggregate.
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM surveys_person")
        people = [r[0] for r in cur.fetchall()]
        cur.execute("SELECT id FROM surveys_survey LIMIT 1")
        survey = cur.fetchone()[0]  # type: ignore[index]
    now = datetime.now(UTC)
    existing = conn.execute("SELECT count(*) FROM surveys_response").fetchone()[0]  # type: ignore[index]
    big = [
        (
            rng.choice(people),
            survey,
            None,
            rng.randint(0, 10),
            "",
            "import",
            "{}",
            "[]",
            "",
            False,
            now - timedelta(seconds=rng.randint(0, 365 * 86400)),
            now,
        )
        for _ in range(max(0, BIG_ROWS - existing))
    ]
    copy_rows(conn, big)
    conn.execute("ANALYZE surveys_response")
    conn.commit()
    results.append(common.metrics_row(conn, port, key, now.date()))


def _triage_queued(conn: psycopg.Connection, sent: list[list[dict[str, Any]]]) -> float:
    """Run the worker's intake lane until the queue is empty; its seconds. Every
    detractor sent must then have one detractor case, with its timeline begun."""
    done = manage("runworker", "--lane", "intake", "--until-idle")
    seconds = float(done.rsplit(" in ", 1)[1].split()[0])
    detractors = sorted(
        str(row["person"]["email"])  # type: ignore[index]
        for batch in sent
        for row in batch
        if int(row["score"]) <= 6  # type: ignore[call-overload]
    )
    found = conn.execute(
        "SELECT p.email FROM loop_followupcase c JOIN surveys_person p ON p.id = c.person_id"
        " WHERE c.loop = 'detractor' AND p.email = ANY(%s)",
        (detractors,),
    ).fetchall()
    logged = conn.execute(
        "SELECT count(DISTINCT a.case_id) FROM loop_activity a"
        " JOIN loop_followupcase c ON c.id = a.case_id JOIN surveys_person p ON p.id = c.person_id"
        " WHERE c.loop = 'detractor' AND p.email = ANY(%s)",
        (detractors,),
    ).fetchone()
    waiting = conn.execute("SELECT count(*) FROM surveys_response WHERE triage_pending").fetchone()
    conn.commit()
    if sorted(r[0] for r in found) != sorted(detractors) or waiting != (0,):
        raise SystemExit(
            f"batch triage: {len(found)} cases for {len(detractors)} detractors,"
            f" {waiting} answers still waiting"
        )
    if logged != (len(detractors),):
        raise SystemExit(f"batch triage: {logged} cases with a timeline of {len(detractors)}")
    return seconds


def _all_accepted(body: bytes) -> str:
    """A batch's answer: all of its 1,000 rows stored, each with its id, none rejected."""
    found = json.loads(body)
    if found.get("rejected"):
        return f"batch rows rejected: {found['rejected'][:2]}"
    ids = found.get("ids") or []
    if found.get("accepted") != 1000 or len(ids) != 1000 or None in ids:
        return f"batch of 1,000 not all stored: {str(found)[:200]}"
    return ""


def _check_stored(conn: psycopg.Connection, sent: list[dict[str, Any]]) -> None:
    """The batch rows stored are the rows sent: one answer per external id, with its
    person, account, score and comment."""
    rows = conn.execute(
        "SELECT r.external_id, p.email, a.external_id, r.score, r.comment FROM surveys_response r"
        " JOIN surveys_person p ON p.id = r.person_id"
        " LEFT JOIN surveys_account a ON a.id = r.account_id WHERE r.external_id = ANY(%s)",
        ([str(item["external_id"]) for item in sent],),
    ).fetchall()
    conn.commit()
    stored = sorted(rows)
    wanted = sorted(
        (
            str(item["external_id"]),
            str(item["person"]["email"]),  # type: ignore[index]
            str(item["person"]["account"]["external_id"]),  # type: ignore[index]
            item["score"],
            item["comment"],
        )
        for item in sent
    )
    if stored != wanted:
        differ = [(a, b) for a, b in zip(stored, wanted, strict=False) if a != b][:2]
        raise SystemExit(
            f"batch ingest: {len(stored)} rows stored for {len(wanted)} sent"
            f"; first differences {differ}"
        )


if __name__ == "__main__":
    main()
