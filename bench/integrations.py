"""Churn-intelligence benchmarks (issue 22).

Segment `track` events through the batch call (2 clients, batches of 1,000, the write
key as Basic-auth user, as Segment's libraries send them) on gunicorn  vs  a raw COPY
of the same rows into the same table, in the same run. The work is checked: every
event stored once with its user, name and time, and the per-day roll-up adding up to
the events sent.

Account health for 20,000 live accounts (answers, billing signals, usage days,
tickets)  vs  one bare SQL pass reading the same inputs grouped by account. The
scores are checked: one account per kind of reason is built to a known score.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

EVENTS = int(os.environ.get("BENCH_SEGMENT_EVENTS", "60000"))
BATCH = 1000
ACCOUNTS = int(os.environ.get("BENCH_HEALTH_ACCOUNTS", "20000"))
WRITE_KEY = "bench-segment-key"


def _batches(start: datetime) -> list[bytes]:
    """EVENTS track events from 2,000 users of 400 groups, in batches of BATCH."""
    out = []
    for b in range(EVENTS // BATCH):
        batch = []
        for k in range(BATCH):
            n = b * BATCH + k
            user = n % 2000
            batch.append(
                {
                    "type": "track",
                    "userId": f"bench-user-{user}",
                    "event": ("Report Viewed", "Export Run", "Dashboard Opened")[n % 3],
                    "messageId": f"bench-msg-{n}",
                    "timestamp": (start - timedelta(minutes=n % 43_200)).isoformat(),
                    "context": {"groupId": f"bench-group-{user % 400}"},
                    "properties": {"n": n},
                }
            )
        out.append(json.dumps({"batch": batch}).encode())
    return out


def _send(port: int, batches: list[bytes]) -> float:
    """Two keep-alive clients share the batches; seconds taken."""
    auth = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    errors: list[str] = []

    def client(mine: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for body in mine:
            conn.request("POST", "/api/v1/segment/v1/batch", body=body, headers=headers)
            response = conn.getresponse()
            answer = response.read()
            if response.status != 200:
                errors.append(f"{response.status} {answer[:200]!r}")

    threads = [threading.Thread(target=client, args=(batches[i::2],)) for i in range(2)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    assert not errors, errors[:3]
    return elapsed


def segment(conn: psycopg.Connection, port: int) -> list[tuple[str, ...]]:
    start = datetime.now(UTC) - timedelta(minutes=5)
    batches = _batches(start)
    _send(port, batches[:2])  # warm-up: the first identities and imports
    conn.execute("TRUNCATE integrations_usageday, integrations_usageevent")
    conn.commit()
    seconds = _send(port, batches)
    stored = conn.execute(
        "SELECT count(*), count(DISTINCT message_id) FROM integrations_usageevent"
    ).fetchone()
    rolled = conn.execute("SELECT coalesce(sum(events), 0) FROM integrations_usageday").fetchone()
    assert stored == (EVENTS, EVENTS), stored
    assert rolled is not None and rolled[0] == EVENTS, rolled
    sample = conn.execute(
        "SELECT i.ref, e.event, e.at FROM integrations_usageevent e "
        "JOIN integrations_usageidentity i ON i.id = e.identity_id "
        "WHERE e.message_id = 'bench-msg-4321'"
    ).fetchone()
    assert sample is not None
    assert sample[0] == "bench-user-321" and sample[1] == "Export Run", sample  # 4321 % 3 = 1
    assert abs((sample[2] - (start - timedelta(minutes=4321))).total_seconds()) < 1, sample
    rows = conn.execute(
        "SELECT source, message_id || '-copy', identity_id, event, at, received_at "
        "FROM integrations_usageevent"
    ).fetchall()
    copy_start = time.perf_counter()
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY integrations_usageevent (source, message_id, identity_id, event, at, "
            "received_at) FROM STDIN"
        ) as cp,
    ):
        for row in rows:
            cp.write_row(row)
    conn.commit()
    copy_seconds = time.perf_counter() - copy_start
    rate, copy_rate = EVENTS / seconds, len(rows) / copy_seconds
    return [
        (
            f"Segment batch ingest (2 clients × {BATCH:,} tracks)",
            f"{rate:,.0f} events/s",
            f"COPY {copy_rate:,.0f} rows/s",
            f"{rate / copy_rate:.2f}",
            "≥ 10,000 events/s",
        )
    ]


BUILD = """
import random, time, json
from datetime import timedelta
from django.db import connection
from django.utils import timezone
from closeloop.integrations.models import AccountSignal, Ticket
from closeloop.surveys.models import Account, Person, Response, Survey

n = {accounts}
rng = random.Random(22)
now = timezone.now()
survey = Survey.default()
Account.objects.bulk_create(
    [Account(name=f"H{{i}}", external_id=f"h-{{i}}", arr_cents=rng.randrange(1, 500) * 100_000)
     for i in range(n)], batch_size=5000)
ids = dict(Account.objects.filter(external_id__startswith="h-").values_list("external_id", "pk"))
Person.objects.bulk_create(
    [Person(email=f"p{{i}}@h.example", account_id=ids[f"h-{{i}}"]) for i in range(n)],
    batch_size=5000)
people = dict(Person.objects.filter(email__endswith="@h.example").values_list("email", "pk"))
answers = []
for i in range(n):
    score = 3 if i == 0 else (10 if i < 4 else rng.choice([2, 5, 7, 8, 9, 10, 10]))
    for back in (100, 20):
        answers.append(Response(person_id=people[f"p{{i}}@h.example"], survey=survey,
                                account_id=ids[f"h-{{i}}"], score=score,
                                created_at=now - timedelta(days=back)))
