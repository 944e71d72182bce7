"""NPS figures computed in SQL: one query per question, whatever the number of answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncMonth

from .nps import NpsSummary, change_is_significant


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of a day: periods are whole UTC days."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def _class_counts(prefix: str = "", extra: Q | None = None) -> dict[str, Count]:
    base = extra if extra is not None else Q()
    return {
        f"{prefix}promoters": Count("id", filter=base & Q(score__gte=9)),
        f"{prefix}passives": Count("id", filter=base & Q(score__gte=7, score__lte=8)),
        f"{prefix}detractors": Count("id", filter=base & Q(score__lte=6)),
    }


def summarise(qs: QuerySet[Any]) -> NpsSummary:
    """Counts per class of a queryset of responses, in one aggregate query."""
    row = qs.aggregate(**_class_counts())
    return NpsSummary(row["promoters"], row["passives"], row["detractors"])


@dataclass(frozen=True)
class PeriodComparison:
    """A period's NPS beside the period of equal length just before it."""

    since: date
    until: date
    current: NpsSummary
    previous: NpsSummary

    @property
    def change(self) -> float:
        return self.current.nps - self.previous.nps

    @property
    def change_significant(self) -> bool:
        return change_is_significant(self.previous, self.current)


def previous_period(since: date, until: date) -> tuple[date, date]:
    """The period of equal length ending the day before `since` (both ends inclusive)."""
    length = (until - since).days + 1
    return since - timedelta(days=length), since - timedelta(days=1)


def compare_periods(qs: QuerySet[Any], since: date, until: date) -> PeriodComparison:
    """NPS for [since, until] and for the previous period of equal length, in one query.

    `qs` must already be narrowed to the segment but not to a period.
    """
    prev_since, _ = previous_period(since, until)
    start, middle, end = day_start(prev_since), day_start(since), day_start(until + timedelta(1))
    row = qs.filter(created_at__gte=start, created_at__lt=end).aggregate(
        **_class_counts("cur_", Q(created_at__gte=middle)),
        **_class_counts("prev_", Q(created_at__lt=middle)),
    )
    return PeriodComparison(
        since=since,
        until=until,
        current=NpsSummary(row["cur_promoters"], row["cur_passives"], row["cur_detractors"]),
        previous=NpsSummary(row["prev_promoters"], row["prev_passives"], row["prev_detractors"]),
    )


def score_distribution(qs: QuerySet[Any]) -> list[int]:
    """How many answers gave each score 0..10."""
    counts = [0] * 11
    for row in qs.order_by().values("score").annotate(n=Count("id")):
        counts[row["score"]] = row["n"]
    return counts


@dataclass(frozen=True)
class MonthPoint:
    month: date
    summary: NpsSummary


def monthly_trend(qs: QuerySet[Any]) -> list[MonthPoint]:
    """NPS per calendar month (UTC), oldest first, for the months that have answers."""
    rows = (
        qs.order_by()
        .annotate(month=TruncMonth("created_at"))
        .values("month")
        .annotate(**_class_counts())
        .order_by("month")
    )
    return [
        MonthPoint(
            month=row["month"].date() if hasattr(row["month"], "date") else row["month"],
            summary=NpsSummary(row["promoters"], row["passives"], row["detractors"]),
        )
        for row in rows
    ]
