"""Support tickets: Zendesk webhooks (base64 HMAC-SHA256 of timestamp + body), Intercom
webhooks (X-Hub-Signature, sha1 over the body) and POST /api/v1/tickets; each delivery
once, out-of-order updates ignored, unknown customers kept for mapping; the load in
account health."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_h
from hypothesis import strategies as st

from closeloop.insights import health
from closeloop.integrations import tickets
from closeloop.integrations.models import IntegrationEvent, Ticket
from closeloop.surveys.models import Account, Person

from .conftest import ApiClient

pytestmark = pytest.mark.django_db
ZENDESK = "zd_secret"
INTERCOM = "ic_client_secret"


@pytest.fixture(autouse=True)
def secrets(settings: Any) -> None:
    settings.ZENDESK_WEBHOOK_SECRET = ZENDESK
    settings.INTERCOM_CLIENT_SECRET = INTERCOM


@pytest.fixture
def initech(db: Any) -> Account:
    account = Account.objects.create(name="Initech", external_id="acc-initech")
    Person.objects.create(email="ana@initech.example", account=account)
    return account


def iso(days_ago: float = 0) -> str:
    return (timezone.now() - timedelta(days=days_ago)).isoformat()


def zendesk(body: dict[str, Any], secret: str = ZENDESK, stamp: str | None = None) -> Any:
    raw = json.dumps(body).encode()
    stamp = stamp or str(int(time.time()))
    mac = hmac.new(secret.encode(), stamp.encode() + raw, hashlib.sha256).digest()
    return Client().post(
        "/api/v1/integrations/zendesk",
        raw,
        content_type="application/json",
        HTTP_X_ZENDESK_WEBHOOK_SIGNATURE=base64.b64encode(mac).decode(),
        HTTP_X_ZENDESK_WEBHOOK_SIGNATURE_TIMESTAMP=stamp,
    )


def zendesk_event(n: int, kind: str, days_ago: float, **detail: Any) -> dict[str, Any]:
    return {
        "type": f"zen:event-type:ticket.{kind}",
        "account_id": 9001,
        "id": f"zd-evt-{n}",
        "time": iso(days_ago),
        "zendesk_event_version": "2022-11-06",
        "subject": "zen:ticket:35",
        "detail": {
            "id": "35",
            "subject": "Export times out",
            "status": "OPEN",
            "priority": "HIGH",
            "organization_id": "acc-initech",
            "created_at": iso(10),
            "updated_at": iso(days_ago),
            **detail,
        },
        "event": {},
    }


def intercom(body: dict[str, Any], secret: str = INTERCOM) -> Any:
    raw = json.dumps(body).encode()
    mac = hmac.new(secret.encode(), raw, hashlib.sha1).hexdigest()
    return Client().post(
        "/api/v1/integrations/intercom",
        raw,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE=f"sha1={mac}",
    )


def conversation(n: int, topic: str, state: str, days_ago: float, **item: Any) -> dict[str, Any]:
    now = int(time.time() - days_ago * 86400)
    return {
        "type": "notification_event",
        "app_id": "abc123",
        "id": f"notif_{n}",
        "topic": topic,
        "created_at": now,
        "data": {
            "type": "notification_event_data",
            "item": {
                "type": "conversation",
                "id": "1911149811",
                "created_at": int(time.time() - 9 * 86400),
                "updated_at": now,
                "state": state,
                "priority": "priority",
                "source": {"author": {"type": "user", "email": "Ana@initech.example"}},
                **item,
            },
        },
    }


def test_it_follows_a_zendesk_ticket_through_its_events(initech: Account) -> None:
    opened = zendesk(zendesk_event(1, "created", 9))
    assert opened.status_code == 200, opened.content
    assert opened.json()["status"] == "applied" and opened.json()["account"] == initech.pk
    solved = zendesk_event(2, "status_changed", 5, status="SOLVED")
    solved["event"] = {"previous": "OPEN", "current": "SOLVED"}
    assert zendesk(solved).json()["status"] == "applied"
    reopened = zendesk_event(3, "status_changed", 2, status="OPEN")
    assert zendesk(reopened).json()["status"] == "applied"
    # an update from before the reopening, delivered late: it changes nothing
    late = zendesk_event(4, "status_changed", 4, status="SOLVED")
    assert zendesk(late).json()["status"] == "stale"
    # a replayed delivery: 200, nothing new
    again = zendesk(reopened)
    assert again.status_code == 200 and again.json()["new"] is False
    ticket = Ticket.objects.get()
    assert (ticket.status, ticket.reopens, ticket.priority) == ("open", 1, "high")
    assert IntegrationEvent.objects.filter(source="zendesk").count() == 4


def test_it_takes_a_zendesk_trigger_body_and_its_satisfaction(initech: Account) -> None:
    body = {
        "ticket": {
            "id": 77,
            "status": "solved",
            "priority": "normal",
            "requester_email": "ana@initech.example",
            "created_at": iso(3),
            "updated_at": iso(1),
            "satisfaction": "bad",
        }
    }
    assert zendesk(body).json()["status"] == "applied"
    ticket = Ticket.objects.get(ticket_id="77")
    assert (ticket.account, ticket.csat, ticket.status) == (initech, 1, "closed")


def test_it_refuses_a_bad_zendesk_signature_and_stores_nothing(initech: Account) -> None:
    assert zendesk(zendesk_event(1, "created", 1), secret="wrong").status_code == 401
    unsigned = Client().post("/api/v1/integrations/zendesk", "{}", content_type="application/json")
    assert unsigned.status_code == 401
    assert unsigned.json()["detail"][0]["loc"] == ["header", "X-Zendesk-Webhook-Signature"]
    assert not Ticket.objects.exists() and not IntegrationEvent.objects.exists()


def test_it_follows_an_intercom_conversation(initech: Account) -> None:
    created = intercom(conversation(1, "conversation.user.created", "open", 3))
    assert created.status_code == 200, created.content
    assert created.json()["account"] == initech.pk
    rated = conversation(
        2, "conversation.admin.closed", "closed", 1, conversation_rating={"rating": 2}
    )
    assert intercom(rated).json()["status"] == "applied"
    ticket = Ticket.objects.get(source="intercom")
    assert (ticket.status, ticket.csat, ticket.priority) == ("closed", 2, "high")
    wrong = intercom(conversation(3, "conversation.user.replied", "open", 0), secret="x")
    assert wrong.status_code == 401
    assert wrong.json()["detail"][0]["loc"] == ["header", "X-Hub-Signature"]


def test_it_keeps_a_ticket_for_an_unknown_customer_until_it_is_mapped(
    admin_client: Client, initech: Account
) -> None:
    answer = zendesk(zendesk_event(1, "created", 1, organization_id="org-999"))
    assert answer.json()["status"] == "unmatched"
    page = admin_client.get("/settings/integrations/")
    assert b"org-999" in page.content
    mapped = admin_client.post(
        "/settings/integrations/map-tickets",
        {"source": "zendesk", "customer": "org-999", "account": "acc-initech"},
        follow=True,
    )
    assert b"org-999 is Initech" in mapped.content
    assert Ticket.objects.get().account == initech
    # the organisation's next ticket finds the account by itself
    zendesk(zendesk_event(2, "created", 0, id="36", organization_id="org-999"))
    assert Ticket.objects.get(ticket_id="36").account == initech


def test_it_records_a_ticket_from_any_desk_through_the_api(
    api: ApiClient, initech: Account
) -> None:
    body = {
        "id": "T-1",
        "account_external_id": "acc-initech",
        "status": "open",
        "priority": "urgent",
        "opened_at": iso(9),
        "updated_at": iso(9),
    }
    created = api.post_json("/api/v1/tickets", body)
    assert created.status_code == 200, created.content
    assert created.json() == {
        "id": "T-1",
        "account": initech.pk,
        "status": "open",
        "reopens": 0,
        "result": "applied",
    }
    older = api.post_json("/api/v1/tickets", {**body, "status": "closed", "updated_at": iso(10)})
    assert older.json()["result"] == "stale"
    for field, value in [
        ("status", "lost"),
        ("priority", "p1"),
        ("opened_at", "soon"),
        ("opened_at", iso(-3)),
        ("csat", 9),
    ]:
        refused = api.post_json("/api/v1/tickets", {**body, field: value})
        assert refused.status_code == 422, (field, value)
        assert refused.json()["detail"][0]["loc"][-1] == field, (field, refused.json())
    nobody = {k: v for k, v in body.items() if k != "account_external_id"}
    assert api.post_json("/api/v1/tickets", nobody).status_code == 422
    assert Ticket.objects.get().status == "open"
    detail = api.get_json(f"/api/v1/accounts/{initech.pk}").json()
    assert detail["tickets"]["urgent_or_high_open_over_7_days"] == 1


def test_it_takes_points_for_ticket_load(initech: Account) -> None:
    now = timezone.now()
    for n in range(4):
        state = tickets.TicketState(
            ticket_id=f"T{n}",
            updated_at=now - timedelta(days=1),
            status="open" if n < 3 else "closed",
            priority="urgent" if n == 0 else "normal",
            opened_at=now - timedelta(days=12 - n),
            csat=1 if n == 3 else None,
            org_ref="acc-initech",
        )
        tickets.record("api", state)
    tickets.record("api", tickets.TicketState("T3", now, status="open"))  # reopened
    (found,) = [h for h in health.scores(now=now) if h.account == initech]
    assert sorted(found.reasons) == sorted(
        [
            (-10, "4 support tickets open, the oldest 12 days"),
            (-10, "an urgent or high ticket open for over a week"),
            (-10, "1 of 1 support ratings poor in 90 days"),
            (-5, "1 of 4 tickets reopened in 90 days"),
            (-5, "no survey answer in a year"),
        ]
    )


@settings_h(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=12),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    ["id", "type", "detail", "ticket", "time", "status", "data", "item"]
                )
                | st.text(max_size=6),
                inner,
                max_size=5,
            )
        ),
        max_leaves=16,
    )
)
def test_it_never_fails_on_any_signed_json(body: Any) -> None:
    assert zendesk(body if isinstance(body, dict) else {"x": body}).status_code in (200, 400)
    assert intercom(body if isinstance(body, dict) else {"x": body}).status_code in (200, 400)


def test_it_refuses_a_nul_character_that_postgresql_cannot_store(initech: Account) -> None:
    assert zendesk(zendesk_event(1, "created", 1, subject="a\u0000b")).status_code == 400
    assert (
        intercom(
            conversation(1, "conversation.user.created", "open", 1, title="\u0000")
        ).status_code
        == 400
    )
    assert not Ticket.objects.exists() and not IntegrationEvent.objects.exists()
