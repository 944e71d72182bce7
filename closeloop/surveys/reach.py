"""Whom surveys reach: response rates per survey and wave, and people who fell silent.

Response rate follows docs/domain.md §1 and §7: answers over invitations *delivered*
(accepted by the mail server), compared with the B2B median of 12.4%. Opens
are counted "where known": an open is seen only when the tracking pixel loads
or the person clicks, so it is a floor, not a figure to divide by.

Silence (docs/domain.md §7–8) is a churn signal: a person who answered an earlier
survey and has given no answer since the older of their last two invitations.
An invitation younger than `SILENCE_GRACE` is not yet "ignored".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import (
    Count,
    Exists,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.utils import timezone

from closeloop.delivery.models import Delivery

from .models import Account, Person, Response, SurveyRequest

B2B_MEDIAN_RESPONSE_RATE = 0.124
MEDIAN_PERCENT = round(B2B_MEDIAN_RESPONSE_RATE * 100, 1)
# Below this many delivered invitations a rate says too little to warn about.
MIN_DELIVERED_FOR_WARNING = 20
# Most answers to a survey email come within a week; until then a wave is still collecting.
COLLECTING_DAYS = 7
SILENCE_GRACE = timedelta(days=7)


@dataclass
class Reach:
    """How far one survey's (or one wave's) invitations got."""

    requested: int = 0
    scheduled: int = 0
    skipped: int = 0
    cancelled: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    bounced: int = 0
    opened: int = 0
    answered: int = 0
    reminded: int = 0
    first_sent: datetime | None = None
    last_sent: datetime | None = None
    skip_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float | None:
        """Answers per delivered invitation; None before anything was delivered."""
        return self.answered / self.delivered if self.delivered else None

    @property
    def rate_percent(self) -> float | None:
        """The response rate in percent, for showing."""
        return None if self.rate is None else 100 * self.rate

    @property
    def open_rate(self) -> float | None:
        """Opens seen per delivered invitation (a floor: many clients block the pixel)."""
        return self.opened / self.delivered if self.delivered else None

    @property
    def collecting(self) -> bool:
        """Invitations went out within the last week, or are still to go: answers still come."""
        if self.scheduled:
            return True
        return self.last_sent is not None and self.last_sent > timezone.now() - timedelta(
            days=COLLECTING_DAYS
        )

    @property
    def below_median(self) -> bool:
        """The rate is under the B2B median, on enough deliveries to say so."""
        return (
            self.delivered >= MIN_DELIVERED_FOR_WARNING
            and self.rate is not None
            and self.rate < B2B_MEDIAN_RESPONSE_RATE
        )

    def percent(self, part: int) -> float:
        """`part` as a share of the invitations requested, for progress bars."""
        return 100 * part / self.requested if self.requested else 0.0

    @property
    def funnel(self) -> list[tuple[str, tuple[int, float], str]]:
        """Each step from invited to answered: label, (count, % of invited), a note."""
        steps = [
            ("Invited", self.requested, ""),
            ("Waiting to send", self.scheduled, ""),
            ("Skipped", self.skipped, "unsubscribed, bounced, throttled…"),
            ("Sent", self.sent, f"{self.reminded} reminded" if self.reminded else ""),
            (
                "Delivered",
                self.delivered,
                ", ".join(
                    f"{n} {what}"
                    for n, what in ((self.bounced, "bounced"), (self.failed, "failed"))
                    if n
                ),
            ),
            ("Opened", self.opened, "where seen: many mail apps hide opens"),
            ("Answered", self.answered, ""),
        ]
        if self.cancelled:
            steps.insert(3, ("Cancelled", self.cancelled, ""))
        return [(label, (n, self.percent(n)), note) for label, n, note in steps]


def _counts() -> dict[str, Any]:
    s = SurveyRequest.Status
    delivered = Q(deliveries__purpose=Delivery.Purpose.SURVEY, deliveries__status="sent")
    bounced = Q(deliveries__purpose=Delivery.Purpose.SURVEY, deliveries__bounced=True)
    return {
        "requested": Count("id", distinct=True),
        "scheduled": Count("id", distinct=True, filter=Q(status=s.SCHEDULED)),
        "skipped": Count("id", distinct=True, filter=Q(status=s.SKIPPED)),
        "cancelled": Count("id", distinct=True, filter=Q(status=s.CANCELLED)),
        "sent": Count("id", distinct=True, filter=Q(sent_at__isnull=False)),
        "delivered": Count("id", distinct=True, filter=delivered),
        "failed": Count("id", distinct=True, filter=Q(status=s.FAILED)),
        "bounced": Count("id", distinct=True, filter=bounced),
        # A click opens the page too; an answer given without any open seen still counts.
        "opened": Count(
            "id", distinct=True, filter=Q(opened_at__isnull=False) | Q(answered_at__isnull=False)
        ),
        "answered": Count("id", distinct=True, filter=Q(answered_at__isnull=False)),
        "reminded": Count("id", distinct=True, filter=Q(reminded_at__isnull=False)),
        "first_sent": Min("sent_at"),
        "last_sent": Max("sent_at"),
    }


def _reasons(requests: QuerySet[SurveyRequest], by: str | None) -> dict[Any, dict[str, int]]:
    """Skip reasons per group, with throttle reasons (which carry a date) counted as one."""
    columns = [by, "status_reason"] if by else ["status_reason"]
    rows = (
        requests.filter(status=SurveyRequest.Status.SKIPPED)
        .values(*columns)
        .annotate(n=Count("id"))
    )
    out: dict[Any, dict[str, int]] = {}
    for row in rows:
        reason = row["status_reason"].split(":", 1)[0] or "unknown"
        group = out.setdefault(row[by] if by else None, {})
        group[reason] = group.get(reason, 0) + row["n"]
    return out


def reach_by(requests: QuerySet[SurveyRequest], by: str) -> dict[Any, Reach]:
    """Reach of the requests grouped by one column (`survey_id`, `wave_id`), in SQL."""
    rows = requests.order_by().values(by).annotate(**_counts())
    reasons = _reasons(requests.order_by(), by)
    return {
        row[by]: Reach(
            **{k: v for k, v in row.items() if k != by}, skip_reasons=reasons.get(row[by], {})
        )
        for row in rows
    }


def reach(requests: QuerySet[SurveyRequest]) -> Reach:
    """Reach of a set of requests, e.g. one wave's."""
    row = requests.order_by().aggregate(**_counts())
    reasons = _reasons(requests.order_by(), None)
    return Reach(**row, skip_reasons=reasons.get(None, {}))


