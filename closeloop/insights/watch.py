"""Health cases: once a day, an account whose health fell opens a case for its owner
(docs/insights.md, "Health cases").

The triage policy's `health_cases` says when: the score fell by at least `fall_points`
over `days` (today's score against the score as it stood `days` ago, both with the
weights in use) and is now below `below`. An account gets no health case while it has
an open detractor or health case, nor within `quiet_days` of its last health case.
`loop.health_cases.open_for` opens the case.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from closeloop.loop import health_cases
from closeloop.loop.models import FollowUpCase, TriagePolicy, open_filter

from . import health
from .models import HealthWatchRun


def falling(now: datetime, policy: TriagePolicy) -> tuple[int, list[tuple[health.Health, int]]]:
    """(live accounts scored, [(today's health, the score `days` ago)] of those that fell)."""
    rule = policy.rules.health_cases
    weights, _ = health.in_use()
    today = health.scores(now=now, weights=weights)
    then = {
        h.account.pk: h.score
        for h in health.scores(now=now - timedelta(days=rule.days), weights=weights)
    }
    fell = [
        (h, then[h.account.pk])
        for h in today
        if h.account.pk in then
        and h.score < rule.below
        and then[h.account.pk] - h.score >= rule.fall_points
    ]
    return len(today), fell


def handle_health_watch() -> bool:
    """Look once a day (the day's HealthWatchRun row is the claim among workers)."""
    policy = TriagePolicy.current()
    rule = policy.rules.health_cases
    if not rule.enabled:
        return False
    now = timezone.now()
    try:
        with transaction.atomic():
            run = HealthWatchRun.objects.create(day=now.date())
    except IntegrityError:
        return False
    scored, fell = falling(now, policy)
    busy = set(
        FollowUpCase.objects.filter(
            Q(open_filter(), loop__in=[FollowUpCase.Loop.DETRACTOR, FollowUpCase.Loop.HEALTH])
            | Q(
                loop=FollowUpCase.Loop.HEALTH, created_at__gt=now - timedelta(days=rule.quiet_days)
            ),
            account_id__in=[h.account.pk for h, _ in fell],
        ).values_list("account_id", flat=True)
    )
    opened = 0
    for found, was in fell:
        if found.account.pk in busy:
            continue
        case = health_cases.open_for(found.account, found.score, was, found.reasons, policy, now)
        opened += case is not None
    HealthWatchRun.objects.filter(pk=run.pk).update(accounts=scored, fell=len(fell), opened=opened)
    return True
