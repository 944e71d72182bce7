"""The accounts list (health, ARR, owner; sorted and filtered) and one account's page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from closeloop.integrations.models import AccountSignal, Ticket
from closeloop.surveys.models import Account, AccountChange
from closeloop.team.models import User

from .conftest import ApiClient, answer_at, open_case

pytestmark = pytest.mark.django_db


def _names(page: str) -> list[str]:
    return [n for n in ("Initech", "Globex") if f">{n}</a>" in page]


def _order(page: str) -> list[str]:
    found = [(page.index(f">{n}</a>"), n) for n in _names(page)]
    return [n for _, n in sorted(found)]


def test_it_lists_accounts_by_health_arr_or_name_and_filters_them(
    api: ApiClient, smb: Account, enterprise: Account, agent: User, viewer: User
) -> None:
    open_case(api, smb, 2, "pat@example.com", comment="Slow exports")
    api.post_json("/api/v1/responses", answer_at(enterprise, 10, "ceo@example.com"))
    client = Client()
    client.force_login(viewer)
    page = client.get("/accounts/").content.decode()
    assert _order(page) == ["Initech", "Globex"]  # the least healthy first
    assert "its people&#x27;s latest answers average 2.0" in page and "2 live" in page
    assert _order(client.get("/accounts/?sort=arr").content.decode()) == ["Globex", "Initech"]
    assert _order(client.get("/accounts/?sort=name").content.decode()) == ["Globex", "Initech"]
    assert _names(client.get("/accounts/?band=watch").content.decode()) == ["Initech"]
    assert _names(client.get("/accounts/?q=glob").content.decode()) == ["Globex"]
    assert _names(client.get("/accounts/?tier=enterprise").content.decode()) == ["Globex"]
    assert _names(client.get(f"/accounts/?owner={agent.pk}").content.decode()) == [
        "Initech",
        "Globex",
    ]
    bad = client.get("/accounts/?sort=size&band=red&owner=alex")
    text = bad.content.decode()
    assert bad.status_code == 200 and "sort: must be one of health, arr, name" in text
    assert "band: must be one of" in text and "owner: must be a user&#x27;s id" in text
    assert _order(text) == ["Initech", "Globex"]


def test_it_shows_one_accounts_health_billing_tickets_people_cases_and_answers(
    api: ApiClient, smb: Account, viewer: User
) -> None:
    case = open_case(api, smb, 3, "pat@example.com", name="Pat Lee", comment="Exports time out")
    now = timezone.now()
    AccountSignal.objects.create(
        account=smb, kind="payment_failed", at=now - timedelta(days=2), detail="card declined"
    )
    AccountChange.objects.create(
        account=smb,
        kind="contraction",
        at=now - timedelta(days=20),
        arr_before_cents=800_000,
        arr_after_cents=600_000,
        source="stripe",
    )
    Ticket.objects.create(
        source="api",
        ticket_id="T-1",
        account=smb,
        priority="urgent",
        opened_at=now - timedelta(days=9),
        updated_at=now - timedelta(days=1),
    )
    client = Client()
    client.force_login(viewer)
    page = client.get(f"/accounts/{smb.pk}/").content.decode()
    for text in (
        "Initech",
        "payment failed on",
        "card declined",
        "USD 8,000 → USD 6,000",
        "an urgent or high ticket open for over a week",
        "Pat Lee",
        f"/cases/{case.pk}/",
        "Exports time out",
        "No usage matched to this account",
    ):
        assert text in page, text
    smb.churned_at, smb.churn_reason = now - timedelta(days=1), "Moved to a rival"
    smb.save()
    page = client.get(f"/accounts/{smb.pk}/").content.decode()
    assert "Churned" in page and "Moved to a rival" in page and "Not scored" in page
    assert client.get("/accounts/999999/").status_code == 404
    assert "Initech" not in client.get("/accounts/").content.decode()
