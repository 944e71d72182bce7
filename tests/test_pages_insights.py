"""The insight pages render their figures, link them to their answers, export CSV,
and name a bad parameter instead of failing."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.test import Client

from closeloop.team.models import User

from .insights_data import World, generate, generate_cases

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db: Any) -> World:
    return generate(seed=9)


@pytest.fixture
def client(viewer: User) -> Client:
    c = Client()
    c.force_login(viewer)
    return c


def _csv(response: Any) -> list[dict[str, str]]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_it_shows_the_trend_by_quarter_with_links_to_each_periods_answers(
    world: World, client: Client
) -> None:
    page = client.get("/", {"grain": "quarter", "until": "2026-07-20", "tier": "smb"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "NPS by quarter" in html and "Q3 2026" in html
    assert "/responses/?tier=smb&amp;since=2026-07-01&amp;until=2026-09-30" in html


def test_it_exports_the_trend_as_csv(world: World, client: Client) -> None:
    rows = _csv(client.get("/trend.csv", {"grain": "month", "until": "2026-07-20"}))
    assert len(rows) == 12 and rows[-1]["period"] == "Jul 2026"
    assert sum(int(r["responses"]) for r in rows) > 0
    assert {r["change_significant"] for r in rows} <= {"yes", "no"}


def test_it_names_a_bad_grain(world: World, client: Client) -> None:
    page = client.get("/", {"grain": "fortnight"})
    assert (
        page.status_code == 200 and "grain: must be week, month or quarter" in page.content.decode()
    )
    assert client.get("/trend.csv", {"grain": "fortnight"}).status_code == 400


def test_it_warns_when_detractors_pass_40_percent(world: World, client: Client) -> None:
    page = client.get("/", {"since": "2025-06-01", "until": "2026-08-01", "category": "detractor"})
    assert "the problem is structural" in page.content.decode()
    page = client.get("/", {"since": "2025-06-01", "until": "2026-08-01", "category": "promoter"})
    assert "the problem is structural" not in page.content.decode()


def test_it_lists_segments_with_links_and_property_dimensions(world: World, client: Client) -> None:
    page = client.get(
        "/insights/segments/",
        {"since": "2026-01-01", "until": "2026-06-30", "by": "property:region"},
    )
    html = page.content.decode()
    assert page.status_code == 200 and "emea" in html and "(not set)" in html
    assert "segment=property%3Aregion&amp;segment_value=emea" in html
    assert '<option value="property:seats"' in html


def test_it_shows_and_keeps_the_filters_its_form_has_no_field_for(
    world: World, client: Client
) -> None:
    # From the Themes page: answers naming a theme, read as negative.
    query = {"since": "2026-01-01", "until": "2026-06-30", "by": "tier"}
    narrowed = {**query, "theme": "bugs", "sentiment": "negative", "tier": "smb"}
    html = client.get("/insights/segments/", narrowed).content.decode()
    assert "Also narrowed to:" in html
    assert "Theme: bugs" in html and "Sentiment: negative" in html
    assert "Tier: smb" not in html  # the form shows the tier itself
    # Applying the form again keeps them, and each can be removed on its own.
    assert '<input type="hidden" name="theme" value="bugs">' in html
    assert '<input type="hidden" name="sentiment" value="negative">' in html
    without_theme = "?since=2026-01-01&amp;until=2026-06-30&amp;by=tier&amp;sentiment=negative"
    assert f'href="{without_theme}&amp;tier=smb"' in html
    plain = client.get("/insights/segments/", query).content.decode()
    assert "Also narrowed to:" not in plain


def test_it_exports_segments_in_page_order(world: World, client: Client) -> None:
    rows = _csv(
        client.get(
            "/insights/segments.csv",
            {"since": "2026-01-01", "until": "2026-06-30", "by": "industry"},
        )
    )
    assert {r["value"] for r in rows} >= {"Fintech", "Retail", "(not set)", "(no account)"}
    small = [r["small_sample"] == "yes" for r in rows]
    assert small == sorted(small)


def test_it_names_an_unknown_dimension(world: World, client: Client) -> None:
    page = client.get("/insights/segments/", {"by": "horoscope"})
    assert page.status_code == 200 and "by: must be one of tier" in page.content.decode()
    assert client.get("/insights/segments.csv", {"by": "horoscope"}).status_code == 400


@pytest.fixture
def program_world(world: World, manager: User, agent: User) -> World:
    from closeloop.team.models import Team

    generate_cases(world, 10, [manager, agent], [Team.objects.create(name="EMEA")])
    return world


def test_it_shows_program_metrics_per_owner_linking_to_their_cases(
    program_world: World, client: Client, agent: User
) -> None:
    page = client.get("/insights/program/", {"since": "2025-06-01", "until": "2026-08-01"})
    html = page.content.decode()
    assert page.status_code == 200
    assert "Follow-up within 48h" in html and "Alex" in html and "Unassigned" in html
    link = "figure=resolved&amp;since=2025-06-01&amp;until=2026-08-01&amp;loop=detractor"
    link += f"&amp;owner={agent.pk}"
    assert link in html
    cases = client.get(
        "/cases/",
        {
            "figure": "resolved",
            "since": "2025-06-01",
            "until": "2026-08-01",
            "loop": "detractor",
            "owner": agent.pk,
        },
    )
    from closeloop.loop.models import FollowUpCase

    expected = FollowUpCase.objects.filter(owner=agent, status="closed", resolution="resolved")
    assert f"{expected.count()} cases: closed as resolved" in cases.content.decode()


def test_it_shows_which_follow_up_moves_customers_linking_to_each_group(
    program_world: World, client: Client
) -> None:
    period = {"since": "2025-06-01", "until": "2026-08-01"}
    page = client.get("/insights/program/", {**period, "effect_by": "channel"})
    html = page.content.decode()
    assert page.status_code == 200
    assert "Which follow-up moves customers" in html and "Follow-up return" in html
    assert "Call (reached)" in html and "Not followed up" in html
    assert "effect_by=channel&amp;effect=call" in html
    cases = client.get("/cases/", {**period, "effect_by": "channel", "effect": "none"})
    from closeloop.loop.models import FollowUpCase

    expected = FollowUpCase.objects.filter(first_touch_at__isnull=True).exclude(
        activities__kind="call_logged", activities__data__outcome__in=["talked", "resolved_on_call"]
    )
    expected = expected.exclude(conversation__started_at__isnull=False)
    assert f"{expected.count()} cases: Channel: Not followed up" in cases.content.decode()
    bad = client.get("/cases/", {"effect_by": "channel", "effect": "pigeon"})
    assert "effect: not a channel" in bad.content.decode()
    page = client.get("/insights/program/", {"effect_by": "weather"})
    assert "effect_by: must be action, channel, detractor_type or gesture" in page.content.decode()


def test_it_exports_program_metrics_per_team_and_month(
    program_world: World, client: Client
) -> None:
    rows = _csv(
        client.get(
            "/insights/program.csv",
            {"since": "2025-06-01", "until": "2026-08-01", "by": "team", "grain": "month"},
        )
    )
    assert rows[0]["group"] == "all"
    teams = [r for r in rows if r["group"] == "team"]
    assert {r["name"] for r in teams} == {"EMEA", "No team"}
    assert sum(int(r["cases"]) for r in teams) == int(rows[0]["cases"])
    assert len([r for r in rows if r["group"] == "month"]) == 12


def test_it_names_bad_program_parameters(program_world: World, client: Client) -> None:
    page = client.get("/insights/program/", {"by": "planet", "loop": "x"})
    html = page.content.decode()
    assert "by: must be owner or team" in html and "loop: must be detractor" in html
    assert client.get("/insights/program.csv", {"by": "planet"}).status_code == 400
    page = client.get("/cases/", {"figure": "vibes"})
    assert page.status_code == 200 and "figure: must be one of" in page.content.decode()


def test_it_shows_the_transition_matrix_and_who_is_behind_a_cell(
    world: World, client: Client
) -> None:
    page = client.get(
        "/insights/transitions/",
        {"since": "2026-01-01", "until": "2026-06-30", "before": "detractor", "after": "promoter"},
    )
    html = page.content.decode()
    assert page.status_code == 200 and "detractors who became promoters" in html
    assert "before=passive&amp;after=detractor" in html
    rows = _csv(
        client.get("/insights/transitions.csv", {"since": "2026-01-01", "until": "2026-06-30"})
    )
    assert len(rows) == 9
    people = _csv(
        client.get(
            "/insights/transitions.csv",
            {
                "since": "2026-01-01",
                "until": "2026-06-30",
                "before": "detractor",
                "after": "promoter",
            },
        )
    )
    cell = next(r for r in rows if (r["before"], r["after"]) == ("detractor", "promoter"))
    assert len(people) == int(cell["people"]) > 0
    assert all(int(p["previous_score"]) <= 6 and int(p["score"]) >= 9 for p in people)


def test_it_names_a_bad_transition_cell(world: World, client: Client) -> None:
    page = client.get("/insights/transitions/", {"before": "angry", "after": "promoter"})
    assert "before: must be detractor, passive or promoter" in page.content.decode()
    page = client.get("/insights/transitions/", {"before": "passive"})
    assert "after: give both before and after" in page.content.decode()
    assert client.get("/insights/transitions.csv", {"after": "x"}).status_code == 400


def test_it_shows_revenue_at_risk_with_each_signal(program_world: World, client: Client) -> None:
    page = client.get("/insights/risk/")
    html = page.content.decode()
    assert page.status_code == 200 and "ARR at risk" in html and "open case" in html
    rows = _csv(client.get("/insights/risk.csv", {"signal": "open_case"}))
    assert rows and all(r["open_case"] == "yes" for r in rows)
    assert client.get("/insights/risk/", {"signal": "gloom"}).status_code == 200
    assert (
        "signal: must be one of" in client.get("/insights/risk/", {"signal": "x"}).content.decode()
    )
    assert client.get("/insights/risk.csv", {"signal": "x"}).status_code == 400


def test_it_exports_risk_breakdowns_and_incidents(program_world: World, client: Client) -> None:
    from closeloop.insights.models import Incident

    for table, column in (("owner", "owner"), ("tier", "tier"), ("theme", "theme")):
        response = client.get("/insights/risk.csv", {"table": table})
        assert response.status_code == 200
        assert (
            _csv(response) == []
            or column in _csv(client.get("/insights/risk.csv", {"table": table}))[0]
        )
    assert client.get("/insights/risk.csv", {"table": "moon"}).status_code == 400
    Incident.objects.create(
        kind="release", title="5.2", started_at=program_world.responses[0].created_at
    )
    rows = _csv(client.get("/insights/incidents.csv"))
    assert [r["title"] for r in rows] == ["5.2"] and rows[0]["detractor_spike"] in ("yes", "no")


def test_it_sorts_and_filters_revenue_at_risk_by_health(
    program_world: World, client: Client
) -> None:
    by_health = _csv(client.get("/insights/risk.csv", {"sort": "health"}))
    assert by_health, "the world has accounts at risk"
    scores = [int(r["health"]) for r in by_health]
    assert scores == sorted(scores)
    by_arr = _csv(client.get("/insights/risk.csv"))
    arr = [float(r["arr"]) for r in by_arr]
    assert arr == sorted(arr, reverse=True)
    band = by_health[0]["band"]
    only = _csv(client.get("/insights/risk.csv", {"band": band}))
    assert only and {r["band"] for r in only} == {band}
    page = client.get("/insights/risk/", {"sort": "health", "band": band}).content.decode()
    assert f'<span class="health {band.replace(" ", "-")}">{scores[0]}</span>' in page
    assert "band: must be one of" in client.get("/insights/risk/", {"band": "x"}).content.decode()
    assert client.get("/insights/risk.csv", {"sort": "x"}).status_code == 400
