"""Insight page benchmarks over 10,000,000 answers (BENCH_INSIGHT_ANSWERS) from an
account per 50 of them, their comments read by the worker (themes and sentiment).

Each page's server time (gunicorn on loopback, logged in) against, in the same run:
  (a) the bare SQL aggregates that compute the same figures, on the same PostgreSQL;
  (b) DuckDB running those aggregates over the same rows exported to Parquet.
Pages: the dashboard (90-day NPS and change, 0–10 distribution, 12-month trend),
segments by tier (90 days and the 90 before; all answers, and those naming one theme
read as negative), the Themes page (each theme's answers, accounts, ARR, previous
period and sentiment, and the top themes' 12-month trend), and the follow-up program
(the last 90 days' detractor cases: whole, per owner, and 12 months by month).
Each page's figures (its chart data, or its CSV export with the same filters) are
compared with the bare SQL's before its time counts. `GET /api/v1/metrics` runs over
the same answers against its hand SQL.

Building ten million answers takes most of an hour. BENCH_INSIGHT_REUSE=1 keeps a
database that already holds them (run with the same BENCH_DATABASE_URL), to time the
pages again after a change without building it again.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import os
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import duckdb
import psycopg

from bench.common import metrics_row

ROOT = Path(__file__).resolve().parent.parent
ANSWERS = int(os.environ.get("BENCH_INSIGHT_ANSWERS", "10000000"))
ACCOUNTS = max(100, ANSWERS // 50)
PEOPLE = max(500, ANSWERS // 10)
REUSE = os.environ.get("BENCH_INSIGHT_REUSE", "") == "1"
DAYS = 730
OWNERS = 25
ROUNDS = 5
TIERS = ["enterprise", "mid-market", "smb", ""]
PLANS = ["Enterprise", "Growth", "Starter"]


def _copy(conn: psycopg.Connection, table: str, columns: str, rows: Any) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as cp:
        for row in rows:
            cp.write_row(row)


READ_BY = "sent-minilm-tuned-vader-3"
COMMENTS = {  # per class: the share of answers with a comment, some of them
    "detractor": (0.7, ["Checkout fails every other day.", "Support took a week to answer."]),
    "passive": (0.45, ["Does the job, but the reports are slow.", "Fine, pricey per seat."]),
    "promoter": (0.3, ["Love the new dashboards!", "The team is great to work with."]),
}


def _comment(rng: random.Random, score: int) -> tuple[str, str, str, float | None]:
    """An answer's comment, whether the worker has read it (a few still pending), and the
    sentiment it found: mostly negative for detractors, positive for promoters."""
    kind = "detractor" if score <= 6 else "passive" if score <= 8 else "promoter"
    share, texts = COMMENTS[kind]
    if rng.random() >= share:
        return "", "", "", None
    if rng.random() < 0.02:
        return rng.choice(texts), "pending", "", None
    lean = {"detractor": -0.5, "passive": 0.0, "promoter": 0.5}[kind]
    value = max(-1.0, min(1.0, rng.gauss(lean, 0.4)))
    label = "negative" if value < -0.2 else "positive" if value > 0.2 else "neutral"
    return rng.choice(texts), "done", label, round(value, 4)


def build(conn: psycopg.Connection, manage: Any) -> tuple[int, int, date]:
    """Accounts, people, ANSWERS answers over two years, and a case per detractor answer;
    with REUSE, what an earlier run built, when it is there."""
    rng = random.Random(11)
    now = datetime.now(UTC)
    if REUSE and conn.execute("SELECT count(*) FROM surveys_response").fetchone()[0] >= ANSWERS:  # type: ignore[index]
        return _built(conn, now)
    manage(
        "shell",
        "-c",
        "from closeloop.team.models import User\n"
        "from closeloop.loop.models import TriagePolicy\n"
        "TriagePolicy.current()\n"
        f"for i in range({OWNERS}):\n"
        "    User.objects.get_or_create(\n"
        "        username=f'owner{i}', defaults={'email': f'o{i}@b.example'})\n"
        "User.objects.filter(username='bench-viewer').delete()\n"
        "User.objects.create_user(\n"
        "    'bench-viewer', 'v@b.example', 'bench-pass-123', role='viewer')\n",
    )
    owners = [r[0] for r in conn.execute("SELECT id FROM team_user WHERE username LIKE 'owner%'")]
    policy = conn.execute("SELECT id FROM loop_triagepolicy LIMIT 1").fetchone()[0]  # type: ignore[index]
    survey = conn.execute("SELECT id FROM surveys_survey LIMIT 1").fetchone()
    if survey is None:
        manage("shell", "-c", "from closeloop.surveys.models import Survey; Survey.default()")
        survey = conn.execute("SELECT id FROM surveys_survey LIMIT 1").fetchone()
    survey_id = survey[0]  # type: ignore[index]
    _copy(
        conn,
        "surveys_account",
        "name, external_id, tier, arr_cents, currency, plan, company_size, industry, "
        "customer_since, owner_id, properties, is_demo, created_at, updated_at, churn_reason",
        (
            (
                f"Insight Account {i}",
                f"ins-acc-{i}",
                TIERS[i % 4],
                rng.randrange(100_000, 50_000_000),
                "USD",
                PLANS[i % 3],
                ["1-10", "11-50", "51-200", "201-1000"][i % 4],
                ["Fintech", "Retail", "Health", "Education", "Media"][i % 5],
                (now - timedelta(days=rng.randrange(30, 3000))).date(),
                owners[i % OWNERS],
                "{}",
                False,
                now,
                now,
                "",
            )
            for i in range(ACCOUNTS)
        ),
    )
    accounts = [r[0] for r in conn.execute("SELECT id FROM surveys_account ORDER BY id")]
    _copy(
        conn,
        "surveys_person",
        "email, phone, name, external_id, locale, account_id, properties, is_demo, "
        "created_at, updated_at",
        (
            (
                f"p{i}@ins.example",
                "",
                f"Person {i}",
                None,
                "en",
                accounts[i % ACCOUNTS],
                '{"role": "admin"}' if i % 3 == 0 else '{"role": "user"}',
                False,
                now,
                now,
            )
            for i in range(PEOPLE)
        ),
    )
    people = [
        (pid, aid)
        for pid, aid in conn.execute("SELECT id, account_id FROM surveys_person ORDER BY id")
    ]
    tags = ["pricing", "bugs", "support", "performance", "onboarding"]

    def answers() -> Any:
        for _ in range(ANSWERS):
            pid, aid = people[rng.randrange(PEOPLE)]
            score = min(10, max(0, round(rng.gauss(7.4, 2.4))))
            at = now - timedelta(seconds=rng.randrange(DAYS * 86400))
            tag = f'["{rng.choice(tags)}"]' if score <= 6 else "[]"
            comment, status, feeling, feeling_score = _comment(rng, score)
            yield (
                pid,
                survey_id,
                aid,
                score,
                comment,
                "import",
                '{"region": "emea"}',
                tag,
                "",
                False,
                at,
                at,
                status,
                feeling,
                feeling_score,
                READ_BY if status == "done" else "",
            )

    _copy(
        conn,
        "surveys_response",
        "person_id, survey_id, account_id, score, comment, source, properties, tags, notes, "
        "is_demo, created_at, updated_at, themes_status, sentiment, sentiment_score, "
        "sentiment_version",
        answers(),
    )
    conn.commit()
    # The worker's themes on the comments it read: one each, a second on every third, none
    # on one in seven (read, no theme: "unclassified").
    for salt, extra in ((7919, ""), (104729, "AND r.id % 3 = 0")):
        conn.execute(
            "INSERT INTO insights_themetag "
            "(theme_id, response_id, confidence, source, model_version, created_at) "
            "SELECT t.id, r.id, 0.8, 'model', 'bench', r.created_at FROM surveys_response r "
            "JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM insights_theme "
            "      WHERE retired_at IS NULL AND merged_into_id IS NULL) t "
            f"  ON t.k = (r.id * {salt}) % (SELECT count(*) FROM insights_theme "
            "      WHERE retired_at IS NULL AND merged_into_id IS NULL) "
            f"WHERE r.themes_status = 'done' AND r.id % 7 <> 0 {extra} "
            "ON CONFLICT DO NOTHING"
        )
    conn.commit()
    rows = conn.execute(
        "SELECT id, person_id, account_id, score, created_at FROM surveys_response "
        "WHERE score <= 6 ORDER BY id"
    ).fetchall()
    actions = ["call", "personal_email_call", "automated_email_survey", "automated_one_question"]

    def cases() -> Any:
        for n, (rid, pid, aid, score, at) in enumerate(rows):
            touch = None if n % 9 == 0 else at + timedelta(hours=rng.choice([1, 5, 20, 40, 60]))
            closed = n % 3 != 0 and at < now - timedelta(days=14)
            yield (
                "detractor",
                score,
                "severe" if score <= 2 else "moderate" if score <= 4 else "mild",
                False,
                actions[n % 4],
                "bench",
                "",
                "closed" if closed else "contacted",
                ["resolved", "cant_fix", "no_response"][n % 3] if closed else "",
                "",
                "",
                "",
                0.0,
                at + timedelta(hours=48),
                touch,
                0,
                f"ins{n}",
                at,
                at,
                at + timedelta(days=7) if closed else None,
                at,
                aid,
                owners[n % OWNERS],
                pid,
                rid,
                policy,
                "",
            )

    _copy(
        conn,
        "loop_followupcase",
        "loop, score, band, high_value, action, rule, routed_by, status, resolution, "
        "close_reason, close_note, detractor_type, priority, due_at, first_touch_at, "
        "escalation_level, reply_token, created_at, updated_at, closed_at, "
        "priority_refreshed_at, account_id, owner_id, person_id, response_id, policy_id, "
        "detractor_type_by",
        cases(),
    )
    conn.commit()
    conn.execute(
        "INSERT INTO loop_activity (kind, text, data, created_at, case_id) "
        "SELECT 'reply_received', '', '{}', created_at, id FROM loop_followupcase "
        "WHERE id % 4 = 0"
    )
    conn.commit()
    # Cases written around closeloop get their next answers as its migration gives them.
    manage("shell", "-c", "from closeloop.loop.next_answers import backfill; backfill()")
    for table in ("surveys_response", "surveys_account", "loop_followupcase", "loop_activity"):
        conn.execute(f"ANALYZE {table}")
    conn.commit()
    return _built(conn, now)


def _built(conn: psycopg.Connection, now: datetime) -> tuple[int, int, date]:
    total = conn.execute("SELECT count(*) FROM surveys_response").fetchone()[0]  # type: ignore[index]
    n_cases = conn.execute("SELECT count(*) FROM loop_followupcase").fetchone()[0]  # type: ignore[index]
    return total, n_cases, now.date()


class Browser:
    """One logged-in keep-alive session against the web pages."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.cookies: dict[str, str] = {}

    def _send(self, method: str, path: str, body: str | None = None) -> tuple[int, bytes]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = f"http://127.0.0.1:{self.conn.port}/login/"
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        for value in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        return response.status, response.read()

    def log_in(self, user: str, password: str) -> None:
        status, page = self._send("GET", "/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token is not None, (status, page[:500])
        form = {
            "csrfmiddlewaretoken": token.group(1).decode(),
            "username": user,
            "password": password,
        }
        status, _ = self._send("POST", "/login/", urlencode(form))
        assert status == 302, status

    def get(self, path: str) -> float:
        start = time.perf_counter()
        self.fetch(path)
        return time.perf_counter() - start

    def fetch(self, path: str) -> bytes:
        status, body = self._send("GET", path)
        assert status == 200, (path, status, body[:300])
        return body


def _median(run: Callable[[], Any]) -> float:
    run()  # warm caches once, as a page that has been opened before
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _queries(today: date, theme_id: int) -> dict[str, list[str]]:
    """The bare aggregates behind each page, in SQL that PostgreSQL and DuckDB both run.

    `{r}`, `{a}`, `{c}`, `{act}` and `{tt}` stand for the answers, accounts, cases,
    activities and theme tags; `theme_id` is the theme the filtered segments page asks for.
    """
    since = today - timedelta(days=89)
    prev = since - timedelta(days=90)
    end = today + timedelta(days=1)
    month = today.year * 12 + today.month - 1
    first_month = date((month - 11) // 12, (month - 11) % 12 + 1, 1)  # the trend's 12 months
    trend_from = date((month - 12) // 12, (month - 12) % 12 + 1, 1)  # and the month before
    ts = lambda d: f"TIMESTAMPTZ '{d.isoformat()} 00:00:00+00'"  # noqa: E731
    counts = lambda cond: (  # noqa: E731
        f"count(*) FILTER (WHERE {cond} score >= 9), "
        f"count(*) FILTER (WHERE {cond} score BETWEEN 7 AND 8), "
        f"count(*) FILTER (WHERE {cond} score <= 6)"
    )
    # The filtered segments page: answers naming the theme, read as negative.
    about = (
        "EXISTS (SELECT 1 FROM {tt} x WHERE x.response_id = r.id "
        f"AND x.theme_id = {theme_id}) AND r.sentiment = 'negative' AND "
    )
    compare_where = lambda cond="": (  # noqa: E731
        f"SELECT {counts(f'r.created_at >= {ts(since)} AND')}, "
        f"{counts(f'r.created_at < {ts(since)} AND')} FROM {{r}} r "
        f"WHERE {cond}r.created_at >= {ts(prev)} AND r.created_at < {ts(end)}"
    )
    compare = compare_where()
    by_tier = lambda cond="": (  # noqa: E731
        "SELECT CASE WHEN a.id IS NULL THEN '(no account)' "
        "ELSE coalesce(nullif(a.tier, ''), '(not set)') END AS tier, "
        f"{counts(f'r.created_at >= {ts(since)} AND')}, "
        f"{counts(f'r.created_at < {ts(since)} AND')} "
        "FROM {r} r LEFT JOIN {a} a ON a.id = r.account_id "
        f"WHERE {cond}r.created_at >= {ts(prev)} AND r.created_at < {ts(end)} GROUP BY 1"
    )
    in_window = lambda lo, hi: (  # noqa: E731
        f"r.created_at >= {ts(lo)} AND r.created_at < {ts(hi)}"
    )
    tagged = lambda lo, hi: (  # noqa: E731
        f"SELECT tg.theme_id, count(DISTINCT tg.response_id), count(DISTINCT r.account_id), "
        "avg(r.sentiment_score) FROM {tt} tg JOIN {r} r ON r.id = tg.response_id "
        f"WHERE {in_window(lo, hi)} GROUP BY 1"
    )
    window = f"created_at >= {ts(since)} AND created_at < {ts(end)}"
    last_90 = f"c.created_at >= {ts(since)} AND c.created_at < {ts(end)}"
    last_12 = f"c.created_at >= {ts(first_month)} AND c.created_at < {ts(end)}"
    facts = (
        "SELECT c.owner_id, c.action, c.status, c.resolution, c.created_at, c.first_touch_at, "
        "c.account_id, a.churned_at, "
        "EXISTS (SELECT 1 FROM {act} x WHERE x.case_id = c.id AND x.kind = 'reply_received') "
        "AS replied, "
        "(SELECT r2.score FROM {r} r2 WHERE r2.person_id = c.person_id "
        " AND r2.created_at > o.created_at ORDER BY r2.created_at, r2.id LIMIT 1) AS next_score "
        "FROM {c} c JOIN {r} o ON o.id = c.response_id LEFT JOIN {a} a ON a.id = c.account_id "
        "WHERE c.loop = 'detractor' AND "
    )
    due = "created_at <= current_timestamp - INTERVAL 48 HOUR"  # as the page: 48 h before now
    met = "first_touch_at <= created_at + INTERVAL 48 HOUR"
    auto, personal = "action LIKE 'automated_%'", "action NOT LIKE 'automated_%'"
    figures = (
        "count(*), "
        f"count(*) FILTER (WHERE {auto} AND {due}), "
        f"count(*) FILTER (WHERE {auto} AND {due} AND {met}), "
        f"count(*) FILTER (WHERE {personal} AND {due}), "
        f"count(*) FILTER (WHERE {personal} AND {due} AND {met}), "
        "count(*) FILTER (WHERE first_touch_at IS NOT NULL AND replied), "
        "count(*) FILTER (WHERE status = 'closed' AND resolution = 'resolved'), "
        "count(*) FILTER (WHERE status <> 'closed'), "
        "count(*) FILTER (WHERE next_score IS NOT NULL), "
        "count(*) FILTER (WHERE next_score >= 7), "
        "count(DISTINCT account_id) FILTER "
        "(WHERE first_touch_at IS NOT NULL AND churned_at > created_at), "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY epoch(first_touch_at) - epoch(created_at))"
    )
    return {
        "dashboard": [
            compare,
            f"SELECT score, count(*) FROM {{r}} WHERE {window} GROUP BY score",
            f"SELECT CAST(date_trunc('month', created_at) AS VARCHAR), {counts('')} FROM {{r}} "
            f"WHERE created_at >= {ts(trend_from)} AND created_at < {ts(end)} GROUP BY 1",
        ],
        "segments": [compare, by_tier()],
        "segments, one theme, negative": [compare_where(about), by_tier(about)],
        "themes": [
            tagged(since, end),
            tagged(prev, since),
            # Each theme's distinct accounts' ARR.
            "SELECT x.theme_id, sum(a.arr_cents) FROM (SELECT DISTINCT tg.theme_id, "
            "r.account_id FROM {tt} tg JOIN {r} r ON r.id = tg.response_id "
            f"WHERE {in_window(since, end)}) x JOIN {{a}} a ON a.id = x.account_id GROUP BY 1",
            # Comments read, in the period and in each month of the trend.
            f"SELECT count(*) FROM {{r}} r WHERE {in_window(since, end)} "
            "AND r.themes_status = 'done' AND r.comment <> ''",
            "SELECT CAST(date_trunc('month', r.created_at) AS VARCHAR), count(*) FROM {r} r "
            f"WHERE {in_window(first_month, end)} AND r.themes_status = 'done' "
            "AND r.comment <> '' GROUP BY 1",
            "SELECT CAST(date_trunc('month', r.created_at) AS VARCHAR), tg.theme_id, "
            "count(DISTINCT tg.response_id) FROM {tt} tg JOIN {r} r ON r.id = tg.response_id "
            f"WHERE {in_window(first_month, end)} GROUP BY 1, 2",
        ],
        "program": [
            f"WITH f AS ({facts}{last_90}) SELECT owner_id, {figures} FROM f "
            "GROUP BY GROUPING SETS ((owner_id), ())",
            f"WITH f AS ({facts}{last_12}) "
            f"SELECT CAST(date_trunc('month', created_at) AS VARCHAR), {figures} "
            "FROM f GROUP BY 1",
        ],
    }


PG_NAMES = {
    "r": "surveys_response",
    "a": "surveys_account",
    "c": "loop_followupcase",
    "act": "loop_activity",
    "tt": "insights_themetag",
}


def _pg(sql: str) -> str:
    """DuckDB's spellings, in PostgreSQL's."""
    sql = re.sub(r"INTERVAL (\d+) HOUR", r"INTERVAL '\1 hours'", sql)
    return re.sub(r"epoch\(([^)]+)\)", r"extract(epoch FROM \1)", sql).format(**PG_NAMES)


def export_parquet(conn: psycopg.Connection, out: Path) -> dict[str, str]:
    """The same rows, as Parquet files DuckDB reads. With REUSE, files exported earlier
    from this database with as many answers and cases are read again."""
    out.mkdir(parents=True, exist_ok=True)
    marker = out / "exported-from.txt"
    counts = conn.execute(
        "SELECT current_database(), (SELECT count(*) FROM surveys_response), "
        "(SELECT count(*) FROM loop_followupcase)"
    ).fetchone()
    same = REUSE and marker.exists() and marker.read_text() == repr(counts)
    marker.unlink(missing_ok=True)
    tables = {
        "r": (
            "surveys_response",
            "id, person_id, account_id, score, comment, themes_status, sentiment, "
            "sentiment_score, created_at",
        ),
        "a": ("surveys_account", "id, tier, arr_cents, churned_at"),
        "c": (
            "loop_followupcase",
            "id, loop, owner_id, action, status, resolution, created_at, "
            "first_touch_at, account_id, person_id, response_id",
        ),
        "act": ("loop_activity", "id, case_id, kind"),
        "tt": ("insights_themetag", "id, theme_id, response_id"),
    }
    names = {}
    duck = duckdb.connect()
    for key, (table, columns) in tables.items():
        csv_path, parquet = out / f"{table}.csv", out / f"{table}.parquet"
        names[key] = f"read_parquet('{parquet}')"
        if same and parquet.exists():
            continue  # the rows an earlier run exported from the same data
        with csv_path.open("wb") as f, conn.cursor() as cur:
            with cur.copy(
                f"COPY (SELECT {columns} FROM {table}) TO STDOUT (FORMAT csv, HEADER)"
            ) as cp:
                for chunk in cp:
                    f.write(chunk)
        # Timestamps typed by name: a column that is empty throughout would be read as text.
        stamps = [c.strip() for c in columns.split(",") if c.strip().endswith("_at")]
        types = ", ".join(f"'{c}': 'TIMESTAMPTZ'" for c in stamps)
        duck.execute(
            f"COPY (SELECT * FROM read_csv('{csv_path}', header = true, types = {{{types}}})) "
            f"TO '{parquet}' (FORMAT parquet)"
        )
        csv_path.unlink()
    marker.write_text(repr(counts))
    duck.close()
    return names


def _chart(page: bytes) -> Any:
    """The figures a page draws its chart from (its `json_script`)."""
    found = re.search(
        rb'<script id="chart-data" type="application/json">(.*?)</script>', page, re.S
    )
    assert found is not None, "the page has no chart data"
    return json.loads(found.group(1))


def _csv(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode())))


