"""Checking back after a fix: closing a case as resolved schedules one email from the
owner with the 0–10 scale; its answer comes back to the case as the post-resolution
score, and a low one reopens the case and tells the owner's manager. Time moves with
time_machine; the worker's survey step sends it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from closeloop.delivery.models import Delivery
from closeloop.loop.intake import answer_request
from closeloop.loop.models import Activity, FollowUpCase, Notification, TriagePolicy
from closeloop.loop.policy import Action, PolicyConfig
from closeloop.surveys.models import Account, Response, SurveyRequest
from closeloop.surveys.sending import handle_due_surveys
from closeloop.team.models import User

from .conftest import ApiClient, open_case

pytestmark = pytest.mark.django_db
START = datetime.fromisoformat("2026-12-01T09:00:00+00:00")


@pytest.fixture
def case(api: ApiClient, smb: Account, agent: User) -> FollowUpCase:
    with time_machine.travel(START, tick=False):
        made = open_case(api, smb, 3, name="Pat Lee", comment="The export times out.")
        close(api, made)
    made.refresh_from_db()
    return made


def close(api: ApiClient, case: FollowUpCase, resolution: str = "resolved") -> Any:
    got = api.post_json(
        f"/api/v1/cases/{case.pk}/close",
        {"resolution": resolution, "reason": "fixed", "note": "export fixed in 4.2"},
    )
    assert got.status_code == 200, got.content
    return got


def check_back_request(case: FollowUpCase) -> SurveyRequest:
    return SurveyRequest.objects.get(check_back__case=case)


def test_it_schedules_a_check_back_from_the_owner_two_weeks_after_resolution(
    case: FollowUpCase, agent: User
) -> None:
    request = check_back_request(case)
    assert request.purpose == "check_back" and request.scheduled_at == START + timedelta(days=14)
    assert (
        "check-back scheduled for 2026-12-15"
        in case.activities.get(kind=Activity.Kind.NOTE, data__has_key="check_back").text
    )
    with time_machine.travel(START + timedelta(days=13), tick=False):
        assert not handle_due_surveys()
    with time_machine.travel(START + timedelta(days=14, minutes=1), tick=False):
        assert handle_due_surveys()
    email = Delivery.objects.get(survey_request=request)
    assert agent.email in email.from_email and email.reply_to == case.reply_address
    assert email.subject == "Has it got better since your 3/10?"
    assert "we worked on what you told us" in email.body


def test_it_counts_a_good_answer_on_the_case_and_leaves_it_closed(case: FollowUpCase) -> None:
    request = check_back_request(case)
    with time_machine.travel(START + timedelta(days=15), tick=False):
        handle_due_surveys()
        response, _ = answer_request(request, 9, "Much better now", Response.Source.EMAIL)
    case.refresh_from_db()
    assert case.is_closed and case.responses.filter(pk=response.pk).exists()
    assert (
        "check-back answered 9/10 (was 3)"
        in case.activities.get(kind=Activity.Kind.ANSWER_JOINED).text
    )
    # It is the answer after the case's: the program counts it as the score change.
    assert FollowUpCase.objects.count() == 1  # no promoter loop, no new case


def test_it_reopens_the_case_and_tells_the_manager_when_it_did_not_get_better(
    case: FollowUpCase, agent: User, manager: User
) -> None:
    request = check_back_request(case)
    with time_machine.travel(START + timedelta(days=15), tick=False):
        handle_due_surveys()
        answer_request(request, 2, "Still times out every Monday.", Response.Source.EMAIL)
    case.refresh_from_db()
    assert not case.is_closed and case.score == 2 and case.previous_score == 3
    assert case.activities.filter(kind=Activity.Kind.REOPENED).exists()
    told = Notification.objects.filter(case=case, text__startswith="Check-back 2/10")
    assert {n.user for n in told} == {agent, manager}
    assert FollowUpCase.objects.count() == 1  # the same case, not a new one


def test_it_does_not_send_the_check_back_of_a_case_reopened_meanwhile(
    api: ApiClient, case: FollowUpCase
) -> None:
    assert (
        api.post_json(f"/api/v1/cases/{case.pk}/reopen", {"reason": "they wrote"}).status_code
        == 200
    )
    request = check_back_request(case)
    assert request.status == "cancelled"
    with time_machine.travel(START + timedelta(days=15), tick=False):
        assert not handle_due_surveys()


def test_it_checks_back_per_action_or_not_at_all(
    api: ApiClient, smb: Account, admin_user: User
) -> None:
    config = PolicyConfig()
    config.check_back_days = 0
    config.check_back_days_by_action = {Action.AUTOMATED_EMAIL_SURVEY: 7}
    TriagePolicy.save_new_version(config, admin_user)
    moderate = open_case(api, smb, 4, email="a@example.com")  # automated_email_survey
    severe = open_case(api, smb, 1, email="b@example.com")  # personal_email_call
    close(api, moderate)
    close(api, severe)
    assert (
        check_back_request(moderate).scheduled_at.date()
        == (timezone.now() + timedelta(days=7)).date()
    )
    assert not SurveyRequest.objects.filter(check_back__case=severe).exists()


def test_it_skips_a_customer_who_unsubscribed_and_says_why(api: ApiClient, smb: Account) -> None:
    made = open_case(api, smb, 3)
    made.person.unsubscribed_at = timezone.now()
    made.person.save()
    close(api, made)
    assert not SurveyRequest.objects.filter(check_back__case=made).exists()
    assert made.activities.filter(text="no check-back: the customer unsubscribed").exists()


def test_it_checks_back_only_on_resolved_cases(api: ApiClient, smb: Account) -> None:
    made = open_case(api, smb, 3)
    close(api, made, "cant_fix")
    assert not SurveyRequest.objects.filter(check_back__case=made).exists()
