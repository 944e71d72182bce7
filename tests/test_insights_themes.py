"""The themes insight page and API: themes by answers and ARR beside the period before,
their share of read comments and sentiment, and their trend, recounted from the rows."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from closeloop.core.periods import Grain, day_start, today
from closeloop.insights import top_themes
from closeloop.surveys.models import Account, Person, Response, Survey
from closeloop.team.models import User
from closeloop.themes.models import Theme, ThemeTag

from .conftest import ApiClient

pytestmark = pytest.mark.django_db

SLUGS = ["billing", "bugs", "support", "pricing"]


@pytest.fixture
def answers(db: None) -> list[Response]:
    """120 commented answers over 60 days, each read by the worker with one or two themes
    (a fifth with none) and a sentiment score."""
    survey = Survey.objects.get_or_create(slug="nps", defaults={"name": "NPS"})[0]
    accounts = [
        Account.objects.create(name=f"A{i}", external_id=f"a{i}", arr_cents=(i + 1) * 100_000)
        for i in range(6)
    ]
    themes = {t.slug: t for t in Theme.objects.filter(slug__in=SLUGS)}
    made = []
    now = timezone.now()
    for i in range(120):
        person = Person.objects.create(email=f"p{i}@example.com", account=accounts[i % 6])
        made.append(
            Response.objects.create(
                person=person,
                account=accounts[i % 6],
                survey=survey,
                score=i % 11,
                comment=f"comment {i}",
                created_at=now - timedelta(days=i / 2),
                themes_status="done",
                sentiment="negative" if i % 3 else "positive",
                sentiment_score=-0.5 if i % 3 else 0.6,
            )
        )
    for i, r in enumerate(made):
        if i % 5 == 0:
            continue
        chosen = {SLUGS[i % 4]} | ({SLUGS[(i + 1) % 4]} if i % 7 == 0 else set())
        for slug in chosen:
            ThemeTag.objects.create(response=r, theme=themes[slug], confidence=0.8, source="model")
    return made


def _recount(rows: list[Response]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = defaultdict(lambda: {"n": 0, "accounts": set(), "s": []})
    for r in rows:
        for slug in r.theme_tags.values_list("theme__slug", flat=True):
            found[slug]["n"] += 1
            found[slug]["accounts"].add(r.account_id)
            found[slug]["s"].append(r.sentiment_score)
    return found


def test_it_counts_themes_like_a_recount(answers: list[Response]) -> None:
    until = today()
    since = until - timedelta(days=29)
    table = top_themes.theme_table(Response.objects.all(), since, until)

    def between(first: date, last: date) -> list[Response]:
        return [
            r
            for r in answers
            if day_start(first) <= r.created_at < day_start(last + timedelta(days=1))
        ]

    inside = between(since, until)
    want = _recount(inside)
    arr = {a.pk: a.arr_cents for a in Account.objects.all()}
    assert table.read == len(inside)
    assert [r.figure.slug for r in table.rows] == sorted(
        want, key=lambda s: (-want[s]["n"], Theme.objects.get(slug=s).name)
    )
    for row in table.rows:
        w = want[row.figure.slug]
        assert row.figure.responses == w["n"]
        assert row.figure.accounts == len(w["accounts"])
        assert row.figure.arr_cents == sum(arr[a] for a in w["accounts"])
        assert row.share == pytest.approx(100 * w["n"] / len(inside))
        assert row.sentiment == pytest.approx(sum(w["s"]) / len(w["s"]), abs=0.01)
    before = _recount(between(since - timedelta(days=30), since - timedelta(days=1)))
    assert {r.figure.slug: r.previous_responses for r in table.rows} == {
        s: before[s]["n"] if s in before else 0 for s in want
    }


def test_it_draws_the_trend_of_the_top_themes(answers: list[Response]) -> None:
    until = today()
    trend = top_themes.theme_trend(
        Response.objects.all(), until - timedelta(days=60), until, Grain.MONTH, ["billing", "bugs"]
    )
    assert [s.slug for s in trend.series] == ["billing", "bugs"]
    assert sum(trend.read) == 120
    total = sum(trend.series[0].counts)
    assert total == ThemeTag.objects.filter(theme__slug="billing").count()
    for n, share, read in zip(
        trend.series[0].counts, trend.series[0].shares, trend.read, strict=True
    ):
        assert share == (round(100 * n / read, 1) if read else 0.0)


def test_it_shows_the_themes_page_with_csv_and_api(
    answers: list[Response], viewer: User, read_only_api: ApiClient
) -> None:
    client = Client()
    client.force_login(viewer)
    page = client.get("/insights/themes/", {"grain": "week"}).content.decode()
    assert "Top themes by answers" in page and "Top themes by ARR" in page
    assert "theme=billing" in page
    assert 'id="theme-trend"' in page
    text = b"".join(client.get("/insights/themes.csv").streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["theme"] for r in rows} == set(SLUGS)
    body = read_only_api.get_json("/api/v1/insights/themes", {"top": 2, "grain": "week"}).json()
    assert len(body["trend"]) == 2 and body["grain"] == "week"
    assert body["themes"][0]["responses"] >= body["themes"][-1]["responses"]
    assert len(body["periods"]) == len(body["read_per_period"]) == len(body["trend"][0]["counts"])
    bad = read_only_api.get_json("/api/v1/insights/themes", {"top": 0})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "top"]
    assert date.fromisoformat(body["until"]) == today()
