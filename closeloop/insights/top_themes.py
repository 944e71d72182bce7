"""Themes by count and by revenue: the classifier's (and people's) theme tags on a set of
answers, with how many answers and accounts name each, and the ARR of those accounts
(each account once per theme)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Avg, Count, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from closeloop.core.periods import (
    Grain,
    as_period,
    day_start,
    next_period,
    period_starts,
    short_label,
    trunc,
    within,
)
from closeloop.surveys.models import Account, Response
from closeloop.themes.models import Theme, ThemeTag


@dataclass(frozen=True)
class ThemeFigure:
    """One theme: how many answers name it, how many accounts, and their ARR (each once)."""

    slug: str
    name: str
    responses: int
    accounts: int
    arr_cents: int


def theme_figures(qs: QuerySet[Response]) -> list[ThemeFigure]:
    """Every theme on the answers of `qs`, by number of answers (most first).

    Two queries: answers and accounts per theme, and the ARR of each theme's distinct
    accounts.
    """
    answers = qs.order_by().values("pk")
    tagged = ThemeTag.objects.filter(response__in=answers)
    counted = {
        row["theme_id"]: row
        for row in tagged.values("theme_id").annotate(
            responses=Count("response_id", distinct=True),
            accounts=Count("response__account_id", distinct=True),
        )
    }
    if not counted:
        return []
    arr_of_accounts = (
        Account.objects.filter(
            pk__in=tagged.filter(theme=OuterRef(OuterRef("pk"))).values("response__account_id")
        )
        .order_by()
        .annotate(one=Value(1))
        .values("one")
        .annotate(total=Sum("arr_cents"))
        .values("total")
    )
    themes = Theme.objects.filter(pk__in=list(counted)).annotate(
        arr=Coalesce(Subquery(arr_of_accounts), 0)
    )
    figures = [
        ThemeFigure(
            t.slug,
            t.name,
            counted[t.pk]["responses"],
            counted[t.pk]["accounts"],
            int(t.arr),
        )
        for t in themes
    ]
    return sorted(figures, key=lambda f: (-f.responses, f.name))


def top_by_count(figures: list[ThemeFigure], n: int = 3) -> list[ThemeFigure]:
    return sorted(figures, key=lambda f: (-f.responses, f.name))[:n]


def top_by_arr(figures: list[ThemeFigure], n: int = 3) -> list[ThemeFigure]:
    return sorted(figures, key=lambda f: (-f.arr_cents, -f.responses, f.name))[:n]


# --- the themes page: a period's themes beside the period before, and their trend ------------


@dataclass(frozen=True)
class ThemeRow:
    figure: ThemeFigure
    previous_responses: int
    share: float  # percent of the period's read comments that name it
    sentiment: float | None  # mean sentiment score of its answers, -1 … +1

    @property
    def change(self) -> int:
        return self.figure.responses - self.previous_responses


@dataclass(frozen=True)
class ThemeTable:
    since: date
    until: date
    read: int  # comments the worker read in the period
    rows: list[ThemeRow]


def _read(qs: QuerySet[Response]) -> QuerySet[Response]:
    """Answers whose comment the worker has read (themes found or not)."""
    return qs.filter(themes_status="done").exclude(comment="")


def theme_table(qs: QuerySet[Response], since: date, until: date) -> ThemeTable:
    """The themes of the answers in [since, until], most answers first, each beside its
    count in the period of equal length before, its share of the comments read, and the
    mean sentiment of its answers."""
    current = qs.filter(within(since, until))
    length = (until - since).days + 1
    before = qs.filter(within(since - timedelta(days=length), since - timedelta(days=1)))
    previous = {f.slug: f.responses for f in theme_figures(before)}
    read = _read(current).count()
    feeling = dict(
        ThemeTag.objects.filter(response__in=current.order_by().values("pk"))
        .values("theme__slug")
        .annotate(mean=Avg("response__sentiment_score"))
        .values_list("theme__slug", "mean")
    )
    rows = [
        ThemeRow(
            f,
            previous.get(f.slug, 0),
            100.0 * f.responses / read if read else 0.0,
            None if feeling.get(f.slug) is None else round(float(feeling[f.slug]), 2),
        )
        for f in theme_figures(current)
    ]
    return ThemeTable(since, until, read, rows)


@dataclass(frozen=True)
class TrendSeries:
    slug: str
    name: str
    counts: list[int]  # one per period
    shares: list[float]  # percent of that period's read comments


@dataclass(frozen=True)
class ThemeTrend:
    grain: Grain
    starts: list[date]
    read: list[int]
    series: list[TrendSeries]

    def labels(self) -> list[str]:
        return [short_label(s, self.grain) for s in self.starts]


def theme_trend(
    qs: QuerySet[Response], since: date, until: date, grain: Grain, slugs: list[str]
) -> ThemeTrend:
    """For each theme in `slugs`, its answers per period touching [since, until] and their
    share of the comments read in that period (whole periods, empty ones included)."""
    starts = period_starts(since, until, grain)
    window = qs.filter(
        created_at__gte=day_start(starts[0]),
        created_at__lt=day_start(next_period(starts[-1], grain)),
    )
    read = {
        as_period(row["period"]): row["n"]
        for row in _read(window)
        .order_by()
        .annotate(period=trunc(grain))
        .values("period")
        .annotate(n=Count("id"))
    }
    found: dict[tuple[date, str], int] = {
        (as_period(row["period"]), row["theme__slug"]): row["n"]
        for row in ThemeTag.objects.filter(
            response__in=window.order_by().values("pk"), theme__slug__in=slugs
        )
        .annotate(period=trunc(grain, "response__created_at"))
        .values("period", "theme__slug")
        .annotate(n=Count("response_id", distinct=True))
    }
    names = dict(Theme.objects.filter(slug__in=slugs).values_list("slug", "name"))
    series = []
    for slug in slugs:
        counts = [found.get((s, slug), 0) for s in starts]
        shares = [
            round(100.0 * n / read[s], 1) if read.get(s) else 0.0
            for n, s in zip(counts, starts, strict=True)
        ]
        series.append(TrendSeries(slug, names.get(slug, slug), counts, shares))
    return ThemeTrend(grain, starts, [read.get(s, 0) for s in starts], series)
