"""Trends and segments match a brute-force recount of generated answers, in the
organisation's time zone, on whichever database the suite runs."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, timedelta
from typing import Any

import pytest
from django.test import Client

from closeloop.core.nps import NpsSummary, change_is_significant
from closeloop.core.periods import Grain, next_period, period_start
from closeloop.insights.segments import NO_ACCOUNT, NOT_SET, segment_table, tenure_bucket
from closeloop.insights.trends import trend
from closeloop.surveys.models import Response
from closeloop.team.models import User

from .insights_data import World, generate, local_day

pytestmark = pytest.mark.django_db
ZONE = "Pacific/Auckland"  # 12–13 hours ahead of UTC: day and month edges differ from UTC's


@pytest.fixture
def world(settings: Any) -> World:
    settings.ORG_TIME_ZONE = ZONE
    return generate(seed=6)


def _summary(scores: list[int]) -> NpsSummary:
    return NpsSummary.from_scores(scores)


@pytest.mark.parametrize("grain", list(Grain))
def test_it_counts_each_period_in_the_organisations_time_zone(world: World, grain: Grain) -> None:
    since, until = date(2025, 7, 15), date(2026, 6, 20)
    points = trend(Response.objects.all(), since, until, grain)
    by_period: dict[date, list[int]] = defaultdict(list)
    for r in world.responses:
        by_period[period_start(local_day(r.created_at, ZONE), grain)].append(r.score)
    expected_starts = []
    cursor = period_start(since, grain)
    while cursor <= until:
        expected_starts.append(cursor)
        cursor = next_period(cursor, grain)
    assert [p.start for p in points] == expected_starts
    before = _summary(by_period[period_start(expected_starts[0] - timedelta(days=1), grain)])
    for point in points:
        expected = _summary(by_period[point.start])
        assert point.summary == expected, point.label
        assert point.previous == before
        assert point.significant == change_is_significant(before, expected)
        assert point.end == next_period(point.start, grain) - timedelta(days=1)
        before = expected


def test_it_marks_periods_with_over_40_percent_detractors(world: World) -> None:
    points = trend(
        Response.objects.filter(score__lte=7), date(2025, 7, 1), date(2025, 9, 30), Grain.MONTH
    )
    assert all(p.structural == (p.detractor_share > 40) for p in points)
    assert any(p.structural for p in points)


def _segment_values(r: Response, dimension: str) -> str:
    account = r.account
    if dimension == "survey":
        return r.survey.slug
    if dimension.startswith("property:"):
        value = r.properties.get(dimension.removeprefix("property:"))
        return NOT_SET if value in (None, "") else str(value)
    if account is None:
        return NO_ACCOUNT
    if dimension == "tenure":
        if account.customer_since is None:
            return NOT_SET
        day = local_day(r.created_at, ZONE)
        since = account.customer_since
        return tenure_bucket((day.year - since.year) * 12 + day.month - since.month)
    return getattr(account, dimension) or NOT_SET


@pytest.mark.parametrize(
    "dimension",
    [
        "tier",
        "plan",
        "tenure",
        "company_size",
        "industry",
        "survey",
        "property:region",
        "property:seats",
    ],
)
def test_it_splits_nps_by_segment_like_a_recount(world: World, dimension: str) -> None:
    since, until = date(2026, 1, 1), date(2026, 6, 30)
    table = segment_table(Response.objects.all(), dimension, since, until)
    prev_since = since - timedelta(days=(until - since).days + 1)
    current: dict[str, list[int]] = defaultdict(list)
    previous: dict[str, list[int]] = defaultdict(list)
    for r in world.responses:
        day = local_day(r.created_at, ZONE)
        if since <= day <= until:
            current[_segment_values(r, dimension)].append(r.score)
        elif prev_since <= day < since:
            previous[_segment_values(r, dimension)].append(r.score)
    got = {row.value: (row.current, row.previous) for row in table.rows}
    assert set(got) == set(current) | set(previous)
    for value, (cur, prev) in got.items():
        assert cur == _summary(current[value]), value
        assert prev == _summary(previous[value]), value


def test_it_puts_segments_moving_against_the_trend_first_and_small_ones_last(world: World) -> None:
    table = segment_table(Response.objects.all(), "tier", date(2026, 4, 1), date(2026, 7, 24))
    rows = table.rows
    flags = [(r.against_trend, r.small) for r in rows]
    assert flags == sorted(flags, key=lambda f: (not f[0], f[1]))
    enterprise = next(r for r in rows if r.value == "enterprise")
    assert enterprise.change is not None and enterprise.change < 0
    # Ranking by a column keeps small segments out of the ranking, at the bottom.
    by_n = segment_table(Response.objects.all(), "plan", date(2026, 7, 1), date(2026, 7, 24), "-n")
    ranked = [r for r in by_n.rows if not r.small]
    assert by_n.rows[: len(ranked)] == ranked
    assert [r.current.responses for r in ranked] == sorted(
        (r.current.responses for r in ranked), reverse=True
    )


def test_it_links_a_segment_row_to_exactly_its_answers(world: World, manager: User) -> None:
    client = Client()
    client.force_login(manager)
    page = client.get(
        "/responses/export.csv",
        {
            "since": "2026-01-01",
            "until": "2026-06-30",
            "segment": "tenure",
            "segment_value": "1 year",
        },
    )
    lines = b"".join(page.streaming_content).decode().splitlines()[1:]
    expected = Counter(
        1
        for r in world.responses
        if date(2026, 1, 1) <= local_day(r.created_at, ZONE) <= date(2026, 6, 30)
        and _segment_values(r, "tenure") == "1 year"
    )
    assert len(lines) == expected[1] > 0


def test_it_names_a_bad_segment_parameter(world: World, manager: User) -> None:
    client = Client()
    client.force_login(manager)
    page = client.get("/responses/export.csv", {"segment": "shoe_size", "segment_value": "9"})
    assert page.status_code == 400 and page.content.startswith(b"segment:")
    page = client.get("/responses/export.csv", {"segment": "plan"})
    assert page.status_code == 400 and page.content.startswith(b"segment_value:")
