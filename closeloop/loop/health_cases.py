"""A case opened by a falling account health score, not by an answer (docs/insights.md,
"Health cases"). `insights.watch` decides which accounts fell; this opens each one's
case as triage opens an answer's: routed (the account's owner first), with a deadline
and escalation, a task when the action is a call, the owner alerted and the channels
told (`case.created`).

The case's customer is the account's champion (`exits.champion_of`); an account with
no one to reach gets no case. The case has no answer and no score: `health` holds the
fall (score, was, days and the reasons), shown on the case page and in the alert.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from closeloop.surveys.models import Account

from . import batch, notify, priority, routing, sla
from .exits import champion_of
from .models import Activity, FollowUpCase, RoutingRule, Task, TriagePolicy
from .policy import Action, Value


def open_for(
    account: Account,
    score: int,
    was: int,
    reasons: list[tuple[int, str]],
    policy: TriagePolicy,
    now: datetime,
) -> FollowUpCase | None:
    """Open the account's health case; None when it has no one to reach."""
    person = champion_of(account.pk)
    if person is None:
        return None
    config = policy.rules
    rule = config.health_cases
    action = rule.action
    decided = routing.route(account, person, list(RoutingRule.objects.filter(active=True)))
    due_at = sla.deadline(
        now,
        rule.sla_hours,
        config.business_hours,
        decided.owner.time_zone if decided.owner else None,
    )
    with transaction.atomic(), batch.collecting():
        case = FollowUpCase.objects.create(
            loop=FollowUpCase.Loop.HEALTH,
            person=person,
            account=account,
            high_value=config.value_of(account.tier, account.arr_cents) == Value.HIGH,
            action=action.value,
            policy=policy,
            rule=f"health {was} → {score} in {rule.days} days",
            owner=decided.owner,
            team=decided.team,
            routed_by=decided.why,
            due_at=due_at,
            next_escalation_at=due_at,
            health={
                "score": score,
                "was": was,
                "days": rule.days,
                "reasons": [[points, why] for points, why in reasons],
            },
            priority=priority.priority(
                account.arr_cents,
                None,
                None,
                priority.last_active(person.properties, account.properties),
                now,
                now,
            ),
            created_at=now,
            updated_at=now,
            priority_refreshed_at=now,
        )
        case.log(
            Activity.Kind.CREATED,
            f"health {was} → {score} in {rule.days} days → {action.label} "
            f"(policy v{policy.version}); due {due_at:%Y-%m-%d %H:%M} UTC",
        )
        case.log(
            Activity.Kind.ASSIGNED,
            f"routed to {case.owner.display_name if case.owner else 'the unassigned queue'}"
            f" ({case.routed_by})",
            owner=case.owner_id,
        )
        if action == Action.CALL:
            batch.add(
                Task(
                    case=case,
                    kind=Task.Kind.CALL,
                    title=f"Call {person.name or person.email} at {account.name}: "
                    f"health {was} → {score}",
                    owner=case.owner,
                    due_at=due_at,
                )
            )
        notify.owner_alert(case)
        notify.case_event(case, "case.created")
    return case
