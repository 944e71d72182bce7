"""Routing (owner, rules, round-robin, queue) and deadlines (business hours, escalation)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.utils import timezone

from closeloop.delivery.models import Delivery
from closeloop.loop import actions
from closeloop.loop.models import Activity, FollowUpCase, Notification, RoutingRule
from closeloop.loop.policy import BusinessHours
from closeloop.loop.sla import deadline, handle_one_escalation
from closeloop.surveys.models import Account
from closeloop.team.models import Membership, Role, Team, User

from .conftest import ApiClient, answer, drain, open_case

pytestmark = pytest.mark.django_db


def from_account(name: str, tier: str, email: str, score: int = 3) -> dict[str, object]:
    account = {"external_id": f"acc-{name}", "name": name, "tier": tier}
    return answer(score=score, person={"email": email, "account": account})


@pytest.fixture
def support(db: object) -> Team:
    team = Team.objects.create(name="Support")
    for name in ("sam", "kim"):
        user = User.objects.create_user(name, f"{name}@example.com", "pw", role=Role.AGENT)
        Membership.objects.create(team=team, user=user)
    RoutingRule.objects.create(name="SMB to support", tiers=["smb"], team=team)
    return team


def test_it_routes_by_rule_round_robin_when_the_account_has_no_owner(
    api: ApiClient, support: Team
) -> None:
    for i in range(4):
        api.post_json("/api/v1/responses", from_account(f"co{i}", "smb", f"p{i}@example.com"))
    owners = [c.owner.username for c in FollowUpCase.objects.order_by("id")]  # type: ignore[union-attr]
    assert sorted(owners[:2]) == ["kim", "sam"] and owners[:2] == owners[2:]
    assert all(c.team == support for c in FollowUpCase.objects.all())
    assert "SMB to support" in FollowUpCase.objects.first().routed_by  # type: ignore[union-attr]


def test_it_matches_rules_on_a_property_value(api: ApiClient, support: Team) -> None:
    emea = Team.objects.create(name="EMEA")
    eve = User.objects.create_user("eve", "eve@example.com", "pw")
    Membership.objects.create(team=emea, user=eve)
    RoutingRule.objects.create(
        name="EMEA", position=0, property_key="region", property_value="emea", team=emea
    )
    RoutingRule.objects.filter(name="SMB to support").update(position=1)
    body = answer(score=2, person={"email": "x@example.com", "properties": {"region": "emea"}})
    api.post_json("/api/v1/responses", body)
    assert FollowUpCase.objects.get().owner == eve


def test_it_puts_a_case_nobody_matches_in_the_unassigned_queue_and_tells_managers(
    api: ApiClient, manager: User
) -> None:
    api.post_json("/api/v1/responses", from_account("Lone", "mid-market", "p@example.com"))
    case = FollowUpCase.objects.get()
    assert case.owner is None and "unassigned queue" in case.routed_by
    assert Notification.objects.get(user=manager).text.startswith("Unassigned:")


def test_it_logs_a_reassignment_and_alerts_the_new_owner(
    api: ApiClient, enterprise: Account, manager: User, agent: User
) -> None:
    open_case(api, enterprise, 4, "p@example.com")
    case = FollowUpCase.objects.get()
    actions.assign(case, manager, actor=agent, why="on holiday")
    log = case.activities.filter(kind=Activity.Kind.ASSIGNED).last()
    assert (
        log is not None and "Maria" in log.text and "was Alex" in log.text and "holiday" in log.text
    )
    assert Delivery.objects.filter(to=manager.email, purpose="owner_alert").exists()


def test_it_counts_only_business_hours_in_the_owners_time_zone() -> None:
    hours = BusinessHours(enabled=True, start=time(9), end=time(17), weekdays=[0, 1, 2, 3, 4])
    friday_4pm_berlin = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # 16:00 in Berlin
    due = deadline(friday_4pm_berlin, 24, hours, "Europe/Berlin")
    # 1h on Friday, 8h Mon, 8h Tue, 7h Wed → Wednesday 16:00 Berlin = 15:00 UTC.
    assert due == datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
    assert deadline(friday_4pm_berlin, 24, BusinessHours(), "Europe/Berlin") == (
        friday_4pm_berlin + timedelta(hours=24)
    )


def test_it_escalates_an_untouched_case_to_the_managers_at_the_deadline_once(
    api: ApiClient, enterprise: Account, manager: User, admin_user: User
) -> None:
    open_case(api, enterprise, 4, "p@example.com")
    case = FollowUpCase.objects.get()
    assert handle_one_escalation() is False
    with time_machine.travel(case.due_at + timedelta(minutes=1), tick=False):
        assert case.is_overdue is True
        assert handle_one_escalation() is True
        assert handle_one_escalation() is False
    case.refresh_from_db()
    assert case.escalation_level == 1
    assert case.next_escalation_at == case.escalated_at + timedelta(hours=24)  # type: ignore[operator]
    assert Delivery.objects.filter(to=manager.email, purpose="escalation").count() == 1
    assert Notification.objects.filter(user=manager, text__startswith="Escalated").exists()
    assert "to Maria" in case.activities.get(kind=Activity.Kind.ESCALATED).text
    # Nobody acted: a day later it goes one level up (Maria has no manager: the admins).
    with time_machine.travel(case.next_escalation_at + timedelta(minutes=1), tick=False):  # type: ignore[operator]
        assert handle_one_escalation() is True
    case.refresh_from_db()
    assert case.escalation_level == 2 and case.next_escalation_at is None
    assert Delivery.objects.filter(to=admin_user.email, purpose="escalation").count() == 1


def test_it_does_not_escalate_a_case_touched_in_time(
    api: ApiClient, enterprise: Account, manager: User, agent: User
) -> None:
    open_case(api, enterprise, 4, "p@example.com")
    case = FollowUpCase.objects.get()
    actions.log_call(case, "talked", "Walked through the export problem", agent)
    with time_machine.travel(case.due_at + timedelta(hours=1), tick=False):  # type: ignore[operator]
        assert handle_one_escalation() is False
        drain()
    case.refresh_from_db()
    assert case.status == "in_conversation" and case.escalation_level == 0
    assert not Delivery.objects.filter(purpose="escalation").exists()


def test_it_escalates_through_the_worker_loop_and_sends_the_mail(
    api: ApiClient, enterprise: Account, manager: User, smtp: object
) -> None:
    open_case(api, enterprise, 4, "p@example.com")
    case = FollowUpCase.objects.get()
    drain()
    with time_machine.travel(case.due_at + timedelta(seconds=5), tick=False):  # type: ignore[operator]
        drain()
    inbox = smtp.inbox  # type: ignore[attr-defined]
    subjects = [str(m["Subject"]).strip() for m in inbox.to(manager.email)]
    assert len(subjects) == 1 and subjects[0].startswith("Escalated:")
    assert timezone.now() < case.due_at  # type: ignore[operator]
