"""The insights API returns the same figures as the pages and names bad parameters."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from closeloop.core.periods import Grain
from closeloop.insights import program
from closeloop.insights.segments import segment_table
from closeloop.insights.trends import trend
from closeloop.loop.models import FollowUpCase
from closeloop.surveys.models import Response
from closeloop.team.models import Team, User

from .conftest import ApiClient
from .insights_data import World, generate, generate_cases

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(manager: User, agent: User) -> World:
    world = generate(seed=81)
    generate_cases(world, 82, [manager, agent], [Team.objects.create(name="EMEA")])
    return world


def test_it_serves_the_trend(world: World, api: ApiClient) -> None:
    got = api.get_json(
        "/api/v1/insights/trend",
        {"grain": "quarter", "since": "2025-07-01", "until": "2026-06-30", "tier": "smb"},
    ).json()
    want = trend(
        Response.objects.filter(account__tier="smb"),
        date(2025, 7, 1),
        date(2026, 6, 30),
        Grain.QUARTER,
    )
    assert [p["figures"]["responses"] for p in got] == [p.summary.responses for p in want]
    assert [p["change_significant"] for p in got] == [p.significant for p in want]
    assert got[0]["label"] == "Q3 2025"


def test_it_serves_segments(world: World, api: ApiClient) -> None:
    got = api.get_json(
        "/api/v1/insights/segments",
        {"by": "industry", "since": "2026-01-01", "until": "2026-06-30"},
    ).json()
    want = segment_table(Response.objects.all(), "industry", date(2026, 1, 1), date(2026, 6, 30))
    assert [(s["value"], s["current"]["responses"]) for s in got["segments"]] == [
        (r.value, r.current.responses) for r in want.rows
    ]


def test_it_serves_program_metrics_per_month(world: World, api: ApiClient) -> None:
    got = api.get_json(
        "/api/v1/insights/program", {"by": "month", "since": "2026-01-01", "until": "2026-03-31"}
    ).json()
    whole = program.program_figures(program.cases_opened(date(2026, 1, 1), date(2026, 3, 31)))
    assert got[0]["name"] == "all" and got[0]["counts"] == whole[None].counts
    assert [row["name"] for row in got[1:]] == ["2026-01-01", "2026-02-01", "2026-03-01"]
    assert sum(row["counts"]["cases"] for row in got[1:]) == got[0]["counts"]["cases"]
    assert FollowUpCase.objects.exists()


def test_it_serves_transitions_and_revenue_at_risk(world: World, api: ApiClient) -> None:
    t = api.get_json("/api/v1/insights/transitions", {"since": "2026-01-01"}).json()
    assert set(t["cells"]) == {"detractor", "passive", "promoter"}
    assert sum(sum(row.values()) for row in t["cells"].values()) == t["total"]
    r = api.get_json("/api/v1/insights/revenue-at-risk").json()
    assert r["total"]["accounts"] == sum(row["accounts"] for row in r["by_tier"])


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/insights/trend", {"grain": "day"}, "grain"),
        ("/api/v1/insights/trend", {"since": "2001-01-01", "until": "2026-01-01"}, "since"),
        ("/api/v1/insights/segments", {"by": "zodiac"}, "by"),
        ("/api/v1/insights/program", {"by": "planet"}, "by"),
        ("/api/v1/insights/program", {"loop": "x"}, "loop"),
        ("/api/v1/insights/transitions", {"until": "soon"}, "until"),
    ],
)
def test_it_names_bad_insight_parameters(
    world: World, api: ApiClient, path: str, params: dict[str, Any], field: str
) -> None:
    r = api.get_json(path, params)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", field]
