"""Revenue at risk: the ARR of live accounts showing a churn signal.

An account is at risk when any of these holds (docs/domain.md §7–8):
- it has an open detractor case;
- one of its people is a silent detractor: their last answer was 0–6 and they
  have ignored their last two invitations (`surveys.reach.silent_people`);
- one of its people is a silent passive: the same, with a last answer of 7–8;
- its score is falling: the mean of its answers in the last 90 days is at least
  one point below the mean of the 90 days before;
- its billing warns: a failed payment, a downgrade, a scheduled cancellation or a
  disputed payment in the last 90 days (docs/integrations.md).
Each account counts once in a total, whatever the number of its signals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from django.db.models import Avg, Count, Exists, F, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from closeloop.integrations.models import AccountSignal
from closeloop.loop.models import FollowUpCase, open_at
from closeloop.surveys.models import Account, Response
from closeloop.surveys.reach import silent_people

from . import top_themes

FALLING_WINDOW = timedelta(days=90)
FALLING_DROP = 1.0


class Signal(StrEnum):
    OPEN_CASE = "open_case"
    SILENT = "silent"
    SILENT_PASSIVE = "silent_passive"
    FALLING = "falling"
    BILLING = "billing"


SIGNAL_LABELS = {
    Signal.OPEN_CASE: "open detractor case",
    Signal.SILENT: "silent detractor",
    Signal.SILENT_PASSIVE: "silent passive",
    Signal.FALLING: "falling score",
    Signal.BILLING: "billing warning",
}
SIGNAL_HELP = {
    Signal.OPEN_CASE: "a detractor case not yet closed",
    Signal.SILENT: "last answer 0–6, last two invitations ignored",
    Signal.SILENT_PASSIVE: "last answer 7–8, last two invitations ignored",
    Signal.FALLING: "mean score down ≥ 1 point, last 90 days vs the 90 before",
    Signal.BILLING: "failed payment, downgrade, cancellation or dispute in 90 days",
}
BILLING_WINDOW = timedelta(days=90)
BILLING_KINDS = [
    AccountSignal.Kind.PAYMENT_FAILED,
    AccountSignal.Kind.DOWNGRADE,
    AccountSignal.Kind.CANCEL_SCHEDULED,
    AccountSignal.Kind.DISPUTE,
]


def _falling(now: datetime) -> QuerySet[Any, Any]:
    """Accounts (as `account_id` rows) whose recent mean score fell by FALLING_DROP or more."""
    middle = now - FALLING_WINDOW
    return (
        Response.objects.filter(
            account_id=OuterRef("pk"), created_at__gte=middle - FALLING_WINDOW, created_at__lt=now
        )
        .order_by()
        .values("account_id")
        .annotate(
            recent=Avg("score", filter=Q(created_at__gte=middle)),
            before=Avg("score", filter=Q(created_at__lt=middle)),
        )
        .filter(recent__lte=F("before") - FALLING_DROP)
    )


def with_signals(qs: QuerySet[Account], now: datetime | None = None) -> QuerySet[Account]:
    """Accounts annotated with one boolean per Signal (`open_case`, `silent`, …)."""
    now = now or timezone.now()
    open_cases = FollowUpCase.objects.filter(
        open_at(now), account_id=OuterRef("pk"), loop=FollowUpCase.Loop.DETRACTOR
    )
    # `last_score` is an annotation of silent_people(), unknown to the type checker.
    silent = silent_people(now).filter(account_id=OuterRef("pk"))
    billing = AccountSignal.objects.filter(
        account_id=OuterRef("pk"), kind__in=BILLING_KINDS, at__gt=now - BILLING_WINDOW, at__lte=now
    )
    return qs.annotate(
        open_case=Exists(open_cases),
        silent=Exists(silent.filter(**{"last_score__lte": 6})),
        silent_passive=Exists(silent.filter(**{"last_score__in": [7, 8]})),
        falling=Exists(_falling(now)),
        billing=Exists(billing),
    )


def at_risk(now: datetime | None = None) -> QuerySet[Account]:
    """Live (not churned) accounts with at least one signal, annotated with each."""
    any_signal = Q()
    for signal in Signal:
        any_signal |= Q(**{signal.value: True})
    return with_signals(Account.objects.filter(churned_at__isnull=True), now).filter(any_signal)


def signal_filter(signal: Signal) -> Q:
    """Accounts (from `with_signals`) showing one signal."""
    return Q(**{signal.value: True})


@dataclass(frozen=True)
class RiskTotal:
    """ARR and number of accounts of one group of at-risk accounts."""

    key: Any
    accounts: int
    arr_cents: int


def _totals(qs: QuerySet[Account], field: str) -> list[RiskTotal]:
    rows = (
        qs.order_by()
        .values(field)
        .annotate(n=Count("id"), arr=Sum("arr_cents"))
        .order_by("-arr", field)
    )
    return [RiskTotal(row[field], row["n"], int(row["arr"] or 0)) for row in rows]


def total_at_risk(now: datetime | None = None) -> RiskTotal:
    """ARR and number of the accounts at risk, each once, without the breakdowns."""
    row = at_risk(now).aggregate(n=Count("id"), arr=Sum("arr_cents"))
    return RiskTotal(None, row["n"], int(row["arr"] or 0))


@dataclass(frozen=True)
class RevenueAtRisk:
    total: RiskTotal
    by_signal: dict[Signal, RiskTotal]
    by_owner: list[RiskTotal]
    by_tier: list[RiskTotal]
    by_theme: list[top_themes.ThemeFigure]


def revenue_at_risk(now: datetime | None = None) -> RevenueAtRisk:
    """Every at-risk total: overall, per signal, owner, tier, and theme of its detractors.

    By theme: the tags on the at-risk accounts' detractor answers of the last 180
    days; an account counts once under each theme its people named.
    """
    now = now or timezone.now()
    accounts = at_risk(now)
    row = accounts.aggregate(
        n=Count("id"),
        arr=Sum("arr_cents"),
        **{f"n_{s}": Count("id", filter=signal_filter(s)) for s in Signal},
        **{f"arr_{s}": Sum("arr_cents", filter=signal_filter(s)) for s in Signal},
    )
    detractor_answers = Response.objects.filter(
        account__in=accounts.values("pk"),
        score__lte=6,
        created_at__gte=now - 2 * FALLING_WINDOW,
    )
    return RevenueAtRisk(
        total=RiskTotal(None, row["n"], int(row["arr"] or 0)),
        by_signal={s: RiskTotal(s, row[f"n_{s}"], int(row[f"arr_{s}"] or 0)) for s in Signal},
        by_owner=_totals(accounts, "owner_id"),
        by_tier=_totals(accounts, "tier"),
        by_theme=sorted(top_themes.theme_figures(detractor_answers), key=lambda t: -t.arr_cents),
    )
