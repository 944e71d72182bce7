"""Incidents: recorded by API or page, tested for a detractor spike against a recount,
drawn on the dashboard, and refused field by field when malformed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from closeloop.insights.models import SPIKE_WINDOW, Incident, Spike, with_spikes
from closeloop.surveys.models import Response
from closeloop.team.models import User

from .conftest import ApiClient
from .insights_data import World, generate

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(settings: Any) -> World:
    settings.ORG_TIME_ZONE = "Europe/Berlin"
    return generate(seed=71, answers=1500)


def _spike_by_hand(at: datetime) -> Spike:
    before = [r.score for r in Response.objects.all() if at - SPIKE_WINDOW <= r.created_at < at]
    after = [r.score for r in Response.objects.all() if at <= r.created_at < at + SPIKE_WINDOW]
    return Spike(len(before), sum(s <= 6 for s in before), len(after), sum(s <= 6 for s in after))


def test_it_counts_answers_around_each_incident_like_a_recount(world: World) -> None:
    starts = [
        datetime(2025, 9, 3, 10, tzinfo=UTC),
        datetime(2026, 2, 14, 23, 30, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    ]
    for n, at in enumerate(starts):
        Incident.objects.create(kind="outage", title=f"o{n}", started_at=at)
    got = {i.started_at: s for i, s in with_spikes(Incident.objects.all())}
    for at in starts:
        assert got[at] == _spike_by_hand(at)
    assert got[starts[2]].after_answers == 0 and not got[starts[2]].is_spike


def test_it_flags_a_real_rise_in_detractors_and_not_noise() -> None:
    assert Spike(200, 30, 200, 70).is_spike  # 15% → 35%
    assert not Spike(200, 30, 200, 36).is_spike  # 15% → 18%: noise
    assert not Spike(200, 30, 5, 5).is_spike  # too few answers after
    assert not Spike(200, 70, 200, 30).is_spike  # a fall is not a spike


def test_it_records_lists_and_deletes_incidents_by_api(world: World, api: ApiClient) -> None:
    r = api.post_json(
        "/api/v1/incidents",
        {"kind": "release", "title": "5.1", "started_at": "2026-03-01T09:00:00"},
    )
    assert r.status_code == 201, r.content
    body = r.json()
    # No zone: the organisation's (Berlin, UTC+1 in March).
    assert body["started_at"].startswith("2026-03-01T08:00:00")
    assert body["answers_before"] + body["answers_after"] > 0
    listed = api.get_json("/api/v1/incidents", {"since": "2026-03-01"}).json()
    assert [i["title"] for i in listed] == ["5.1"]
    assert api.get_json("/api/v1/incidents", {"until": "2026-02-28"}).json() == []
    assert (
        api.delete(
            f"/api/v1/incidents/{body['id']}", HTTP_AUTHORIZATION=f"Bearer {api.key}"
        ).status_code
        == 204
    )
    assert not Incident.objects.exists()


def test_it_stores_a_start_with_an_unusual_offset_in_utc(api: ApiClient) -> None:
    r = api.post_json(
        "/api/v1/incidents",
        {"kind": "outage", "title": "far east", "started_at": "2026-11-08T18:09:07+18:01"},
    )
    assert r.status_code == 201, r.content
    assert r.json()["started_at"].startswith("2026-11-08T00:08:07")


def test_it_refuses_bad_incidents_naming_the_field(
    api: ApiClient, read_only_api: ApiClient
) -> None:
    bad = [
        ({"kind": "meteor", "title": "x", "started_at": "2026-03-01T09:00:00Z"}, "kind"),
        ({"kind": "outage", "title": "", "started_at": "2026-03-01T09:00:00Z"}, "title"),
        ({"kind": "outage", "title": "x", "started_at": "yesterday"}, "started_at"),
        (
            {
                "kind": "outage",
                "title": "x",
                "started_at": "2026-03-01T09:00:00Z",
                "ended_at": "2026-02-01T09:00:00Z",
            },
            "ended_at",
        ),
        ({"kind": "outage", "title": "x\u0000", "started_at": "2026-03-01T09:00:00Z"}, "title"),
        ({"kind": "outage", "title": "x", "started_at": "3005-03-01T09:00:00Z"}, "started_at"),
    ]
    for body, field in bad:
        r = api.post_json("/api/v1/incidents", body)
        assert r.status_code == 422, body
        assert field in str(r.json()), (field, r.json())
    assert not Incident.objects.exists()
    ok = {"kind": "outage", "title": "x", "started_at": "2026-03-01T09:00:00Z"}
    assert read_only_api.post_json("/api/v1/incidents", ok).status_code == 403


def test_it_records_an_incident_from_the_page_and_draws_it_on_the_trend(
    world: World, agent: User, viewer: User
) -> None:
    client = Client()
    client.force_login(agent)
    page = client.post(
        "/insights/incidents/",
        {
            "kind": "outage",
            "title": "EU down",
            "started_at": "2026-05-04T10:00",
            "ended_at": "2026-05-04T09:00",
        },
    )
    assert (
        page.status_code == 422
        and "ended_at: must not be before started_at" in page.content.decode()
    )
    assert not Incident.objects.exists()
    page = client.post(
        "/insights/incidents/",
        {"kind": "outage", "title": "EU down", "started_at": "2026-05-04T10:00"},
    )
    assert page.status_code == 302
    incident = Incident.objects.get()
    assert incident.created_by == agent
    assert incident.started_at == datetime(2026, 5, 4, 8, tzinfo=UTC)
    dashboard = client.get("/", {"until": "2026-06-30"}).content.decode()
    assert "EU down" in dashboard and '"incidents": [{"index": 10' in dashboard
    reader = Client()
    reader.force_login(viewer)
    assert reader.post("/insights/incidents/", {"kind": "outage"}).status_code == 403
    assert client.post("/insights/incidents/", {"delete": incident.pk}).status_code == 403


def test_it_lists_incidents_with_their_spike_test(world: World, manager: User) -> None:
    Incident.objects.create(
        kind="price_change",
        title="+12%",
        started_at=datetime(2026, 1, 10, tzinfo=UTC) - timedelta(hours=3),
    )
    client = Client()
    client.force_login(manager)
    html = client.get("/insights/incidents/").content.decode()
    assert "+12%" in html and "Price change" in html and "Delete" in html
