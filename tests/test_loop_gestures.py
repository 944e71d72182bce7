"""Recovery gestures are data: what was given, and what it was worth, on the timeline
and in the API."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from closeloop.loop.models import Activity, FollowUpCase, Gesture
from closeloop.surveys.models import Account
from closeloop.team.models import User

from .conftest import ApiClient, open_case

pytestmark = pytest.mark.django_db


@pytest.fixture
def case(api: ApiClient, enterprise: Account) -> FollowUpCase:
    return open_case(api, enterprise, 2, email="cto@globex.example")


def test_it_logs_a_gesture_with_its_value(api: ApiClient, case: FollowUpCase) -> None:
    got = api.post_json(
        f"/api/v1/cases/{case.pk}/gestures",
        {"kind": "credit", "value": 1250.5, "currency": "eur", "note": "one month's credit"},
    )
    assert got.status_code == 200, got.content
    gesture = got.json()["gestures"][0]
    assert gesture["kind"] == "credit" and gesture["value"] == 1250.5
    assert gesture["currency"] == "EUR" and gesture["note"] == "one month's credit"
    timeline = case.activities.get(kind=Activity.Kind.GESTURE)
    assert timeline.text == "Credit worth EUR 1,250.50: one month's credit"
    assert timeline.data["value_cents"] == 125050


def test_it_takes_a_gesture_without_a_value(api: ApiClient, case: FollowUpCase) -> None:
    got = api.post_json(f"/api/v1/cases/{case.pk}/gestures", {"kind": "executive_note"})
    gesture = got.json()["gestures"][0]
    assert gesture["value"] is None and gesture["currency"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "free pony"}, "kind"),
        ({"kind": "credit", "value": -5}, "value"),
        ({"kind": "credit", "value": "lots"}, "value"),
        ({"kind": "credit", "value": 10, "currency": "E1"}, "currency"),
        ({"kind": "credit", "value": 10, "currency": "EURO"}, "currency"),
    ],
)
def test_it_refuses_a_gesture_it_cannot_record(
    api: ApiClient, case: FollowUpCase, body: dict[str, Any], field: str
) -> None:
    got = api.post_json(f"/api/v1/cases/{case.pk}/gestures", body)
    assert got.status_code == 422
    assert got.json()["detail"][0]["loc"][-1] == field
    assert not Gesture.objects.exists()


def test_it_records_a_gesture_from_the_case_page(case: FollowUpCase, agent: User) -> None:
    page = Client()
    page.force_login(agent)
    assert "Recovery gesture" in page.get(f"/cases/{case.pk}/").content.decode()
    page.post(
        f"/cases/{case.pk}/act",
        {"action": "gesture", "kind": "training_session", "value": "", "note": "2h onboarding"},
    )
    refused = page.post(
        f"/cases/{case.pk}/act",
        {"action": "gesture", "kind": "discount", "value": "ten", "currency": "USD"},
        follow=True,
    )
    assert "give a number" in refused.content.decode()
    assert [g.kind for g in Gesture.objects.filter(case=case)] == ["training_session"]
    assert Gesture.objects.get().actor == agent
