"""Part 9: the follow-up conversation, played by the scripted personas of
tests/data/personas.json against the running server (gunicorn, PostgreSQL).

Each persona answers as a detractor through POST /api/v1/responses; the page personas
then talk through /c/<token>/messages, the email ones reply by signed POST /inbound/email
and read the next question from the case API. Their final summaries are scored against
what a person reading the exchange recorded. The baseline is what closeloop knew before
the conversation: the comment alone, read by the same models and signal patterns.

Figures: theme macro-F1, detractor-type accuracy, churn-intent precision/recall,
wants-call accuracy, competitor accuracy, completion rate, mean questions, linter
violations, and the p95 time to the next question (against the p95 of reading the
transcript, GET /c/<token>/messages, on the same server).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import pct

ROOT = Path(__file__).resolve().parent.parent
PERSONAS = ROOT / "tests" / "data" / "personas.json"
INBOUND_SECRET = "bench-inbound-secret"  # noqa: S105 (a loopback test secret)

Send = Callable[[str], tuple[list[dict[str, Any]], bool]]


def personas() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(PERSONAS.read_text())["personas"]
    return found


def play(persona: dict[str, Any], seen: list[dict[str, Any]], send: Send) -> list[dict[str, Any]]:
    """Answer closeloop's questions as the persona does: `on_confirm` to the read-back,
    `on_call` to the call offer, otherwise the next of its `replies`; it stops when the
    conversation ends or it has nothing more to say. Returns every message seen."""
    replies = list(persona["replies"])
    done = False
    while not done and seen:
        step = seen[-1].get("step")
        if step == "close":
            break
        if step == "confirm" and "on_confirm" in persona:
            text = persona["on_confirm"]
        elif step == "call" and "on_call" in persona:
            text = persona["on_call"]
        elif replies:
            text = replies.pop(0)
        else:
            break
        new, done = send(text)
        seen = [*seen, {"from": "customer", "text": text}, *new]
    return seen


def answer_body(persona: dict[str, Any], n: int) -> dict[str, Any]:
    person = {
        "email": f"{persona['id']}-{n}@personas.example",
        "name": "Sam Rivera",
        "locale": persona["locale"],
        "account": {"external_id": f"acc-{persona['id']}-{n}", "name": f"{persona['id']} Ltd"},
    }
    return {"person": person, "score": persona["score"], "comment": persona["comment"]}


def mime(case: dict[str, Any], text: str, n: int) -> bytes:
    lines = [
        f"From: Sam Rivera <{case['person']['email']}>",
        f"To: {case['reply_address']}",
        f"Subject: Re: Your {case['score']}/10",
        f"Message-ID: <persona-{n}-{time.time_ns()}@personas.example>",
        "Content-Type: text/plain; charset=utf-8",
        "",
        text,
    ]
    return "\r\n".join(lines).encode()


def signed(body: bytes) -> dict[str, str]:
    stamp = int(time.time())
    digest = hmac.new(INBOUND_SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    return {
        "Content-Type": "message/rfc822",
        "X-Closeloop-Timestamp": str(stamp),
        "X-Closeloop-Signature": "sha256=" + digest.hexdigest(),
    }


class Http:
    def __init__(self, port: int, key: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.key = key

    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        sent = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        self.conn.request(method, path, body=body, headers={**sent, **(headers or {})})
        response = self.conn.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, raw


def run_personas(port: int, key: str) -> dict[str, Any]:
    """Play every persona; returns what each ended with and the timings."""
    client = Http(port, key)
    waits: list[float] = []
    reads: list[float] = []
    outcomes = []
    for n, persona in enumerate(personas()):
        status, _ = client.call(
            "POST", "/api/v1/responses", json.dumps(answer_body(persona, n)).encode()
        )
        assert status == 201, (persona["id"], status)
        email = answer_body(persona, n)["person"]["email"]
        _, found = client.call("GET", f"/api/v1/cases?email={email}")
        case_id = found["results"][0]["id"]
        _, case = client.call("GET", f"/api/v1/cases/{case_id}")
        url = case["conversation"]["url"]
        path = "/" + url.split("/", 3)[3]

        if persona["channel"] == "email":

            def send(
                text: str, case: dict[str, Any] = case, n: int = n
            ) -> tuple[list[dict[str, Any]], bool]:
                raw = mime(case, text, n)
                status, _ = client.call("POST", "/inbound/email", raw, signed(raw))
                assert status == 202, status
                _, now = client.call("GET", f"/api/v1/cases/{case['id']}")
                talk = now["conversation"]
                last_customer = max(
                    i for i, m in enumerate(talk["messages"]) if m["from"] == "customer"
                )
                return talk["messages"][last_customer + 1 :], talk["status"] not in (
                    "not_started",
                    "active",
                )

            seen = play(
                persona,
                [{"from": "closeloop", "step": "open", "text": "(the outreach email)"}],
                send,
            )
        else:
            start = time.perf_counter()
            _, transcript = client.call("GET", path + "messages")
            reads.append(time.perf_counter() - start)

            def send(text: str, path: str = path) -> tuple[list[dict[str, Any]], bool]:
                start = time.perf_counter()
                status, got = client.call(
                    "POST", path + "messages", json.dumps({"text": text}).encode()
                )
                waits.append(time.perf_counter() - start)
                assert status == 200, (status, got)
                start = time.perf_counter()
                client.call("GET", path + "messages")
                reads.append(time.perf_counter() - start)
                return got["messages"], got["done"]

            seen = play(persona, transcript["messages"], send)
        _, final = client.call("GET", f"/api/v1/cases/{case_id}")
        before: list[str] = []
        if persona["comment"].strip():
            body = json.dumps({"texts": [persona["comment"]]}).encode()
            status, read = client.call("POST", "/api/v1/themes/classify", body)
            assert status == 200, (status, read)
            before = [t["slug"] for t in read["results"][0]["themes"]]
        outcomes.append(
            {
                "persona": persona,
                "seen": seen,
                "conversation": final["conversation"],
                "comment_themes": before,
            }
        )
    return {"outcomes": outcomes, "waits": waits, "reads": reads}


def macro_f1(truth: list[set[str]], guess: list[set[str]]) -> float:
    """The mean F1 over every theme either side names."""
    scores = []
    for theme in sorted(set().union(*truth, *guess)):
        tp = sum(1 for t, g in zip(truth, guess, strict=True) if theme in t and theme in g)
        fp = sum(1 for t, g in zip(truth, guess, strict=True) if theme not in t and theme in g)
        fn = sum(1 for t, g in zip(truth, guess, strict=True) if theme in t and theme not in g)
        if tp + fp + fn:
            scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores)


def precision_recall(truth: list[bool], guess: list[bool]) -> tuple[float, float]:
    tp = sum(1 for t, g in zip(truth, guess, strict=True) if t and g)
    fp = sum(1 for t, g in zip(truth, guess, strict=True) if not t and g)
    fn = sum(1 for t, g in zip(truth, guess, strict=True) if t and not g)
    return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 1.0)


def comment_only(persona: dict[str, Any], themes: list[str]) -> dict[str, Any]:
    """What closeloop knew before the conversation: the comment, read by the same
    patterns (and its themes as the models found them)."""
    from closeloop.loop import conversation as engine
    from closeloop.loop import signals

    said = signals.read(persona["comment"])
    facts = engine.Facts(persona["comment"], [(t, 1.0) for t in themes])
    return {
        "themes": themes,
        "detractor_type": engine.detractor_type(said, facts),
        "churn_intent": bool(said.churn),
        "competitor": said.competitor,
        "wants_call": bool(said.call),
    }


def score(outcomes: list[dict[str, Any]], summaries: list[dict[str, Any]]) -> dict[str, float]:
    expect = [o["persona"]["expect"] for o in outcomes]
    truth_themes = [set(e["themes"]) for e in expect]
    p, r = precision_recall(
        [e["churn_intent"] for e in expect], [s["churn_intent"] for s in summaries]
    )
    n = len(expect)
    return {
        "themes": macro_f1(truth_themes, [set(s["themes"]) for s in summaries]),
        "type": sum(
            e["detractor_type"] == s["detractor_type"]
            for e, s in zip(expect, summaries, strict=True)
        )
        / n,
        "churn_p": p,
        "churn_r": r,
        "call": sum(
            e["wants_call"] == s["wants_call"] for e, s in zip(expect, summaries, strict=True)
        )
        / n,
        "competitor": sum(
            (e["competitor"] or "").lower() == (s["competitor"] or "").lower()
            for e, s in zip(expect, summaries, strict=True)
        )
        / n,
    }


def ratio(ours: float, base: float) -> str:
    return f"{ours / base:.2f}" if base else "— (baseline 0)"


def run(port: int, key: str) -> list[tuple[str, str, str, str, str]]:
    import django

    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        os.environ["DJANGO_SETTINGS_MODULE"] = "closeloop.settings"
    django.setup()
    from closeloop.loop import outreach

    played = run_personas(port, key)
    outcomes = played["outcomes"]
    summaries = [o["conversation"]["summary"] for o in outcomes]
    ours = score(outcomes, summaries)
    before = score(outcomes, [comment_only(o["persona"], o["comment_themes"]) for o in outcomes])
    violations = 0
    questions = []
    for o in outcomes:
        mine = [m for m in o["conversation"]["messages"] if m["from"] == "closeloop"]
        questions.append(sum(1 for m in mine if m.get("step") not in ("close", None)))
        for m in mine:
            if m.get("step") is None:
                continue
            asks = m["step"] != "close"
            if o["persona"]["channel"] == "email" and m is mine[0]:
                continue  # the first email is the outreach template, linted on save
            if outreach.lint_message(m["text"], o["persona"]["locale"], asks):
                violations += 1
    ended = sum(o["conversation"]["status"] in ("completed", "stopped") for o in outcomes)
    wrong = [
        (o["persona"]["id"], o["conversation"]["summary"]["detractor_type"])
        for o in outcomes
        if o["conversation"]["summary"]["detractor_type"]
        != o["persona"]["expect"]["detractor_type"]
    ]
    if os.environ.get("BENCH_VERBOSE"):
        for o in outcomes:
            print(o["persona"]["id"], json.dumps(o["conversation"]["summary"])[:400])
        print("detractor type wrong:", wrong)
    n = len(outcomes)
    wait95, read95 = pct(played["waits"], 0.95), pct(played["reads"], 0.95)
    base = "the comment alone"
    return [
        (
            f"conversation: theme macro-F1 ({n} personas)",
            f"{ours['themes']:.2f}",
            f"{base} {before['themes']:.2f}",
            ratio(ours["themes"], before["themes"]),
            "≥ 0.80",
        ),
        (
            "  detractor type accuracy",
            f"{ours['type']:.2f}",
            f"{base} {before['type']:.2f}",
            ratio(ours["type"], before["type"]),
            "≥ 0.75",
        ),
        (
            "  churn intent precision / recall",
            f"{ours['churn_p']:.2f} / {ours['churn_r']:.2f}",
            f"{base} {before['churn_p']:.2f} / {before['churn_r']:.2f}",
            ratio(ours["churn_r"], before["churn_r"]),
            "recall ≥ 0.9",
        ),
        (
            "  wants-call accuracy",
            f"{ours['call']:.2f}",
            f"{base} {before['call']:.2f}",
            ratio(ours["call"], before["call"]),
            "≥ 0.9",
        ),
        (
            "  competitor named correctly",
            f"{ours['competitor']:.2f}",
            f"{base} {before['competitor']:.2f}",
            ratio(ours["competitor"], before["competitor"]),
            "—",
        ),
        (
            "  completed or stopped / mean questions",
            f"{ended / n:.2f} / {sum(questions) / n:.1f}",
            "—",
            "—",
            "≤ 6 questions",
        ),
        ("  linter violations", str(violations), "—", "—", "0"),
        (
            "  next question p95",
            f"{wait95 * 1000:.0f} ms",
            f"GET transcript {read95 * 1000:.0f} ms",
            f"{wait95 / max(read95, 1e-9):.2f}",
            "< 1 s",
        ),
    ]
