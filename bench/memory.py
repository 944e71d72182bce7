"""Memory and start-up of the processes `make run` starts (part 8).

  worker: resident memory once its models are loaded and after reading 10,000 comments,
          against a bare Python process that loads the same models and nothing else
  web:    resident memory of a web process after it loaded its models (it serves
          classify), and of one started with WEB_PRELOAD_MODELS=off that never classifies,
          against a bare Django process
  start:  seconds from starting gunicorn to the first classify answered with 200,
          against a bare process loading the same models

Each figure is read from /proc (VmRSS) of the real process, started as `make run`
starts it; the comments are real (the shipped examples, each made unique).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.common import free_port, gunicorn_command

ROOT = Path(__file__).resolve().parent.parent
COMMENTS = int(os.environ.get("BENCH_MEMORY_COMMENTS", "10000"))
WORKER_GOAL_MB = 600
WEB_GOAL_MB = 300
FIRST_CLASSIFY_GOAL_S = 5.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in found.read_text().split()] if found.exists() else []


def _env(db_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": db_url,
        "DATA_DIR": str(ROOT / "var" / "bench"),
        "LOG_LEVEL": "WARNING",
        "SENTIMENT_TUNING": "off",  # the tuning child is measured apart, if at all
        "EMAIL_URL": "console://",
        **extra,
    }


_BARE_MODELS = """
import os, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "closeloop.settings")
import django
django.setup()
from closeloop.themes import classifier, learning, sentiment
learning.current_model(); classifier.embedder(); reader = sentiment.current_sentiment()
reader.analyse(["warm"])
print(reader.version, flush=True)
sys.stdin.readline()
"""

_DEFAULT_SURVEY = "from closeloop.surveys.models import Survey; print(Survey.default().pk)"

_BARE_DJANGO = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "closeloop.settings")
import django
django.setup()
from closeloop.wsgi import application
print("up", flush=True)
sys.stdin.readline()
"""


def _bare(script: str, env: dict[str, str]) -> tuple[float, float, str]:
    """(RSS in MB, seconds to get there, what it printed) of a bare process."""
    began = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    said = proc.stdout.readline().strip()
    took = time.perf_counter() - began
    size = rss_mb(proc.pid)
    proc.stdin.write("\n")
    proc.stdin.close()
    proc.wait(30)
    return size, took, said


def _queue_comments(conn: psycopg.Connection, manage: Any) -> None:
    """COMMENTS unread answers with real, distinct comments for the worker to read."""
    from closeloop.themes.classifier import load_examples

    examples = [e.text for e in load_examples()]
    conn.execute("TRUNCATE surveys_response CASCADE")
    person = conn.execute(
        "INSERT INTO surveys_person (email, phone, name, locale, properties, is_demo, "
        "created_at, updated_at) VALUES ('memory@bench.example', '', 'Bench', 'en', '{}', "
        "false, now(), now()) ON CONFLICT (email) DO UPDATE SET name = 'Bench' RETURNING id"
    ).fetchone()
    survey = [manage("shell", "-c", _DEFAULT_SURVEY).splitlines()[-1]]
    assert person is not None
    columns = (
        "person_id, survey_id, score, comment, source, properties, tags, notes, is_demo, "
        "created_at, updated_at, themes_status"
    )
    with conn.cursor() as cur, cur.copy(f"COPY surveys_response ({columns}) FROM STDIN") as cp:
        for i in range(COMMENTS):
            text = f"{examples[i % len(examples)]} ({i})"
            cp.write_row(
                (
                    person[0],
                    survey[0],
                    8,
                    text,
                    "api",
                    "{}",
                    "[]",
                    "",
                    False,
                    "2026-01-01T00:00:00Z",
                    "2026-01-01T00:00:00Z",
                    "pending",
                )
            )
    conn.commit()


def _pending(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "SELECT count(*) FROM surveys_response WHERE themes_status = 'pending'"
    ).fetchone()
    conn.commit()
    return int(row[0]) if row else 0


