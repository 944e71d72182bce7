"""One account health score, 0–100, with its reasons (docs/insights.md, "Account health").

A transparent weighting: every account starts at 100 and each sign of churn takes
points off, each shown with why ("−15: a payment failed on 3 Nov"). The weights are
WEIGHTS below, written down before any churn history was looked at. Fitting them on an
install's own churn history comes once it has enough churned accounts (issue 22).

What counts, for a live account, now:
- NPS level: the mean of each of its people's latest answer in the last 180 days
  (below 7: −25; from 7 to below 9: −8), or no answer in a year (−5);
- a falling score (the revenue-at-risk signal): −15;
- an open detractor case: −10, or −20 when the case is urgent or the customer is
  typed as leaving;
- a silent detractor: −10; a silent passive: −5;
- billing in the last 90 days (docs/integrations.md): a scheduled cancellation −30, a
  downgrade −15, a failed payment −15, a disputed payment −15;
- product usage, for an account with users matched to it (docs/integrations.md): no
  one active for 14 days −20; use (active user-days: a person on a day) down 40% or
  more on the 30 days before (from at least 4) −15; active people down 40% or more
  (from at least 3) −10; under half its paid seats active in 30 days −10;
- support tickets (docs/integrations.md): 3 or more open −10; an urgent or high ticket
  open for more than a week −10; a poor satisfaction rating (1 or 2 of 5) in 90 days
  −10; a quarter or more of 4+ tickets in 90 days reopened −5.
Scores below 0 are 0. Each account's figures come from one annotated query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Avg, Exists, Max, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from closeloop.integrations import tickets, usage
from closeloop.integrations.models import AccountSignal
from closeloop.integrations.tickets import Load
from closeloop.integrations.usage import Usage
from closeloop.loop.models import FollowUpCase, open_at
from closeloop.surveys.models import Account, Response

from . import risk
from .models import HealthBacktest

NPS_WINDOW = timedelta(days=180)
QUIET_WINDOW = timedelta(days=365)
WEIGHTS = {
    "detractor_level": -25,
    "passive_level": -8,
    "no_answer": -5,
    "falling": -15,
    "open_case": -10,
    "urgent_case": -20,
    "silent": -10,
    "silent_passive": -5,
    "cancel_scheduled": -30,
    "downgrade": -15,
    "payment_failed": -15,
    "dispute": -15,
    "inactive": -20,
    "usage_down": -15,
    "people_down": -10,
    "seats_unused": -10,
    "tickets_open": -10,
    "ticket_stuck": -10,
    "poor_support_rating": -10,
    "reopens": -5,
}
IDLE = timedelta(days=14)
DECLINE = -0.4  # a 40% fall on the 30 days before
WEIGHT_LABELS = {
    "detractor_level": "its people's latest answers average below 7",
    "passive_level": "they average 7 to below 9",
    "no_answer": "no survey answer in a year",
    "falling": "a falling score",
    "open_case": "an open detractor case",
    "urgent_case": "an open case that is urgent or leaving (instead)",
    "silent": "a silent detractor",
    "silent_passive": "a silent passive",
    "cancel_scheduled": "a cancellation scheduled (90 days)",
    "downgrade": "a downgrade (90 days)",
    "payment_failed": "a failed payment (90 days)",
    "dispute": "a disputed payment (90 days)",
    "inactive": "no one used the product in 14 days",
    "usage_down": "use (active user-days) down 40% or more in 30 days",
    "people_down": "active people down 40% or more in 30 days",
    "seats_unused": "under half the paid seats active in 30 days",
    "tickets_open": "3 or more support tickets open",
    "ticket_stuck": "an urgent or high ticket open over a week",
    "poor_support_rating": "a poor support rating (90 days)",
    "reopens": "a quarter of its tickets reopened (90 days)",
}
BANDS = ((70, "healthy"), (40, "watch"), (0, "at risk"))
BAND_NAMES = [name for _, name in BANDS]
# Each band's scores as people read them: "70–100", "40–69", "0–39".
BAND_RANGES = {
    name: f"{floor}–{(BANDS[i - 1][0] - 1) if i else 100}" for i, (floor, name) in enumerate(BANDS)
}


@dataclass
class Health:
    account: Account
    score: int = 100
    reasons: list[tuple[int, str]] = field(default_factory=list)
    signals: list[str] = field(default_factory=list)  # the WEIGHTS keys that fired
    weights: dict[str, int] = field(default_factory=lambda: WEIGHTS)

    def take(self, signal: str, why: str) -> None:
        """The signal fired: take its points (a fitted weight of 0 takes none)."""
        points = self.weights[signal]
        self.signals.append(signal)
        if points:
            self.reasons.append((points, why))
            self.score = max(0, self.score + points)

    @property
    def band(self) -> str:
        return next(name for floor, name in BANDS if self.score >= floor)


def _latest_scores(now: datetime) -> Subquery:
    """The mean of the account's people's latest answer each, within NPS_WINDOW."""
    latest = (
        Response.objects.filter(person_id=OuterRef("person_id"), created_at__lte=now)
        .order_by("-created_at", "-id")
        .values("id")[:1]
    )
    return Subquery(
        Response.objects.filter(
            account_id=OuterRef("pk"),
            created_at__gte=now - NPS_WINDOW,
            created_at__lte=now,
            id=Subquery(latest),
        )
        .order_by()
        .values("account_id")
        .annotate(mean=Avg("score"))
        .values("mean")[:1]
    )


def annotated(qs: QuerySet[Account], now: datetime | None = None) -> QuerySet[Account]:
    """Accounts with every figure the score reads, in one query."""
    now = now or timezone.now()
    since = now - risk.BILLING_WINDOW

    def billing(kind: str) -> Subquery:
        return Subquery(
            AccountSignal.objects.filter(account_id=OuterRef("pk"), kind=kind, at__gt=since)
            .filter(at__lte=now)
            .order_by()
            .values("account_id")
            .annotate(last=Max("at"))
            .values("last")[:1]
        )

    urgent = FollowUpCase.objects.filter(
        open_at(now), account_id=OuterRef("pk"), loop=FollowUpCase.Loop.DETRACTOR
    ).filter(Q(urgency=FollowUpCase.Urgency.HIGH) | Q(detractor_type="leaving"))
    return risk.with_signals(qs, now).annotate(
        nps_mean=_latest_scores(now),
        answered_lately=Exists(
            Response.objects.filter(
                account_id=OuterRef("pk"), created_at__gte=now - QUIET_WINDOW, created_at__lte=now
            )
        ),
        urgent_case=Exists(urgent),
        **{f"last_{kind}": billing(kind) for kind in risk.BILLING_KINDS},
    )


def _usage(h: Health, found: Usage, now: datetime) -> None:
    if found.last_active is None or found.last_active < now - IDLE:
        since = f"since {found.last_active:%-d %b %Y}" if found.last_active else "in 180 days"
        h.take("inactive", f"no one has used the product {since}")
    change = found.use_change
    if change is not None and found.user_days_before >= 4 and change <= DECLINE:
        h.take(
            "usage_down",
            f"use down {-change:.0%} in 30 days "
            f"(active user-days {found.user_days_before} → {found.user_days})",
        )
    change = found.people_change
    if change is not None and found.active_people_before >= 3 and change <= DECLINE:
        h.take(
            "people_down",
            f"active people down {-change:.0%} in 30 days "
            f"({found.active_people_before} → {found.active_people})",
        )
    if found.seats and found.seat_use is not None and found.seat_use < 0.5:
        h.take(
            "seats_unused",
            f"{found.active_people} of {found.seats} paid seats active in 30 days",
        )


def _tickets(h: Health, load: Load, now: datetime) -> None:
    if load.open >= 3 and load.oldest_open is not None:
        days = (now - load.oldest_open).days
        h.take("tickets_open", f"{load.open} support tickets open, the oldest {days} days")
    if load.stuck:
        many = (
            f"{load.stuck} urgent or high tickets" if load.stuck > 1 else "an urgent or high ticket"
        )
        h.take("ticket_stuck", f"{many} open for over a week")
    if load.poor_ratings:
        h.take(
            "poor_support_rating",
            f"{load.poor_ratings} of {load.rated} support ratings poor in 90 days",
        )
    rate = load.reopen_rate
    if rate is not None and load.recent >= 4 and rate >= 0.25:
        h.take("reopens", f"{load.reopened} of {load.recent} tickets reopened in 90 days")


def score(
    account: Any,
    found: Usage | None,
    load: Load | None,
    now: datetime,
    weights: dict[str, int] = WEIGHTS,
) -> Health:
    """The score of one account from `annotated` (with its usage and ticket load, when
    it has them), with its reasons (largest first)."""
    h = Health(account, weights=weights)
    mean = account.nps_mean
    if mean is not None and mean < 7:
        h.take("detractor_level", f"its people's latest answers average {mean:.1f} (detractor)")
    elif mean is not None and mean < 9:
        h.take("passive_level", f"its people's latest answers average {mean:.1f} (passive)")
    elif mean is None and not account.answered_lately:
        h.take("no_answer", "no survey answer in a year")
    if account.falling:
        h.take("falling", "its mean score fell a point or more in 90 days")
    if account.urgent_case:
        h.take("urgent_case", "an open detractor case that is urgent or leaving")
    elif account.open_case:
        h.take("open_case", "an open detractor case")
    if account.silent:
        h.take("silent", "a detractor who stopped answering surveys")
    if account.silent_passive:
        h.take("silent_passive", "a passive who stopped answering surveys")
    for kind in risk.BILLING_KINDS:
        last = getattr(account, f"last_{kind}")
        if last is not None:
            label = AccountSignal.Kind(kind).label.lower()
            h.take(kind, f"{label} on {last:%-d %b %Y}")
    if found is not None:
        _usage(h, found, now)
    if load is not None:
        _tickets(h, load, now)
    h.reasons.sort(key=lambda r: r[0])
    return h


def live_at(moment: datetime) -> Q:
    """Accounts that were customers at `moment`: not churned by then, and customers
    since before it when that is known."""
    return (Q(churned_at__isnull=True) | Q(churned_at__gt=moment)) & (
        Q(customer_since__isnull=True) | Q(customer_since__lte=moment.date())
    )


def in_use() -> tuple[dict[str, int], HealthBacktest | None]:
    """The weights that score accounts, and the backtest that fitted them (None: the
    written WEIGHTS). A signal added after the fit keeps its written weight."""
    last = HealthBacktest.objects.filter(finished_at__isnull=False).order_by("-finished_at").first()
    if last is None or not last.in_use or not last.weights:
        return WEIGHTS, None
    return {key: int(last.weights.get(key, points)) for key, points in WEIGHTS.items()}, last


def scores(
    qs: QuerySet[Account] | None = None,
    now: datetime | None = None,
    weights: dict[str, int] | None = None,
) -> list[Health]:
    """Every live account's health, the least healthy first (then the largest ARR), with
    the weights in use unless `weights` are given."""
    now = now or timezone.now()
    weights = weights if weights is not None else in_use()[0]
    live = (qs if qs is not None else Account.objects.all()).filter(live_at(now))
    used = usage.by_account(None if qs is None else live, now)
    loads = tickets.by_account(None if qs is None else live, now)
    found = [
        score(a, used.get(a.pk), loads.get(a.pk), now, weights)
        for a in annotated(live.select_related("owner"), now)
    ]
    return sorted(found, key=lambda h: (h.score, -h.account.arr_cents, h.account.pk))


def by_band(found: list[Health]) -> list[tuple[str, int, int]]:
    """(band, accounts, ARR in cents) for each band, healthiest first."""
    return [
        (
            name,
            sum(1 for h in found if h.band == name),
            sum(h.account.arr_cents for h in found if h.band == name),
        )
        for name in BAND_NAMES
    ]


def of(account: Account, now: datetime | None = None) -> Health | None:
    """One account's health; None for a churned account."""
    found = scores(Account.objects.filter(pk=account.pk), now)
    return found[0] if found else None
