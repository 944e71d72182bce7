"""Detractor types that act: suggested by the comment at triage, set by the follow-up
conversation or by a person (in that order of authority); each type brings its own
playbook steps, and `leaving` a shorter deadline."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.test import Client

from closeloop.loop.models import Activity, Conversation, FollowUpCase
from closeloop.surveys.models import Account
from closeloop.team.models import User

from .conftest import ApiClient, answer_at, open_case
from .test_conversation import say

pytestmark = pytest.mark.django_db


def test_it_suggests_leaving_from_churn_words_and_shortens_the_deadline(
    api: ApiClient, smb: Account
) -> None:
    case = open_case(api, smb, 3, comment="Too slow. We will cancel at the end of the month.")
    assert (case.detractor_type, case.detractor_type_by) == ("leaving", "signals")
    assert case.due_at == case.created_at + timedelta(hours=24)  # 48 h for its band
    note = case.activities.get(kind=Activity.Kind.NOTE, data__by="signals")
    assert "suggested by the comment" in note.text and "cancel" in note.text
    assert any("Call within 24 hours" in step for step in case.playbook)


def test_it_suggests_evaluating_from_a_named_competitor(api: ApiClient, smb: Account) -> None:
    case = open_case(api, smb, 4, comment="We are evaluating Medallia for next year.")
    assert case.detractor_type == "evaluating"
    assert any("competitive comparison" in step for step in case.playbook)


def test_it_suggests_loyal_for_a_first_low_score_after_years(api: ApiClient, smb: Account) -> None:
    smb.customer_since = date(2019, 3, 1)
    smb.save()
    api.post_json("/api/v1/responses", answer_at(smb, 9, comment="Great"))
    body = answer_at(smb, 5, comment="The last release broke our exports.")
    assert api.post_json("/api/v1/responses", body).status_code == 201
    case = FollowUpCase.objects.get(loop="detractor")
    assert case.detractor_type == "loyal"
    assert "a first low score after 9/10" in case.activities.get(data__by="signals").text


def test_it_leaves_the_type_unknown_when_nothing_says_it(api: ApiClient, smb: Account) -> None:
    case = open_case(api, smb, 4, comment="Exports time out.")
    assert case.detractor_type == "" and case.due_at == case.created_at + timedelta(hours=48)


def test_it_lets_the_conversation_refine_a_suggestion_but_never_a_persons_choice(
    api: ApiClient, smb: Account, agent: User
) -> None:
    case = open_case(api, smb, 4, comment="We have used it for years; the export broke.")
    assert case.detractor_type == "loyal"
    say(Client(), Conversation.objects.get(case=case), "We are switching to Qualtrics now.")
    case.refresh_from_db()
    assert (case.detractor_type, case.detractor_type_by) == ("leaving", "conversation")
    case.set_detractor_type("invested", agent)
    other = open_case(api, smb, 4, email="b@example.com", comment="Slow exports.")
    other.set_detractor_type("loyal", agent)
    say(Client(), Conversation.objects.get(case=other), "Honestly we will cancel.")
    other.refresh_from_db()
    assert (other.detractor_type, other.detractor_type_by) == ("loyal", "person")
    assert other.urgency == "high"  # the signal still counts; only the type stays


def test_it_refuses_type_playbooks_for_an_unknown_type(api: ApiClient) -> None:
    policy: dict[str, Any] = api.get_json("/api/v1/triage-policy").json()
    config = policy.get("config", policy)
    config["type_playbooks"] = {"angry": ["Calm them down."]}
    got = api.client_put("/api/v1/triage-policy", config)
    assert got.status_code == 422
    assert "type_playbooks" in str(got.json()["detail"][0]["loc"])


def test_it_sets_the_type_through_the_api_and_brings_in_the_sponsor_for_leaving(
    api: ApiClient, enterprise: Account, agent: User, smtp: Any
) -> None:
    from closeloop.team.models import Role

    from .conftest import drain

    sponsor = User.objects.create_user("vp", "vp@example.com", "pw-vp-123", role=Role.MANAGER)
    case = open_case(api, enterprise, 5, comment="Reports are slow")
    enterprise.executive_sponsor = sponsor
    enterprise.save()
    drain()
    before = len(smtp.inbox.messages)
    reply = api.post_json(f"/api/v1/cases/{case.pk}/type", {"detractor_type": "leaving"})
    assert reply.status_code == 200, reply.content
    assert reply.json()["detractor_type"] == "leaving"
    case.refresh_from_db()
    assert case.detractor_type_by == "person"
    assert sponsor in case.watchers.all()
    drain()
    told = {m["To"] for m in smtp.inbox.messages[before:]}
    assert {"vp@example.com", agent.email} <= told
    mail = smtp.inbox.to("vp@example.com")[-1]
    assert mail["Subject"].startswith("Leaving:") and "within 24 hours" in mail.get_content()
    # The same type again changes nothing and tells nobody twice.
    api.post_json(f"/api/v1/cases/{case.pk}/type", {"detractor_type": "leaving"})
    drain()
    assert len(smtp.inbox.to("vp@example.com")) == 1
    bad = api.post_json(f"/api/v1/cases/{case.pk}/type", {"detractor_type": "grumpy"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "detractor_type"
    case.refresh_from_db()
    assert case.detractor_type == "leaving"
