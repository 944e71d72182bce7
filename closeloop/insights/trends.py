"""NPS over time: one point per week, month or quarter, with its interval and a
change mark only where the change from the period before is significant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db.models import QuerySet

from closeloop.core.nps import STRUCTURAL_DETRACTOR_SHARE, NpsSummary, change_is_significant
from closeloop.core.nps import change as nps_change
from closeloop.core.periods import (
    Grain,
    as_period,
    day_start,
    next_period,
    period_label,
    period_start,
    period_starts,
    trunc,
)

from .metrics import class_counts, summary_from

EMPTY = NpsSummary(0, 0, 0)


@dataclass(frozen=True)
class TrendPoint:
    """One period of the trend."""

    start: date
    end: date  # the last day of the period
    grain: Grain
    summary: NpsSummary
    previous: NpsSummary

    @property
    def label(self) -> str:
        return period_label(self.start, self.grain)

    @property
    def change(self) -> float | None:
        """Points of NPS gained since the period before; None when either has no answers."""
        return nps_change(self.previous, self.summary)

    @property
    def significant(self) -> bool:
        """True when the change from the period before passes the 95% test."""
        return change_is_significant(self.previous, self.summary)

    @property
    def detractor_share(self) -> float:
        return self.summary.percent(self.summary.detractors)

    @property
    def structural(self) -> bool:
        """More than 40% detractors: a product problem that follow-up alone cannot fix."""
        return self.summary.responses > 0 and self.detractor_share > STRUCTURAL_DETRACTOR_SHARE


def trend(qs: QuerySet[Any], since: date, until: date, grain: Grain) -> list[TrendPoint]:
    """NPS per period for every period touching [since, until], empty ones included.

    One grouped query over whole periods: the first and last periods are not cut
    at `since`/`until`, so each point always covers a full week, month or quarter.
    The period before the first is read too, so the first point has a change.
    `qs` holds the segment's answers and is not yet narrowed to a period.
    """
    starts = period_starts(since, until, grain)
    end = next_period(starts[-1], grain)
    first = period_start(starts[0] - timedelta(days=1), grain)
    rows = (
        qs.filter(created_at__gte=day_start(first), created_at__lt=day_start(end))
        .order_by()
        .annotate(period=trunc(grain))
        .values("period")
        .annotate(**class_counts())
    )
    found = {as_period(row["period"]): summary_from(row) for row in rows}
    points, before = [], found.get(first, EMPTY)
    for index, start in enumerate(starts):
        stop = starts[index + 1] if index + 1 < len(starts) else end
        summary = found.get(start, EMPTY)
        points.append(
            TrendPoint(
                start=start,
                end=stop - timedelta(days=1),
                grain=grain,
                summary=summary,
                previous=before,
            )
        )
        before = summary
    return points
