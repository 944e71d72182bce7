"""Theme owners and roadmap items: what is being done about a theme, by when, and
shipping it opens the fix-shipped announcement for the theme's customers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from closeloop.loop.models import Announcement, RoadmapItem
from closeloop.surveys.models import Account
from closeloop.team.models import User
from closeloop.themes import learning
from closeloop.themes.models import Theme

from .conftest import ApiClient, open_case

pytestmark = pytest.mark.django_db


def field_of(reply: Any) -> str:
    return str(reply.json()["detail"][0]["loc"][-1])


@pytest.fixture
def billing(api: ApiClient, smb: Account, agent: User) -> Theme:
    """The billing theme, owned by Alex, with two customers' cases."""
    theme = Theme.objects.get(slug="billing")
    theme.owner = agent
    theme.save()
    for email, comment in (("pat@example.com", "Invoiced twice"), ("kim@example.com", "No PO")):
        case = open_case(api, smb, 3, email, comment=comment)
        learning.correct(case.response, [theme], via="test")
    return theme


def test_it_plans_a_fix_and_shipping_it_opens_the_announcement(
    billing: Theme, writer_api: ApiClient
) -> None:
    target = (timezone.localdate() + timedelta(days=30)).isoformat()
    made = writer_api.post_json(
        "/api/v1/themes/billing/roadmap",
        {"title": "Invoices carry your PO number", "target_date": target, "details": "From May."},
    )
    assert made.status_code == 201, made.content
    item = made.json()
    assert (item["status"], item["target_date"], item["overdue"]) == ("planned", target, False)
    moved = writer_api.patch_json(f"/api/v1/roadmap/{item['id']}", {"status": "in_progress"})
    assert moved.json()["status"] == "in_progress"
    shipped = writer_api.patch_json(f"/api/v1/roadmap/{item['id']}", {"status": "shipped"}).json()
    assert shipped["status"] == "shipped" and shipped["shipped_at"]
    announcement = Announcement.objects.get(pk=shipped["announcement_id"])
    assert announcement.status == "draft" and announcement.theme == billing
    assert announcement.title == "Invoices carry your PO number"
    assert announcement.details == "From May."
    assert announcement.cases.count() == 2
    listed = writer_api.get_json("/api/v1/themes/billing/roadmap").json()
    assert [i["id"] for i in listed] == [item["id"]]
    assert (
        writer_api.get_json("/api/v1/roadmap", {"status": "shipped"}).json()[0]["id"] == item["id"]
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "  "}, "title"),
        ({"title": "X", "status": "someday"}, "status"),
        ({"title": "X", "status": "shipped"}, "status"),
        ({"title": "X", "target_date": "next spring"}, "target_date"),
        ({"title": "X", "target_date": "2020-01-01"}, "target_date"),
        ({"title": "X", "colour": "red"}, "colour"),
    ],
)
def test_it_refuses_a_bad_roadmap_item_by_name(
    billing: Theme, writer_api: ApiClient, body: dict[str, Any], field: str
) -> None:
    reply = writer_api.post_json("/api/v1/themes/billing/roadmap", body)
    assert reply.status_code == 422, reply.content
    assert field_of(reply) == field
    assert not RoadmapItem.objects.exists()


def test_it_refuses_to_change_a_shipped_item_or_serve_an_unknown_theme(
    billing: Theme, writer_api: ApiClient, read_only_api: ApiClient, agent: User
) -> None:
    item = RoadmapItem.add(billing, agent, "Refunds in one click")
    item.ship(agent)
    again = writer_api.patch_json(f"/api/v1/roadmap/{item.pk}", {"status": "planned"})
    assert again.status_code == 422 and field_of(again) == "status"
    assert writer_api.get_json("/api/v1/themes/nope/roadmap").status_code == 404
    denied = read_only_api.post_json("/api/v1/themes/billing/roadmap", {"title": "X"})
    assert denied.status_code == 403


def test_it_lets_the_theme_owner_plan_and_ship_from_the_themes_page(
    billing: Theme, agent: User, viewer: User
) -> None:
    client = Client()
    assert client.login(username=agent.username, password="pw-alex-123")
    target = (timezone.localdate() + timedelta(days=14)).isoformat()
    added = client.post(
        "/insights/roadmap/",
        {"theme": "billing", "title": "Invoices carry your PO number", "target_date": target},
    )
    assert added.status_code == 302
    page = client.get("/insights/themes/", {"since": "2020-01-01"}).content.decode()
    assert "Invoices carry your PO number" in page and "Owner: Alex" in page
    item = RoadmapItem.objects.get()
    bad = client.post(f"/insights/roadmap/{item.pk}/", {"status": "later"}, follow=True)
    assert "status: must be one of" in bad.content.decode()
    shipped = client.post(f"/insights/roadmap/{item.pk}/", {"status": "shipped"})
    item.refresh_from_db()
    assert shipped["Location"] == f"/announcements/{item.announcement_id}/"
    # Someone who neither owns the theme nor manages is not asked, and cannot.
    other = Client()
    assert other.login(username=viewer.username, password="pw-vic-123")
    assert 'action="/insights/roadmap/"' not in other.get("/insights/themes/").content.decode()
    assert other.post("/insights/roadmap/", {"theme": "billing", "title": "X"}).status_code == 403
