"""Protocol sheets per theme: the owning team, pre-approved answers (linted, filled in for
the customer), next steps and the department to loop in, on the case page and in the API."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from closeloop.surveys.models import Account
from closeloop.team.models import Team, User
from closeloop.themes import learning
from closeloop.themes.models import Theme

from .conftest import ApiClient, open_case

pytestmark = pytest.mark.django_db

SHEET = {
    "team": "Billing ops",
    "approved_answers": [
        {
            "title": "Double charge refunded",
            "body": "Hi {first_name}, the second charge is refunded today and will show "
            "within five days. I have also added a check so it cannot repeat.\n\n"
            "{owner_first_name}",
        }
    ],
    "next_steps": ["Check the invoice history in Stripe", "Refund any duplicate the same day"],
    "loop_in": "Finance — billing-ops@example.com",
}


def field_of(reply: Any) -> str:
    """The input a 422 names, as a path: approved_answers.0.body."""
    path = [str(part) for part in reply.json()["detail"][0]["loc"][1:]]
    return ".".join(path[1:] if path[0] == "payload" else path)


@pytest.fixture
def billing_case(api: ApiClient, smb: Account) -> Any:
    Team.objects.create(name="Billing ops")
    case = open_case(api, smb, 3, "pat@example.com", name="Pat Lee", comment="Charged twice")
    learning.correct(case.response, [Theme.objects.get(slug="billing")], via="test")
    return case


def test_it_shows_the_sheet_of_the_case_theme_filled_in_for_the_customer(
    billing_case: Any, api: ApiClient, agent: User
) -> None:
    reply = api.client_put("/api/v1/themes/billing/protocol", SHEET)
    assert reply.status_code == 200, reply.content
    theme = reply.json()
    assert theme["team"] == "Billing ops" and theme["loop_in"].startswith("Finance")
    assert theme["approved_answers"][0]["title"] == "Double charge refunded"
    case = api.get_json(f"/api/v1/cases/{billing_case.pk}").json()
    (sheet,) = case["protocols"]
    assert sheet["theme"] == "billing" and sheet["team"] == "Billing ops"
    assert sheet["next_steps"] == SHEET["next_steps"]
    body = sheet["approved_answers"][0]["body"]
    assert body.startswith("Hi Pat, the second charge") and body.endswith("Alex")
    client = Client()
    assert client.login(username=agent.username, password="pw-alex-123")
    page = client.get(f"/cases/{billing_case.pk}/").content.decode()
    assert "Protocol: Billing" in page and "Loop in <strong>Finance" in page
    assert 'data-insert="Hi Pat, the second charge' in page
    assert "Check the invoice history in Stripe" in page


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"team": "Nobody"}, "team"),
        (
            {"approved_answers": [{"title": "X", "body": "Hi {nickname}"}]},
            "approved_answers.0.body",
        ),
        (
            {"approved_answers": [{"title": "X", "body": "Would you give us a 9 or 10?"}]},
            "approved_answers.0.body",
        ),
        (
            {"approved_answers": [{"title": "X", "body": "Why? How? " + "word " * 10}]},
            "approved_answers.0.body",
        ),
        ({"approved_answers": [{"title": " ", "body": "Fine."}]}, "approved_answers.0.title"),
        ({"next_steps": ["ok", "x" * 301]}, "next_steps.1"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_it_refuses_a_bad_sheet_by_name_and_keeps_the_old_one(
    billing_case: Any, api: ApiClient, change: dict[str, Any], field: str
) -> None:
    assert api.client_put("/api/v1/themes/billing/protocol", SHEET).status_code == 200
    reply = api.client_put("/api/v1/themes/billing/protocol", {**SHEET, **change})
    assert reply.status_code == 422, reply.content
    assert field_of(reply) == field
    theme = Theme.objects.get(slug="billing")
    assert theme.approved_answers[0]["title"] == "Double charge refunded"
    assert theme.team is not None and theme.team.name == "Billing ops"


def test_it_needs_an_admin_key_to_change_a_sheet(billing_case: Any, writer_api: ApiClient) -> None:
    assert writer_api.client_put("/api/v1/themes/billing/protocol", SHEET).status_code == 403


def test_it_edits_the_sheet_on_the_themes_settings_page(
    billing_case: Any, admin_user: User
) -> None:
    client = Client()
    client.force_login(admin_user)
    theme = Theme.objects.get(slug="billing")
    team = Team.objects.get(name="Billing ops")
    form = {
        "action": "protocol",
        "theme": theme.pk,
        "team": team.pk,
        "loop_in": "Finance",
        "next_steps": "Check Stripe\r\nRefund the same day",
        "answer_title": ["Refunded", ""],
        "answer_body": ["Hi {first_name}, it is refunded.", ""],
    }
    assert client.post("/settings/themes/", form).status_code == 302
    theme.refresh_from_db()
    assert theme.next_steps == ["Check Stripe", "Refund the same day"]
    assert theme.approved_answers == [
        {"title": "Refunded", "body": "Hi {first_name}, it is refunded."}
    ]
    bad = client.post(
        "/settings/themes/", {**form, "answer_body": ["Hi {nickname}", ""]}, follow=True
    )
    assert "approved_answers.0.body: unknown variable {nickname}" in bad.content.decode()
    theme.refresh_from_db()
    assert theme.approved_answers[0]["title"] == "Refunded"
    page = client.get("/settings/themes/").content.decode()
    assert "protocol: Billing ops" in page