def _nps(p: int, passive: int, d: int) -> float:
    """NPS written out here, not the product's `core.nps.nps`: the check stays independent."""
    return 100.0 * (p - d) / (p + passive + d) if p + passive + d else 0.0


def _same(page: str, what: str, shown: Any, computed: Any) -> None:
    """A figure on a page equals the bare SQL's, or the bench stops: a fast wrong page is
    not a result."""
    if shown != computed:
        raise AssertionError(f"{page}: {what} shows {shown!r}, the SQL gives {computed!r}")


def _months(rows: list[tuple[Any, ...]], last: int = 12) -> list[tuple[Any, ...]]:
    """SQL rows keyed by a month's text (first column), the last `last` months in order."""
    return sorted(rows, key=lambda row: str(row[0]))[-last:]


def check(
    name: str,
    path: str,
    browser: Browser,
    results: list[list[tuple[Any, ...]]],
    slugs: dict[int, str],
    again: Callable[[], list[list[tuple[Any, ...]]]],
) -> str:
    """Compare what page `name` shows (its chart data, or its CSV export with the same
    filters) with the bare SQL's `results`, and `again()` the same SQL run after the
    page, for figures that move with the clock. What was checked, for the table."""
    query = path.partition("?")[2]
    if name == "dashboard":
        chart = _chart(browser.fetch(path))
        scores = dict(results[1])
        _same(
            name, "0–10 distribution", chart["distribution"], [scores.get(k, 0) for k in range(11)]
        )
        months = _months(results[2])
        _same(
            name,
            "answers per month",
            [p["n"] for p in chart["trend"]],
            [sum(m[1:]) for m in months],
        )
        nps = [round(_nps(*m[1:]), 1) for m in months]
        _same(name, "NPS per month", [p["nps"] for p in chart["trend"]], nps)
        return "distribution, 12 months' answers and NPS"
    if name.startswith("segments"):
        shown = {
            row["value"]: [int(row[k]) for k in ("promoters", "passives", "detractors")]
            + [int(row["previous_responses"])]
            for row in _csv(browser.fetch(f"/insights/segments.csv?{query}"))
        }
        computed = {
            tier: [*now, sum(before)]
            for tier, *counts in results[1]
            for now, before in [(counts[:3], counts[3:])]
            if sum(counts)
        }
        _same(name, "promoters, passives, detractors, previous answers per tier", shown, computed)
        return f"{len(shown)} tiers' counts, this period and the one before"
    if name == "program":
        overall = _csv(browser.fetch(f"/insights/program.csv?{query}"))[0]
        (before,) = [row for row in results[0] if row[0] is None]
        (after,) = [row for row in again()[0] if row[0] is None]
        keys = ["cases", "automated_due", "automated_met", "personal_due", "personal_met"]
        keys += ["replied", "resolved", "open", "answered_again", "moved_up"]
        shown = [int(overall[k]) for k in keys]
        # A case turns 48 hours old while the page is computed (seconds, at ten million
        # answers): the "due" counts may only be between the SQL's before and after.
        if all(b <= v <= a for v, b, a in zip(shown, before[1:11], after[1:11], strict=True)):
            before = (before[0], *shown, *before[11:])
        _same(name, ", ".join(keys), shown, list(before[1:11]))
        return "overall counts"
    if name == "themes":
        current, previous, arr, ((read,),), read_by_month, by_month = results
        before = {slugs[t]: n for t, n, _, _ in previous}
        arr_of = {slugs[t]: cents for t, cents in arr}
        computed = {
            slugs[t]: [
                n,
                f"{100.0 * n / read:.1f}",
                accounts,
                f"{arr_of.get(slugs[t], 0) / 100:.2f}",
                before.get(slugs[t], 0),
                f"{round(float(mean), 2)}",
            ]
            for t, n, accounts, mean in current
        }
        shown = {
            row["theme"]: [
                int(row["answers"]),
                row["share_of_read_comments"],
                int(row["accounts"]),
                row["arr"],
                int(row["previous_answers"]),
                f"{float(row['mean_sentiment'])}",
            ]
            for row in _csv(browser.fetch(f"/insights/themes.csv?{query}"))
        }
        _same(
            name,
            "answers, share, accounts, ARR, previous, mean sentiment per theme",
            shown,
            computed,
        )
        chart = _chart(browser.fetch(path))
        months = [m for m, _ in _months(read_by_month)]
        _same(
            name, "comments read per month", chart["read"], [n for _, n in _months(read_by_month)]
        )
        counts = {(str(m), slugs[t]): n for m, t, n in by_month}
        top = list(shown)[: len(chart["series"])]
        _same(
            name,
            "trend of the top themes",
            [s["counts"] for s in chart["series"]],
            [[counts.get((m, slug), 0) for m in months] for slug in top],
        )
        return f"{len(shown)} themes' figures, {len(top)} themes' 12-month trend"
    raise KeyError(name)