Response.objects.bulk_create(answers, batch_size=5000)
AccountSignal.objects.bulk_create(
    [AccountSignal(account_id=ids[f"h-{{i}}"], kind="payment_failed", at=now - timedelta(days=3))
     for i in range(0, n, 7)], batch_size=5000)
Ticket.objects.bulk_create(
    [Ticket(source="api", ticket_id=f"t{{i}}-{{k}}", account_id=ids[f"h-{{i}}"], status="open",
            priority="urgent" if k == 0 else "normal", opened_at=now - timedelta(days=10 + k),
            updated_at=now - timedelta(days=1))
     for i in range(0, n, 3) for k in range(3)], batch_size=5000)
with connection.cursor() as cur:
    cur.execute(
        "INSERT INTO integrations_usageidentity (source, kind, ref, group_ref, account_id, traits,"
        " first_seen_at, last_seen_at) SELECT 'segment', 'user', 'hu-' || a.id || '-' || g, '',"
        " a.id, '{{}}', now(), now() FROM surveys_account a, generate_series(1, 3) g"
        " WHERE a.external_id LIKE 'h-%'")
    # Steady use on 60 days, except account h-1: none in the last 30 days.
    cur.execute(
        "INSERT INTO integrations_usageday (identity_id, day, events, last_at)"
        " SELECT i.id, current_date - d, 4, now() - d * interval '1 day'"
        " FROM integrations_usageidentity i JOIN surveys_account a ON a.id = i.account_id,"
        " generate_series(0, 59) d"
        " WHERE a.external_id LIKE 'h-%' AND (d + i.id) % 2 = 0"
        " AND NOT (a.external_id = 'h-1' AND d < 30)")
print(json.dumps({{"h-0": ids["h-0"], "h-1": ids["h-1"], "h-2": ids["h-2"], "h-3": ids["h-3"]}}))
"""

SCORE = """
import json, time
from closeloop.insights import health
start = time.perf_counter()
found = health.scores()
seconds = time.perf_counter() - start
marked = {{h.account.external_id: [h.score, sorted(p for p, _ in h.reasons)]
          for h in found if h.account.external_id in ("h-0", "h-1", "h-2", "h-3")}}
print(json.dumps({{"seconds": seconds, "n": len(found), "marked": marked}}))
"""

BARE = """
SELECT a.id, r.mean, s.n, u.days, t.open
FROM surveys_account a
LEFT JOIN (SELECT account_id, avg(score) mean FROM surveys_response
           WHERE created_at > now() - interval '180 days' GROUP BY account_id) r
       ON r.account_id = a.id
LEFT JOIN (SELECT account_id, count(*) n FROM integrations_accountsignal
           WHERE at > now() - interval '90 days' GROUP BY account_id) s ON s.account_id = a.id
LEFT JOIN (SELECT i.account_id, count(*) days FROM integrations_usageday d
           JOIN integrations_usageidentity i ON i.id = d.identity_id
           WHERE d.day > current_date - 60 GROUP BY i.account_id) u ON u.account_id = a.id
LEFT JOIN (SELECT account_id, count(*) FILTER (WHERE status = 'open') open
           FROM integrations_ticket GROUP BY account_id) t ON t.account_id = a.id
WHERE a.churned_at IS NULL
"""


def health(conn: psycopg.Connection, manage: Any) -> list[tuple[str, ...]]:
    conn.execute(
        "TRUNCATE integrations_usageday, integrations_usageevent, integrations_usageidentity, "
        "integrations_ticket, integrations_accountsignal, surveys_response, surveys_person, "
        "surveys_account CASCADE"
    )
    conn.commit()
    manage("shell", "-c", BUILD.format(accounts=ACCOUNTS))
    conn.execute("ANALYZE")
    conn.commit()
    result = json.loads(manage("shell", "-c", SCORE.format()).splitlines()[-1])
    assert result["n"] == ACCOUNTS, result["n"]
    # h-0: detractor (−25), a failed payment (−15), 3 open tickets (−10), one urgent and
    # open for over a week (−10); h-1: no use for 30 days (−20), use down 100% (−15) and
    # active people down 100% (−10); h-2: a promoter with steady use, nothing taken;
    # h-3: no failed payment (3 is not a multiple of 7) but the ticket load: −10 −10.
    marked = result["marked"]
    assert marked["h-0"] == [40, [-25, -15, -10, -10]], marked["h-0"]
    assert marked["h-1"] == [55, [-20, -15, -10]], marked["h-1"]
    assert marked["h-2"] == [100, []], marked["h-2"]
    assert marked["h-3"] == [80, [-10, -10]], marked["h-3"]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        rows = conn.execute(BARE).fetchall()
        best = min(best, time.perf_counter() - start)
        assert len(rows) == ACCOUNTS
    return [
        (
            f"account health, {ACCOUNTS:,} accounts",
            f"{result['seconds']:.1f} s",
            f"bare SQL over the same inputs {best:.2f} s",
            f"{result['seconds'] / best:.1f}",
            "< 30 s",
        )
    ]


def run(conn: psycopg.Connection, manage: Any, port: int) -> list[tuple[str, ...]]:
    return segment(conn, port) + health(conn, manage)
