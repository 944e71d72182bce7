"""NPS figures computed in SQL: one query per question, whatever the number of answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet

from closeloop.core.nps import NpsSummary, change_is_significant
from closeloop.core.periods import day_start


def class_counts(prefix: str = "", extra: Q | None = None) -> dict[str, Count]:
    base = extra if extra is not None else Q()
    return {
        f"{prefix}promoters": Count("id", filter=base & Q(score__gte=9)),
        f"{prefix}passives": Count("id", filter=base & Q(score__gte=7, score__lte=8)),
        f"{prefix}detractors": Count("id", filter=base & Q(score__lte=6)),
    }


def summary_from(row: dict[str, Any], prefix: str = "") -> NpsSummary:
    """The summary held in a row annotated with `class_counts(prefix)`."""
    return NpsSummary(
        row[f"{prefix}promoters"], row[f"{prefix}passives"], row[f"{prefix}detractors"]
    )


def summarise(qs: QuerySet[Any]) -> NpsSummary:
    """Counts per class of a queryset of responses, in one aggregate query."""
    return summary_from(qs.aggregate(**class_counts()))


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
        **class_counts("cur_", Q(created_at__gte=middle)),
        **class_counts("prev_", Q(created_at__lt=middle)),
    )
    return PeriodComparison(
        since=since,
        until=until,
        current=summary_from(row, "cur_"),
        previous=summary_from(row, "prev_"),
    )


def score_distribution(qs: QuerySet[Any]) -> list[int]:
    """How many answers gave each score 0..10."""
    counts = [0] * 11
    for row in qs.order_by().values("score").annotate(n=Count("id")):
        counts[row["score"]] = row["n"]
    return counts
