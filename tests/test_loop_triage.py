"""Triage: what an answer becomes the moment it is stored (docs/domain.md §3–4)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from closeloop.delivery.models import Delivery
from closeloop.loop.intake import change_response, handle_pending_triage
from closeloop.loop.models import Activity, FollowUpCase, Notification, Task, TriagePolicy
from closeloop.loop.policy import Action, PolicyConfig
from closeloop.surveys.models import Account, Response, SurveyRequest
from closeloop.team.models import User

from .conftest import ApiClient, answer, answer_at

pytestmark = pytest.mark.django_db


def at(
    account: Account, score: int, email: str = "pat@example.com", **extra: Any
) -> dict[str, Any]:
    return answer_at(account, score, email, name="Pat Lee", **extra)


def the_case(email: str = "pat@example.com") -> FollowUpCase:
    return FollowUpCase.objects.get(person__email=email, status__in=["open", "contacted"])


def test_it_opens_a_routed_case_with_a_deadline_when_a_detractor_answers(
    api: ApiClient, enterprise: Account, agent: User
) -> None:
    before = timezone.now()
    assert api.post_json("/api/v1/responses", at(enterprise, 3, comment="Slow")).status_code == 201
    case = the_case()
    assert case.loop == "detractor" and case.band == "moderate" and case.high_value
    assert case.action == Action.PERSONAL_EMAIL_QUESTIONS
    assert case.rule == "moderate × high_value" and case.policy.version == 1
    assert case.owner == agent and case.routed_by == "account owner"
    assert before + timedelta(hours=48) <= case.due_at <= timezone.now() + timedelta(hours=48)
    assert case.next_escalation_at == case.due_at
    kinds = list(case.activities.order_by("id").values_list("kind", flat=True))
    assert kinds == [Activity.Kind.CREATED, Activity.Kind.ASSIGNED]
    alert = Delivery.objects.get(case=case, purpose=Delivery.Purpose.OWNER_ALERT)
    assert alert.to == agent.email and "3/10" in alert.subject and "Slow" in alert.body
    assert Notification.objects.filter(user=agent, case=case).exists()
    # A personal action: nothing goes to the customer until the owner writes.
    assert not Delivery.objects.filter(case=case, purpose=Delivery.Purpose.OUTREACH).exists()


def test_it_gives_severe_high_value_detractors_a_call_within_24_hours(
    api: ApiClient, enterprise: Account
) -> None:
    api.post_json("/api/v1/responses", at(enterprise, 1))
    case = the_case()
    assert case.action == Action.CALL and case.band == "severe"
    assert case.due_at <= timezone.now() + timedelta(hours=24)
    task = Task.objects.get(case=case)
    assert task.kind == "call" and task.due_at == case.due_at and task.owner == case.owner


def test_it_queues_an_automated_outreach_from_the_owner_for_standard_accounts(
    api: ApiClient, smb: Account, agent: User
) -> None:
    api.post_json("/api/v1/responses", at(smb, 4))
    case = the_case()
    assert case.action == Action.AUTOMATED_EMAIL_SURVEY
    email = Delivery.objects.get(case=case, purpose=Delivery.Purpose.OUTREACH)
    assert email.to == "pat@example.com"
    assert email.from_email == f"Alex <{agent.email}>"
    assert email.reply_to == case.reply_address and case.reply_token in email.reply_to
    assert "4 out of 10" in email.body and email.body.count("?") == 1
    # The action also asks again later with a survey.
    request = SurveyRequest.objects.get(person=case.person)
    assert request.scheduled_at > timezone.now() + timedelta(days=29)


def test_it_uses_high_value_by_arr_as_well_as_by_tier(api: ApiClient, smb: Account) -> None:
    smb.arr_cents = 80_000_00
    smb.save()
    api.post_json("/api/v1/responses", at(smb, 2))
    assert the_case().high_value and the_case().action == Action.CALL


def test_it_joins_a_newer_answer_to_the_open_case(api: ApiClient, enterprise: Account) -> None:
    api.post_json("/api/v1/responses", at(enterprise, 5))
    api.post_json("/api/v1/responses", at(enterprise, 2, comment="Worse now"))
    case = FollowUpCase.objects.get()
    assert case.score == 2 and case.previous_score == 5 and case.responses.count() == 2
    joined = case.activities.get(kind=Activity.Kind.ANSWER_JOINED)
    assert "2/10 (was 5)" in joined.text and "Worse now" in joined.text


def test_it_opens_no_case_for_historical_answers(api: ApiClient, enterprise: Account) -> None:
    old = (timezone.now() - timedelta(days=30)).isoformat()
    assert api.post_json("/api/v1/responses", at(enterprise, 0, created_at=old)).status_code == 201
    assert Response.objects.count() == 1
    assert not FollowUpCase.objects.exists()


def test_it_gives_promoters_and_passives_their_own_loops_without_alerts(
    api: ApiClient, smb: Account
) -> None:
    api.post_json("/api/v1/responses", at(smb, 10, email="fan@example.com"))
    api.post_json("/api/v1/responses", at(smb, 7, email="meh@example.com"))
    fan = FollowUpCase.objects.get(person__email="fan@example.com")
    meh = FollowUpCase.objects.get(person__email="meh@example.com")
    assert (fan.loop, fan.action, fan.due_at) == ("promoter", Action.AUTOMATED_THANKS_REVIEW, None)
    assert (meh.loop, meh.action) == ("passive", Action.AUTOMATED_ONE_QUESTION)
    purposes = set(Delivery.objects.values_list("purpose", flat=True))
    assert purposes == {Delivery.Purpose.OUTREACH}


def test_it_supersedes_a_promoter_loop_when_the_person_turns_detractor(
    api: ApiClient, smb: Account
) -> None:
    api.post_json("/api/v1/responses", at(smb, 9))
    api.post_json("/api/v1/responses", at(smb, 3))
    promoter, detractor = FollowUpCase.objects.order_by("id")
    assert promoter.status == "closed" and promoter.resolution == "superseded"
    assert detractor.loop == "detractor" and detractor.previous_score == 9


def test_it_records_which_policy_version_made_each_case(
    api: ApiClient, smb: Account, admin_user: User
) -> None:
    api.post_json("/api/v1/responses", at(smb, 4, email="a@example.com"))
    config = PolicyConfig()
    config.matrix["moderate"].standard = Action.PERSONAL_EMAIL_QUESTIONS  # type: ignore[index]
    TriagePolicy.save_new_version(config, admin_user)
    api.post_json("/api/v1/responses", at(smb, 4, email="b@example.com"))
    first = FollowUpCase.objects.get(person__email="a@example.com")
    second = FollowUpCase.objects.get(person__email="b@example.com")
    assert (first.policy.version, first.action) == (1, Action.AUTOMATED_EMAIL_SURVEY)
    assert (second.policy.version, second.action) == (2, Action.PERSONAL_EMAIL_QUESTIONS)


def test_it_leaves_open_cases_to_their_policy_until_a_person_re_triages_one(
    api: ApiClient, writer_api: ApiClient, smb: Account, admin_user: User
) -> None:
    personal = PolicyConfig()
    personal.matrix["moderate"].standard = Action.PERSONAL_EMAIL_QUESTIONS  # type: ignore[index]
    TriagePolicy.save_new_version(personal, admin_user)
    api.post_json("/api/v1/responses", at(smb, 4))
    case = the_case()
    due, version = case.due_at, case.policy.version
    assert case.action == Action.PERSONAL_EMAIL_QUESTIONS and due == case.created_at + timedelta(
        hours=48
    )
    automated = PolicyConfig()
    automated.matrix["moderate"].standard = Action.AUTOMATED_BRIEF_QUESTION  # type: ignore[index]
    automated.sla_hours.default = 24
    TriagePolicy.save_new_version(automated, admin_user)
    case.refresh_from_db()
    assert (case.action, case.due_at, case.policy.version) == (
        Action.PERSONAL_EMAIL_QUESTIONS,
        due,
        version,
    )
    assert writer_api.post_json(f"/api/v1/cases/{case.pk}/retriage", {}).status_code == 403
    reply = api.post_json(f"/api/v1/cases/{case.pk}/retriage", {})
    assert reply.status_code == 200, reply.content
    body = reply.json()
    assert body["action"] == Action.AUTOMATED_BRIEF_QUESTION
    assert body["policy_version"] == version + 1
    case.refresh_from_db()
    assert case.due_at == case.created_at + timedelta(hours=24)
    note = case.activities.get(data__retriaged=version + 1)
    assert f"from policy v{version} to v{version + 1}" in note.text
    # Now automated and untouched: its first email is queued, once.
    assert case.deliveries.filter(purpose=Delivery.Purpose.OUTREACH).count() == 1
    again = api.post_json(f"/api/v1/cases/{case.pk}/retriage", {})
    assert again.status_code == 200
    assert case.deliveries.filter(purpose=Delivery.Purpose.OUTREACH).count() == 1
    case.close(FollowUpCase.Resolution.NO_RESPONSE, "test", "closing", None)
    closed = api.post_json(f"/api/v1/cases/{case.pk}/retriage", {})
    assert closed.status_code == 422 and closed.json()["detail"][0]["loc"][-1] == "status"


def test_it_ranks_a_drop_from_8_to_3_above_a_steady_3(api: ApiClient, smb: Account) -> None:
    earlier = (timezone.now() - timedelta(days=60)).isoformat()
    api.post_json("/api/v1/responses", at(smb, 8, email="drop@example.com", created_at=earlier))
    api.post_json("/api/v1/responses", at(smb, 3, email="steady@example.com", created_at=earlier))
    api.post_json("/api/v1/responses", at(smb, 3, email="drop@example.com"))
    api.post_json("/api/v1/responses", at(smb, 3, email="steady@example.com"))
    drop = FollowUpCase.objects.get(person__email="drop@example.com")
    steady = FollowUpCase.objects.get(person__email="steady@example.com")
    assert drop.previous_score == 8 and steady.previous_score == 3
    assert drop.priority > steady.priority


def test_it_ranks_bigger_accounts_and_disengaged_people_higher(
    api: ApiClient, smb: Account, enterprise: Account
) -> None:
    api.post_json("/api/v1/responses", at(smb, 4, email="small@example.com"))
    api.post_json("/api/v1/responses", at(enterprise, 4, email="big@example.com"))
    idle = answer(
        email="idle@example.com",
        score=4,
        person={"email": "idle@example.com", "properties": {"last_active_at": "2020-01-01"}},
    )
    active = answer(
        email="active@example.com",
        score=4,
        person={
            "email": "active@example.com",
            "properties": {"last_active_at": timezone.now().isoformat()},
        },
    )
    api.post_json("/api/v1/responses", idle)
    api.post_json("/api/v1/responses", active)
    p = {c.person.email: c.priority for c in FollowUpCase.objects.select_related("person")}
    assert p["big@example.com"] > p["small@example.com"]
    assert p["idle@example.com"] > p["active@example.com"]


def test_it_triages_every_answer_of_a_batch_in_the_worker_right_after(
    api: ApiClient, smb: Account
) -> None:
    items = [at(smb, i % 7, email=f"p{i}@example.com") for i in range(30)]
    assert api.post_json("/api/v1/responses/batch", {"responses": items}).status_code == 200
    # stored at once, each marked for the intake lane; nothing triaged yet
    assert Response.objects.filter(triage_pending=True).count() == 30
    assert not FollowUpCase.objects.exists()
    assert handle_pending_triage() is True
    assert not Response.objects.filter(triage_pending=True).exists()
    assert FollowUpCase.objects.filter(loop="detractor").count() == 30
    assert Delivery.objects.filter(purpose=Delivery.Purpose.OWNER_ALERT).count() == 30
    assert handle_pending_triage() is False  # each answer once


def test_it_triages_queued_answers_in_order_and_a_later_one_joins_their_case(
    api: ApiClient, smb: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = timezone.now()
    first = at(
        smb, 2, comment="Exports time out", created_at=(now - timedelta(hours=2)).isoformat()
    )
    second = at(smb, 5, comment="Still slow", created_at=(now - timedelta(hours=1)).isoformat())
    others = [at(smb, 3, email=f"o{i}@example.com") for i in range(3)]
    body = {"responses": [first, *others, second]}
    assert api.post_json("/api/v1/responses/batch", body).status_code == 200
    monkeypatch.setattr("closeloop.loop.intake.TRIAGE_BATCH", 2)
    rounds = 0
    while handle_pending_triage():
        rounds += 1
    assert rounds == 3  # five answers, two per transaction
    case = the_case()  # opened by the earlier answer, then joined by the later one
    assert (case.previous_score, case.score, case.response.comment) == (2, 5, "Still slow")
    assert case.responses.count() == 2
    assert FollowUpCase.objects.filter(person__email="pat@example.com").count() == 1


def test_it_leaves_a_batch_queued_when_its_triage_fails(
    api: ApiClient, smb: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [at(smb, 3, email=f"p{i}@example.com") for i in range(4)]
    assert api.post_json("/api/v1/responses/batch", {"responses": items}).status_code == 200

    def broken(answers: Any) -> None:
        raise RuntimeError("routing is down")

    monkeypatch.setattr("closeloop.loop.triage.follow_up", broken)
    with pytest.raises(RuntimeError):
        handle_pending_triage()
    assert Response.objects.filter(triage_pending=True).count() == 4
    assert not FollowUpCase.objects.exists()
    monkeypatch.undo()
    assert handle_pending_triage() is True
    assert FollowUpCase.objects.count() == 4


def test_it_keeps_each_cases_next_answer_as_answers_arrive_in_any_order(
    api: ApiClient, enterprise: Account
) -> None:
    now = timezone.now().replace(microsecond=0)
    iso = lambda moment: moment.isoformat()  # noqa: E731
    body = at(enterprise, 2, created_at=iso(now - timedelta(hours=3)))
    assert api.post_json("/api/v1/responses", body).status_code == 201
    case = the_case()
    assert (case.next_score, case.next_answered_at) == (None, None)
    FollowUpCase.objects.filter(pk=case.pk).update(status="closed", closed_at=now)
    # The person answers a later survey: that is the case's next answer.
    api.post_json("/api/v1/responses", at(enterprise, 8, created_at=iso(now)))
    case.refresh_from_db()
    assert (case.next_score, case.next_answered_at) == (8, now)
    # Backfilled through the batch API and the intake lane: an answer before the case
    # changes nothing, one between the case and the 8 becomes its next answer.
    older = [
        at(enterprise, 1, created_at=iso(now - timedelta(hours=5))),
        at(enterprise, 5, created_at=iso(now - timedelta(hours=1)), external_id="between"),
    ]
    assert api.post_json("/api/v1/responses/batch", {"responses": older}).status_code == 200
    while handle_pending_triage():
        pass
    case.refresh_from_db()
    assert (case.next_score, case.next_answered_at) == (5, now - timedelta(hours=1))
    # The person changes that answer: the case's next score follows.
    change_response(Response.objects.get(external_id="between"), score=9, via="api")
    case.refresh_from_db()
    assert (case.next_score, case.next_answered_at) == (9, now - timedelta(hours=1))