def _worker_figures(db_url: str, conn: psycopg.Connection, manage: Any) -> dict[str, Any]:
    _queue_comments(conn, manage)
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runworker"],
        cwd=ROOT,
        env=_env(db_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 600
        while _pending(conn) == COMMENTS and time.monotonic() < deadline:
            time.sleep(0.2)
        loaded = rss_mb(proc.pid)  # the first batch is read: every model is in memory
        began = time.perf_counter()
        while _pending(conn) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _pending(conn) == 0, "the worker did not read every comment"
        rate = COMMENTS / (time.perf_counter() - began)
        done = rss_mb(proc.pid)
        version = conn.execute(
            "SELECT min(sentiment_version), count(*) FILTER (WHERE sentiment = '') "
            "FROM surveys_response"
        ).fetchone()
        conn.commit()
        assert version is not None and version[1] == 0, "comments left without sentiment"
        return {"loaded": loaded, "done": done, "rate": rate, "sentiment": version[0]}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def _classify(port: int, key: str, texts: list[str]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body = json.dumps({"texts": texts})
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    conn.request("POST", "/api/v1/themes/classify", body=body, headers=headers)
    reply = conn.getresponse()
    payload = reply.read()
    if reply.status == 200:
        assert len(json.loads(payload)["results"]) == len(texts)
    return reply.status


def _web_figures(db_url: str, key: str, preload: bool) -> dict[str, Any]:
    port = free_port()
    began = time.perf_counter()
    proc = subprocess.Popen(
        gunicorn_command(port, 1),
        cwd=ROOT,
        env=_env(db_url, WEB_PRELOAD_MODELS="on" if preload else "off"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        first = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if preload and _classify(port, key, ["The export keeps timing out"]) == 200:
                    first = time.perf_counter() - began
                    break
                if not preload:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    c.request("GET", "/health")
                    if c.getresponse().status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.1)
        time.sleep(1)
        (worker,) = _children(proc.pid)
        return {"first": first, "rss": rss_mb(worker)}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def run(db_url: str, conn: psycopg.Connection, manage: Any, key: str) -> list[tuple[str, ...]]:
    env = _env(db_url)
    bare_models, bare_load, _ = _bare(_BARE_MODELS, env)
    bare_django, _, _ = _bare(_BARE_DJANGO, env)
    worker = _worker_figures(db_url, conn, manage)
    web = _web_figures(db_url, key, preload=True)
    plain = _web_figures(db_url, key, preload=False)
    reader = "tuned" if "tuned" in str(worker["sentiment"]) else "interim"

    def verdict(value: float, goal: float) -> str:
        return f"≤ {goal:.0f} MB ({'met' if value <= goal else 'missed'})"

    first = web["first"]
    return [
        (
            f"worker RSS, models loaded ({reader} sentiment model); baseline: the models alone",
            f"{worker['loaded']:.0f} MB",
            f"{bare_models:.0f} MB",
            f"{worker['loaded'] / bare_models:.2f}",
            verdict(worker["loaded"], WORKER_GOAL_MB),
        ),
        (
            f"worker RSS after reading {COMMENTS:,} comments ({worker['rate']:.0f}/s)",
            f"{worker['done']:.0f} MB",
            f"{bare_models:.0f} MB",
            f"{worker['done'] / bare_models:.2f}",
            verdict(worker["done"], WORKER_GOAL_MB),
        ),
        (
            "web process RSS, models loaded (serves classify); baseline: bare Django",
            f"{web['rss']:.0f} MB",
            f"{bare_django:.0f} MB",
            f"{web['rss'] / bare_django:.2f}",
            "— (serves classification)",
        ),
        (
            "web process RSS, WEB_PRELOAD_MODELS=off, never classifying",
            f"{plain['rss']:.0f} MB",
            f"{bare_django:.0f} MB",
            f"{plain['rss'] / bare_django:.2f}",
            verdict(plain["rss"], WEB_GOAL_MB),
        ),
        (
            "gunicorn start → first classify answered; baseline: loading the models alone",
            "never" if first is None else f"{first:.1f} s",
            f"{bare_load:.1f} s",
            "—" if first is None else f"{first / bare_load:.2f}",
            f"< {FIRST_CLASSIFY_GOAL_S:.0f} s"
            + (
                ""
                if first is None
                else f" ({'met' if first < FIRST_CLASSIFY_GOAL_S else 'missed'})"
            ),
        ),
    ]
