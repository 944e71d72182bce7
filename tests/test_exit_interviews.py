"""Exit interviews: an account that churns has its champion asked why, once, by email
from its owner; the answer is kept as the account's exit reason, not triaged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from closeloop.loop.intake import record_responses
from closeloop.loop.models import ExitInterview, FollowUpCase
from closeloop.surveys.ingest import PersonData, ResponseData
from closeloop.surveys.models import Account, Person, Response, Survey
from closeloop.team.models import User

from .conftest import ApiClient, answer_at, drain
from .loopback import SmtpServer

pytestmark = pytest.mark.django_db


def churn(api: ApiClient, account: Account, days_ago: int = 1) -> None:
    when = (timezone.now() - timedelta(days=days_ago)).isoformat()
    reply = api.post_json(
        "/api/v1/accounts",
        {"external_id": account.external_id, "churned_at": when, "churn_reason": "budget"},
    )
    assert reply.status_code == 200, reply.content


def test_it_asks_the_champion_once_and_keeps_the_answer_as_an_exit_reason(
    api: ApiClient, smb: Account, agent: User, smtp: SmtpServer
) -> None:
    assert api.post_json("/api/v1/responses", answer_at(smb, 8, "pat@example.com")).status_code
    Person.objects.create(email="kim@example.com", account=smb, properties={"champion": True})
    drain()
    churn(api, smb)
    drain()
    drain()
    interview = ExitInterview.objects.get()
    assert interview.person.email == "kim@example.com" and interview.request is not None
    (mail,) = smtp.inbox.to("kim@example.com")
    assert mail["Subject"] == "Before you go: what made you leave?"
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert agent.email in str(mail["From"]) and "main reason you left" in text
    cases_before = FollowUpCase.objects.count()
    record_responses(
        [
            ResponseData(
                person=PersonData(email="kim@example.com"),
                score=2,
                comment="Too expensive for what we used",
                request=interview.request,
            )
        ]
    )
    interview.refresh_from_db()
    answer = Response.objects.get(comment="Too expensive for what we used")
    assert interview.response == answer and "exit" in answer.tags
    assert FollowUpCase.objects.count() == cases_before  # the account has left: no case
    from django.test import Client

    admin = Client()
    admin.force_login(User.objects.create_superuser("root", "root@example.com", "pw-root-123"))
    page = admin.get("/settings/integrations/").content.decode()
    assert "Too expensive for what we used" in page and "kim@example.com" in page
    # Churn news again (a re-sent import) asks nobody twice.
    churn(api, smb)
    drain()
    assert ExitInterview.objects.count() == 1


def test_it_says_why_nobody_was_asked(api: ApiClient, smb: Account, enterprise: Account) -> None:
    Survey.objects.create(name="Relationship", slug="relationship")
    Person.objects.create(email="gone@example.com", account=smb, unsubscribed_at=timezone.now())
    churn(api, smb)
    churn(api, enterprise, days_ago=45)  # recorded long after: history, not asked
    drain()
    (interview,) = ExitInterview.objects.all()
    assert interview.account == smb and interview.request is None
    assert interview.skipped == "unsubscribed"
