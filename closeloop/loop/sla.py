"""Deadlines and escalation: when a case is due, and what the worker does when it is missed.

A deadline is a column (`due_at`, and `next_escalation_at` for the worker),
never a timer. At the deadline with no first touch the case escalates to the
owner's manager; after a further `second_level_after_hours`, to the next level.
A promise made on a case (a commitment task) is chased the same way: its owner is
reminded before it is due, and an overdue one escalates like a missed first touch.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from closeloop.core import claims
from closeloop.team.models import User

from . import notify, priority
from .models import Activity, FollowUpCase, Task, open_filter
from .policy import BusinessHours

log = logging.getLogger("closeloop.loop")


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or settings.ORG_TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def deadline(
    start: datetime, hours: int, hours_of_work: BusinessHours, tz_name: str | None
) -> datetime:
    """`hours` after `start`, counting only business hours in `tz_name` when they are on."""
    if not hours_of_work.enabled:
        return start + timedelta(hours=hours)
    tz = zone(tz_name)
    remaining = timedelta(hours=hours)
    cursor = start.astimezone(tz)
    # A working day is at most 24h, so this ends within hours/… days; the bound is a safety net.
    for _ in range(3700):
        day_open = cursor.replace(
            hour=hours_of_work.start.hour,
            minute=hours_of_work.start.minute,
            second=0,
            microsecond=0,
        )
        day_close = cursor.replace(
            hour=hours_of_work.end.hour, minute=hours_of_work.end.minute, second=0, microsecond=0
        )
        if cursor.weekday() in hours_of_work.weekdays and cursor < day_close:
            begin = max(cursor, day_open)
            available = day_close - begin
            if remaining <= available:
                return (begin + remaining).astimezone(UTC)
            remaining -= available
        cursor = (cursor + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return start + timedelta(hours=hours)


def escalation_recipients(case: FollowUpCase, level: int, owner: User | None = None) -> list[User]:
    """Level 1: the owner's manager; level 2: that manager's manager; else the admins."""
    person = owner or case.owner
    for _ in range(level):
        person = person.manager if person is not None else None
    if person is not None and person.is_active:
        return [person]
    return User.admins()


def escalate(case: FollowUpCase, now: datetime) -> None:
    """Record the escalation the worker just claimed and tell the people it goes to."""
    recipients = escalation_recipients(case, case.escalation_level)
    names = ", ".join(u.display_name for u in recipients) or "nobody (no admins exist)"
    case.log(
        Activity.Kind.ESCALATED,
        f"no first touch by {case.due_at:%Y-%m-%d %H:%M} UTC: escalated (level "
        f"{case.escalation_level}) to {names}",
        level=case.escalation_level,
        to=[u.pk for u in recipients],
    )
    notify.escalation(case, recipients)


def handle_one_escalation() -> bool:
    """Worker step: escalate one case whose escalation time has passed without a first touch."""
    now = timezone.now()
    with transaction.atomic():
        due = FollowUpCase.objects.filter(
            open_filter(), next_escalation_at__lte=now, first_touch_at__isnull=True
        ).order_by("next_escalation_at")
        # Taken by clearing its escalation time; the next one is set below, once known.
        taken = claims.claim(due, escalated_at=now, next_escalation_at=None, updated_at=now)
        if not taken:
            return False
        case = FollowUpCase.objects.select_related(
            "owner__manager__manager", "person", "account", "response", "policy"
        ).get(pk=taken[0])
        pk, level = case.pk, case.escalation_level
        second_level = timedelta(hours=case.policy.rules.escalation.second_level_after_hours)
        case.escalation_level = level + 1
        case.next_escalation_at = now + second_level if level == 0 else None
        FollowUpCase.objects.filter(pk=pk).update(
            escalation_level=case.escalation_level, next_escalation_at=case.next_escalation_at
        )
        escalate(case, now)
    log.info("case %s escalated to level %s", pk, level + 1)
    return True


def handle_promise_reminder() -> bool:
    """Worker step: remind the owner of one promise coming due."""
    now = timezone.now()
    with transaction.atomic():
        due = Task.objects.filter(
            kind=Task.Kind.COMMITMENT,
            done_at__isnull=True,
            reminded_at__isnull=True,
            remind_at__lte=now,
        ).order_by("remind_at")
        taken = claims.claim(due, reminded_at=now)
        if not taken:
            return False
        task = Task.objects.select_related("owner", "case__owner", "case__person").get(pk=taken[0])
        notify.promise_reminder(task)
    return True


def handle_promise_escalation() -> bool:
    """Worker step: escalate one overdue promise, as a missed first touch escalates."""
    now = timezone.now()
    with transaction.atomic():
        due = Task.objects.filter(
            kind=Task.Kind.COMMITMENT, done_at__isnull=True, next_escalation_at__lte=now
        ).order_by("next_escalation_at")
        taken = claims.claim(due, next_escalation_at=None)
        if not taken:
            return False
        task = Task.objects.select_related(
            "owner__manager__manager", "case__owner__manager__manager", "case__policy"
        ).get(pk=taken[0])
        case = task.case
        level = task.escalation_level + 1
        second = timedelta(hours=case.policy.rules.escalation.second_level_after_hours)
        Task.objects.filter(pk=task.pk).update(
            escalation_level=level, next_escalation_at=now + second if level == 1 else None
        )
        recipients = escalation_recipients(case, level, task.owner)
        names = ", ".join(u.display_name for u in recipients) or "nobody (no admins exist)"
        case.log(
            Activity.Kind.ESCALATED,
            f"promise overdue since {task.due_at:%Y-%m-%d %H:%M} UTC ({task.title}): escalated "
            f"(level {level}) to {names}",
            level=level,
            task=task.pk,
            to=[u.pk for u in recipients],
        )
        notify.promise_escalation(task, recipients)
    return True


PRIORITY_REFRESH = timedelta(hours=1)
PRIORITY_BATCH = 500


def handle_priority_refresh() -> bool:
    """Worker step: recompute the priority of open cases not refreshed in the last hour."""
    now = timezone.now()
    stale = list(
        FollowUpCase.objects.filter(open_filter(), priority_refreshed_at__lt=now - PRIORITY_REFRESH)
        .select_related("account", "person", "response")
        .order_by("priority_refreshed_at")[:PRIORITY_BATCH]
    )
    if not stale:
        return False
    for case in stale:
        case.priority = compute_priority(case, now)
        case.priority_refreshed_at = now
    FollowUpCase.objects.bulk_update(stale, ["priority", "priority_refreshed_at"])
    return True


def compute_priority(case: FollowUpCase, now: datetime | None = None) -> float:
    account_props = case.account.properties if case.account else {}
    return priority.priority(
        case.arr_cents,
        case.score,
        case.previous_score,
        priority.last_active(case.person.properties, account_props),
        case.response.created_at if case.response is not None else case.created_at,
        now,
        urgent=case.urgency == FollowUpCase.Urgency.HIGH,
    )
