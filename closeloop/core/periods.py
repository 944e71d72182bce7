"""Calendar periods in the organisation's time zone: days, weeks, months and quarters.

A week that starts on Monday in Sydney starts on Sunday in UTC, so every period
boundary (filters, trend buckets, the monthly report) is computed here, in
`ORG_TIME_ZONE`, and nowhere else.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db.models import DateTimeField, Expression, Q
from django.db.models.functions import Trunc
from django.utils import timezone


class Grain(StrEnum):
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"


def org_zone() -> ZoneInfo:
    """The organisation's time zone (`ORG_TIME_ZONE`); UTC when the name is unknown."""
    try:
        return ZoneInfo(settings.ORG_TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def today() -> date:
    """Today's date where the organisation is."""
    return timezone.now().astimezone(org_zone()).date()


def day_start(day: date) -> datetime:
    """Midnight at the start of `day` in the organisation's time zone."""
    return datetime.combine(day, time.min, tzinfo=org_zone())


def within(since: date, until: date, field: str = "created_at") -> Q:
    """`field` falls on one of the organisation's days from `since` to `until`, inclusive."""
    return Q(
        **{f"{field}__gte": day_start(since), f"{field}__lt": day_start(until + timedelta(days=1))}
    )


def local_date(moment: datetime) -> date:
    """The organisation's calendar date of an instant."""
    return moment.astimezone(org_zone()).date()


def period_start(day: date, grain: Grain) -> date:
    """The first day of the week (Monday), month or quarter holding `day`."""
    if grain is Grain.WEEK:
        return day - timedelta(days=day.weekday())
    if grain is Grain.MONTH:
        return day.replace(day=1)
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def next_period(start: date, grain: Grain) -> date:
    """The first day of the period after the one starting on `start`."""
    if grain is Grain.WEEK:
        return start + timedelta(days=7)
    months = 1 if grain is Grain.MONTH else 3
    index = start.year * 12 + start.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period_starts(since: date, until: date, grain: Grain) -> list[date]:
    """Every period touching [since, until], oldest first."""
    starts, cursor = [], period_start(since, grain)
    while cursor <= until:
        starts.append(cursor)
        cursor = next_period(cursor, grain)
    return starts


def period_label(start: date, grain: Grain) -> str:
    """'Week of 3 Mar 2026', 'Mar 2026' or 'Q1 2026'."""
    if grain is Grain.WEEK:
        return f"Week of {start.day} {start:%b %Y}"
    if grain is Grain.MONTH:
        return f"{start:%b %Y}"
    return f"Q{(start.month - 1) // 3 + 1} {start.year}"


def short_label(start: date, grain: Grain) -> str:
    """A chart axis label: '3 Mar', 'Mar 2026' or 'Q1 2026'."""
    return f"{start.day} {start:%b}" if grain is Grain.WEEK else period_label(start, grain)


def trunc(grain: Grain, field: str = "created_at") -> Expression:
    """SQL that truncates `field` to the start of its period in the organisation's zone."""
    return Trunc(field, grain.value, output_field=DateTimeField(), tzinfo=org_zone())


def as_period(value: datetime | date) -> date:
    """A truncated value from SQL as the organisation's calendar date it stands for."""
    if isinstance(value, datetime):
        if timezone.is_aware(value):
            return value.astimezone(org_zone()).date()
        return value.date()
    return value
