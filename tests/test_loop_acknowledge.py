"""A detractor whose action waits for a person hears from the owner at once: a short
acknowledgement saying by when they will call or write, which is not the first touch."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from closeloop.delivery.models import Delivery
from closeloop.loop import conversation_texts, outreach
from closeloop.loop.models import Activity, FollowUpCase, TriagePolicy
from closeloop.loop.policy import PolicyConfig
from closeloop.surveys.models import Account
from closeloop.team.models import User

from .conftest import ApiClient, answer_at, drain, open_case
from .loopback import SmtpServer, smtp

pytestmark = pytest.mark.django_db
__all__ = ["smtp"]


def test_it_acknowledges_a_severe_detractor_at_once_from_the_owner(
    api: ApiClient, smb: Account, smtp: SmtpServer
) -> None:
    with time_machine.travel("2026-12-01 09:00Z", tick=False):  # a Tuesday
        case = open_case(api, smb, 1, name="Pat Lee", comment="It broke our payroll run.")
        assert case.action == "personal_email_call" and case.due_at is not None
        ack = Delivery.objects.get(case=case, purpose=Delivery.Purpose.ACKNOWLEDGE)
        assert "Alex" in ack.from_email and ack.to == "pat@example.com"
        assert ack.subject == "Your 1/10: I'll write to you by Thursday 3 December"
        assert "/c/" in ack.body  # the follow-up conversation is offered
        drain()
    mail = smtp.inbox.messages
    assert [m["Subject"] for m in mail if m["To"] == "pat@example.com"] == [ack.subject]
    case.refresh_from_db()
    # Not the first touch: the personal email the policy asks for keeps its deadline.
    assert case.first_touch_at is None and case.status == FollowUpCase.Status.OPEN
    assert case.activities.filter(kind=Activity.Kind.EMAIL_SENT).exists()
    with time_machine.travel(case.due_at + timedelta(minutes=5), tick=False):
        assert case.is_overdue


def test_it_says_it_will_call_when_the_action_is_a_call(
    api: ApiClient, enterprise: Account
) -> None:
    case = open_case(api, enterprise, 0, email="cto@globex.example", comment="Down all day.")
    assert case.action == "call"
    ack = Delivery.objects.get(case=case, purpose=Delivery.Purpose.ACKNOWLEDGE)
    assert "I'll call you by" in ack.subject
    assert "What time of day is best to reach you?" in ack.body


def test_it_sends_none_when_the_policy_turns_it_off(
    api: ApiClient, smb: Account, admin_user: User
) -> None:
    config = PolicyConfig()
    config.acknowledge_personal = False
    TriagePolicy.save_new_version(config, admin_user)
    case = open_case(api, smb, 1)
    assert not Delivery.objects.filter(case=case, purpose=Delivery.Purpose.ACKNOWLEDGE).exists()


def test_it_sends_none_for_an_automated_action(api: ApiClient, smb: Account) -> None:
    case = open_case(api, smb, 4)
    assert case.action.startswith("automated_")
    assert not Delivery.objects.filter(case=case, purpose=Delivery.Purpose.ACKNOWLEDGE).exists()


def test_it_writes_in_the_customers_language(api: ApiClient, smb: Account) -> None:
    body: dict[str, Any] = {
        "person": {
            "email": "jonas@example.de",
            "locale": "de",
            "account": {"external_id": smb.external_id},
        },
        "score": 1,
    }
    assert api.post_json("/api/v1/responses", body).status_code == 201
    ack = Delivery.objects.get(to="jonas@example.de", purpose=Delivery.Purpose.ACKNOWLEDGE)
    assert ack.subject.startswith("Ihre 1/10: Ich schreibe Ihnen bis ")
    assert any(day in ack.subject for day in conversation_texts.WEEKDAYS["de"].split())


@pytest.mark.parametrize("key", sorted(outreach.ACKNOWLEDGEMENTS))
def test_it_ships_acknowledgements_that_pass_the_linter(key: tuple[str, str]) -> None:
    draft = outreach.ACKNOWLEDGEMENTS[key]
    sample = {**outreach.SAMPLE, "when": outreach.ACK_SAMPLE_WHEN}
    found = outreach.lint(draft.subject, draft.body, key[1], outreach.ACK_VARIABLES, sample)
    assert found == [], found


def test_it_never_lets_an_unsubscribed_customer_be_acknowledged(
    api: ApiClient, smb: Account
) -> None:
    first = open_case(api, smb, 4)
    person = first.person
    person.unsubscribed_at = timezone.now()
    person.save()
    first.close("resolved", "done", "done", None)
    assert api.post_json("/api/v1/responses", answer_at(smb, 1)).status_code == 201
    case = FollowUpCase.objects.exclude(pk=first.pk).get(person=person)
    assert not Delivery.objects.filter(case=case, purpose=Delivery.Purpose.ACKNOWLEDGE).exists()
    assert case.activities.filter(kind=Activity.Kind.DELIVERY_FAILED).exists()
