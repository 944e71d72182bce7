"""Promises made on a case are chased: the owner is reminded before one is due, an
overdue one escalates like a missed first touch, and closing a case asks what became
of each promise still open. Time moves with time_machine; the worker's steps run."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client

from closeloop.delivery.models import Delivery
from closeloop.loop.models import Activity, FollowUpCase, Notification, Task
from closeloop.loop.sla import handle_promise_escalation, handle_promise_reminder
from closeloop.surveys.models import Account
from closeloop.team.models import User

from .conftest import ApiClient, open_case

pytestmark = pytest.mark.django_db
START = datetime.fromisoformat("2026-12-01T09:00:00+00:00")


@pytest.fixture
def case(api: ApiClient, smb: Account) -> FollowUpCase:
    with time_machine.travel(START, tick=False):
        return open_case(api, smb, 3, comment="The export times out.")


def promise(api: ApiClient, case: FollowUpCase, due: datetime) -> dict[str, Any]:
    with time_machine.travel(START, tick=False):
        got = api.post_json(
            f"/api/v1/cases/{case.pk}/commitments",
            {"promise": "Fix the export timeout and confirm by email", "due_at": due.isoformat()},
        )
    assert got.status_code in (200, 201), got.content
    return dict(got.json())


def run_until_idle(step: Any) -> int:
    done = 0
    while step():
        done += 1
    return done


def test_it_reminds_the_owner_a_day_before_a_promise_is_due(
    api: ApiClient, case: FollowUpCase, agent: User
) -> None:
    promise(api, case, START + timedelta(days=3))
    with time_machine.travel(START + timedelta(days=1), tick=False):
        assert run_until_idle(handle_promise_reminder) == 0  # not yet
    with time_machine.travel(START + timedelta(days=2, minutes=1), tick=False):
        assert run_until_idle(handle_promise_reminder) == 1
        assert run_until_idle(handle_promise_reminder) == 0  # once
    notice = Notification.objects.get(user=agent, text__startswith="Promise due")
    assert "Fix the export timeout" in notice.text
    mail = Delivery.objects.get(to=agent.email, subject__startswith="Promise due")
    assert "Mark it done on the case" in mail.body


def test_it_reminds_halfway_for_a_promise_due_within_a_day(
    api: ApiClient, case: FollowUpCase
) -> None:
    promise(api, case, START + timedelta(hours=6))
    task = Task.objects.get(case=case, kind="commitment")
    assert task.remind_at == START + timedelta(hours=3)


def test_it_escalates_an_overdue_promise_to_the_owners_manager_then_theirs(
    api: ApiClient, case: FollowUpCase, agent: User, manager: User, admin_user: User
) -> None:
    manager.manager = admin_user
    manager.save()
    promise(api, case, START + timedelta(days=2))
    with time_machine.travel(START + timedelta(days=2, minutes=1), tick=False):
        assert run_until_idle(handle_promise_escalation) == 1
    assert Notification.objects.filter(user=manager, text__startswith="Promise overdue").exists()
    escalated = case.activities.get(kind=Activity.Kind.ESCALATED)
    assert "promise overdue" in escalated.text and escalated.data["level"] == 1
    with time_machine.travel(START + timedelta(days=2, hours=12), tick=False):
        assert run_until_idle(handle_promise_escalation) == 0  # the next level waits a day
    with time_machine.travel(START + timedelta(days=3, hours=1), tick=False):
        assert run_until_idle(handle_promise_escalation) == 1
    assert Notification.objects.filter(user=admin_user, text__startswith="Promise overdue").exists()
    with time_machine.travel(START + timedelta(days=9), tick=False):
        assert run_until_idle(handle_promise_escalation) == 0  # two levels, then it stops
    assert Task.objects.get(case=case, kind="commitment").escalation_level == 2


def test_it_stops_chasing_a_promise_marked_done(
    api: ApiClient, case: FollowUpCase, agent: User
) -> None:
    promise(api, case, START + timedelta(days=2))
    Task.objects.get(case=case, kind="commitment").complete(agent)
    with time_machine.travel(START + timedelta(days=5), tick=False):
        assert run_until_idle(handle_promise_reminder) == 0
        assert run_until_idle(handle_promise_escalation) == 0
    assert Task.objects.get(case=case, kind="commitment").outcome == "kept"


def test_it_asks_what_became_of_each_open_promise_when_closing(
    api: ApiClient, case: FollowUpCase
) -> None:
    made = promise(api, case, START + timedelta(days=2))
    task_id = next(t["id"] for t in made["tasks"] if t["kind"] == "commitment")
    body: dict[str, Any] = {"resolution": "resolved", "reason": "fixed", "note": "export fixed"}
    refused = api.post_json(f"/api/v1/cases/{case.pk}/close", body)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "promises"]
    assert "Fix the export timeout" in refused.json()["detail"][0]["msg"]
    wrong = api.post_json(
        f"/api/v1/cases/{case.pk}/close",
        {**body, "promises": [{"id": task_id, "outcome": "forgotten"}]},
    )
    assert wrong.status_code == 422
    stranger = api.post_json(
        f"/api/v1/cases/{case.pk}/close",
        {
            **body,
            "promises": [{"id": task_id, "outcome": "kept"}, {"id": 99999, "outcome": "kept"}],
        },
    )
    assert stranger.status_code == 422 and "99999" in stranger.json()["detail"][0]["msg"]
    case.refresh_from_db()
    assert not case.is_closed  # nothing half-written
    closed = api.post_json(
        f"/api/v1/cases/{case.pk}/close",
        {**body, "promises": [{"id": task_id, "outcome": "broken", "note": "fix slipped a week"}]},
    )
    assert closed.status_code == 200, closed.content
    task = next(t for t in closed.json()["tasks"] if t["id"] == task_id)
    assert task["outcome"] == "broken" and task["outcome_note"] == "fix slipped a week"
    assert any("promise broken" in a["text"] for a in closed.json()["activities"])


def test_it_asks_the_same_on_the_case_page(api: ApiClient, case: FollowUpCase, agent: User) -> None:
    promise(api, case, START + timedelta(days=2))
    task = Task.objects.get(case=case, kind="commitment")
    page = Client()
    page.force_login(agent)
    html = page.get(f"/cases/{case.pk}/").content.decode()
    assert "What became of each promise still open?" in html
    base = {"action": "close", "resolution": "resolved", "reason": "fixed", "note": "done"}
    refused = page.post(f"/cases/{case.pk}/act", base, follow=True)
    assert "still open" in refused.content.decode()
    page.post(f"/cases/{case.pk}/act", {**base, f"promise-{task.pk}": "kept"})
    task.refresh_from_db()
    case.refresh_from_db()
    assert case.is_closed and task.outcome == "kept"


def test_it_refuses_a_promise_due_in_the_past_or_unreadable(
    api: ApiClient, case: FollowUpCase
) -> None:
    for due in ("2020-01-01T00:00:00Z", "next tuesday", ""):
        got = api.post_json(
            f"/api/v1/cases/{case.pk}/commitments", {"promise": "Call back", "due_at": due}
        )
        assert got.status_code == 422, due
        assert got.json()["detail"][0]["loc"][-1] == "due_at"
