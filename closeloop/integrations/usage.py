"""What an account's product usage says (docs/integrations.md, "Product usage"), from the
per-user days Segment's events roll up into (`segment.py`).

For each account with users matched to it: when it was last active (within HORIZON),
the days anyone used the product in the last 30 days and in the 30 before, the people
who did in each, its use (active user-days: one per person per day with activity),
and the seats it pays for (the group's `seats` trait, or the account's `seats`
property from the API or CSV). Each figure and its trend come from one grouped
query over the last 60 days, for any number of accounts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from closeloop.surveys.models import Account

from .models import UsageDay, UsageIdentity

WINDOW = timedelta(days=30)
HORIZON = timedelta(days=180)
SEATS_KEY = "seats"


@dataclass(frozen=True)
class Usage:
    users: int  # people ever seen for the account
    last_active: datetime | None  # within HORIZON
    active_days: int  # days with any activity, the last 30 days
    active_days_before: int  # the 30 days before those
    active_people: int
    active_people_before: int
    seats: int | None  # paid for
    user_days: int = 0  # (person, day) pairs with activity, the last 30 days
    user_days_before: int = 0

    @staticmethod
    def change(now: int, before: int) -> float | None:
        """The relative change from the previous 30 days (−0.6 is 60% down)."""
        return (now - before) / before if before else None

    @property
    def days_change(self) -> float | None:
        return self.change(self.active_days, self.active_days_before)

    @property
    def use_change(self) -> float | None:
        return self.change(self.user_days, self.user_days_before)

    @property
    def people_change(self) -> float | None:
        return self.change(self.active_people, self.active_people_before)

    @property
    def seat_use(self) -> float | None:
        return self.active_people / self.seats if self.seats else None

    def as_dict(self) -> dict[str, object]:
        return {
            "users": self.users,
            "last_active": self.last_active,
            "active_days_30": self.active_days,
            "active_days_previous_30": self.active_days_before,
            "active_people_30": self.active_people,
            "active_people_previous_30": self.active_people_before,
            "active_user_days_30": self.user_days,
            "active_user_days_previous_30": self.user_days_before,
            "seats_paid": self.seats,
            "seats_active_share": round(self.seat_use, 3) if self.seat_use is not None else None,
        }


def _seats(properties: dict[str, object]) -> int | None:
    seats = properties.get(SEATS_KEY)
    if isinstance(seats, bool) or not isinstance(seats, int | float | str):
        return None
    try:
        found = int(float(seats))
    except ValueError:
        return None
    return found if found > 0 else None


def by_account(
    accounts: Iterable[Account] | None = None, now: datetime | None = None
) -> dict[int, Usage]:
    """Usage of each account that has users matched to it (all of them, or `accounts`)."""
    now = now or timezone.now()
    today = now.date()
    mid, start, horizon = today - WINDOW, today - 2 * WINDOW, today - HORIZON
    ids: Any = None
    if isinstance(accounts, QuerySet):
        ids = accounts.values("pk")
    elif accounts is not None:
        ids = [a.pk for a in accounts]
    identities = UsageIdentity.objects.filter(kind=UsageIdentity.Kind.USER, account__isnull=False)
    days = UsageDay.objects.filter(
        identity__kind=UsageIdentity.Kind.USER,
        identity__account__isnull=False,
        day__gt=horizon,
        day__lte=today,
    )
    if ids is not None:
        identities = identities.filter(account_id__in=ids)
        days = days.filter(identity__account_id__in=ids)
    users = dict(
        identities.values("account_id").annotate(n=Count("id")).values_list("account_id", "n")
    )
    recent, before = Q(day__gt=mid), Q(day__gt=start, day__lte=mid)
    figures = {
        row["identity__account_id"]: row
        for row in days.values("identity__account_id").annotate(
            last=Max("last_at"),
            days=Count("day", distinct=True, filter=recent),
            days_before=Count("day", distinct=True, filter=before),
            people=Count("identity", distinct=True, filter=recent),
            people_before=Count("identity", distinct=True, filter=before),
            user_days=Count("id", filter=recent),
            user_days_before=Count("id", filter=before),
        )
    }
    seats = dict(
        Account.objects.filter(pk__in=identities.values("account_id")).values_list(
            "pk", "properties"
        )
    )
    found = {}
    for account_id, n in users.items():
        row = figures.get(account_id, {})
        found[account_id] = Usage(
            users=n,
            last_active=row.get("last"),
            active_days=row.get("days", 0),
            active_days_before=row.get("days_before", 0),
            active_people=row.get("people", 0),
            active_people_before=row.get("people_before", 0),
            seats=_seats(seats.get(account_id) or {}),
            user_days=row.get("user_days", 0),
            user_days_before=row.get("user_days_before", 0),
        )
    return found


def of(account: Account, now: datetime | None = None) -> Usage | None:
    return by_account([account], now).get(account.pk)