def survey_requests() -> QuerySet[SurveyRequest]:
    """The requests that measure a survey's reach: invitations, not follow-ups after a case."""
    return SurveyRequest.objects.filter(purpose=SurveyRequest.Purpose.SURVEY)


# --- silence ---------------------------------------------------------------------------------


def silent_people(now: datetime | None = None) -> QuerySet[Person]:
    """People who answered before and have ignored their last two invitations.

    Each person is annotated with `silent_since` (when the older of the two ignored
    invitations went out), `last_score` and `last_answered_at`.
    """
    now = now or timezone.now()
    cutoff = now - SILENCE_GRACE
    delivered = SurveyRequest.objects.filter(
        person=OuterRef("pk"), sent_at__isnull=False, sent_at__lte=cutoff
    ).exclude(status=SurveyRequest.Status.FAILED)
    second_last = delivered.order_by("-sent_at", "-id").values("sent_at")[1:2]
    answers = Response.objects.filter(person=OuterRef("pk"), created_at__lte=now)
    latest = answers.order_by("-created_at", "-id")
    return (
        Person.objects.select_related("account")
        .annotate(silent_since=Subquery(second_last))
        .filter(silent_since__isnull=False)
        .annotate(
            answered_before=Exists(answers.filter(created_at__lt=OuterRef("silent_since"))),
            answered_since=Exists(answers.filter(created_at__gte=OuterRef("silent_since"))),
        )
        .filter(answered_before=True, answered_since=False)
        .annotate(
            last_score=Subquery(latest.values("score")[:1]),
            last_answered_at=Subquery(latest.values("created_at")[:1]),
        )
    )


@dataclass
class SilentAccount:
    """An account with people gone silent, and who they are."""

    account: Account | None
    people: list[Person]

    @property
    def detractors(self) -> int:
        """Silent people whose last answer was a detractor's: the strongest churn signal."""
        scores = [getattr(p, "last_score", None) for p in self.people]
        return sum(1 for s in scores if s is not None and s <= 6)


def silence_by_account(people: Iterable[Person]) -> list[SilentAccount]:
    """Silent people grouped by account, the accounts with most ARR at stake first."""
    groups: dict[int | None, SilentAccount] = {}
    for person in people:
        group = groups.setdefault(person.account_id, SilentAccount(person.account, []))
        group.people.append(person)
    return sorted(
        groups.values(),
        key=lambda g: (
            g.account is None,
            -(g.account.arr_cents if g.account else 0),
            -g.detractors,
            g.account.name if g.account else "",
        ),
    )