def run(conn: psycopg.Connection, manage: Any, port: int, key: str) -> list[tuple[str, ...]]:
    """Every insight page figure, and /metrics, as table rows (figure, closeloop, baseline,
    ratio, goal)."""
    started = time.perf_counter()
    total, n_cases, today = build(conn, manage)
    print(f"insight data: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    browser = Browser(port)
    browser.log_in("bench-viewer", "bench-pass-123")
    since = today - timedelta(days=89)
    slugs = dict(conn.execute("SELECT id, slug FROM insights_theme").fetchall())
    theme_id = next(k for k, v in slugs.items() if v == "bugs")
    pages = {
        "dashboard": "/",
        "segments": f"/insights/segments/?by=tier&since={since}&until={today}",
        "segments, one theme, negative": (
            f"/insights/segments/?by=tier&since={since}&until={today}&theme=bugs&sentiment=negative"
        ),
        "themes": f"/insights/themes/?since={since}&until={today}",
        "program": f"/insights/program/?since={since}&until={today}",
    }
    queries = _queries(today, theme_id)
    parquet = export_parquet(conn, ROOT / "var" / "bench" / "parquet")
    duck = duckdb.connect()
    duck.execute("SET TimeZone = 'UTC'")
    rows: list[tuple[str, ...]] = [
        (
            f"insight pages over {total:,} answers, {ACCOUNTS:,} accounts, {n_cases:,} cases",
            "",
            "",
            "",
            "",
        )
    ]
    # Each statement in its own transaction: the SQL's "now" (48 hours before it is when a
    # case falls due) is then the statement's, not the start of a long transaction's.
    conn.commit()
    conn.autocommit = True
    only = os.environ.get("BENCH_INSIGHT_PAGES", "")  # e.g. "program,themes" while working
    for name, path in pages.items():
        if only and name.split(",")[0] not in only.split(","):
            continue
        page = _median(lambda path=path: browser.get(path))
        sql = [_pg(q) for q in queries[name]]
        bare = _median(lambda sql=sql: [conn.execute(q).fetchall() for q in sql])
        rerun = lambda sql=sql: [conn.execute(q).fetchall() for q in sql]  # noqa: E731
        checked = check(name, path, browser, rerun(), slugs, rerun)
        conn.rollback()
        print(f"{name}: page {page:.3f}s, bare SQL {bare:.3f}s", file=sys.stderr, flush=True)
        ducked = [q.format(**parquet) for q in queries[name]]
        in_duck = _median(lambda ducked=ducked: [duck.execute(q).fetchall() for q in ducked])
        rows.append(
            (
                f"  {name} page (server time; checked against the SQL: {checked})",
                f"{page * 1000:,.0f} ms",
                f"bare SQL {bare * 1000:,.0f} ms",
                f"{page / bare:.2f}",
                "≤ 2.00",
            )
        )
        rows.append(
            (
                f"  {name}: same aggregates in DuckDB over Parquet",
                f"{in_duck * 1000:,.0f} ms",
                f"page {page * 1000:,.0f} ms",
                f"{page / in_duck:.2f}",
                "reported",
            )
        )
    duck.close()
    rows.append(metrics_row(conn, port, key, today))
    conn.autocommit = False
    return rows
