"""NPS per segment (tier, plan, tenure, company size, industry, survey, any custom
property), each beside its previous period, with the segments that move against
the overall trend first and small segments flagged instead of ranked.

A segment's value is one SQL expression (`dimension_expr`), used both to group
the figures and to filter the answers a figure links to, so the two always agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db.models import Case, CharField, F, Q, QuerySet, TextField, Value, When
from django.db.models.expressions import Combinable
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, ExtractMonth, ExtractYear, NullIf
from django.db.models.lookups import LessThan

from closeloop.core.errors import FieldError
from closeloop.core.nps import Compared, NpsSummary, change_z
from closeloop.core.periods import day_start, org_zone

from .metrics import PeriodComparison, class_counts, compare_periods, previous_period, summary_from

# Below this many answers a segment's NPS is too uncertain to rank (its 95%
# interval is wider than ±30 points for a typical spread).
MIN_SEGMENT_N = 30
PROPERTY = "property:"
NOT_SET = "(not set)"
NO_ACCOUNT = "(no account)"

DIMENSIONS: dict[str, str] = {
    "tier": "Plan tier",
    "plan": "Plan",
    "tenure": "Tenure when answering",
    "company_size": "Company size",
    "industry": "Industry",
    "survey": "Survey (touchpoint)",
}
# Tenure buckets in whole calendar months between customer_since and the answer.
TENURE_BUCKETS: list[tuple[int, str]] = [
    (3, "0–2 months"),
    (12, "3–11 months"),
    (24, "1 year"),
    (60, "2–4 years"),
]
TENURE_LAST = "5+ years"


def check_dimension(key: str, field: str = "by") -> str:
    """`key` if it names a dimension, else FieldError naming `field`."""
    if key in DIMENSIONS:
        return key
    if key.startswith(PROPERTY) and 0 < len(key) - len(PROPERTY) <= 100 and "\x00" not in key:
        return key
    choices = ", ".join(DIMENSIONS)
    raise FieldError(field, f"must be one of {choices} or property:<name>", where="query")


def dimension_label(key: str) -> str:
    return DIMENSIONS.get(key) or f"Property “{key[len(PROPERTY) :]}”"


def _text(field: str, empty: str = NOT_SET) -> Combinable:
    """A text column with blank and missing values shown as `empty`."""
    return Coalesce(NullIf(F(field), Value("")), Value(empty), output_field=CharField())


def tenure_months() -> Combinable:
    """Whole calendar months from the account's customer_since to the answer (org zone)."""
    tz = org_zone()
    answered_year = ExtractYear("created_at", tzinfo=tz)
    answered_month = ExtractMonth("created_at", tzinfo=tz)
    since_year = ExtractYear("account__customer_since")
    since_month = ExtractMonth("account__customer_since")
    return (answered_year - since_year) * 12 + answered_month - since_month


def tenure_bucket(months: int | None) -> str:
    """The bucket of a tenure in months (the same rule as the SQL in `dimension_expr`)."""
    if months is None:
        return NOT_SET
    for limit, label in TENURE_BUCKETS:
        if months < limit:
            return label
    return TENURE_LAST


def dimension_expr(key: str) -> Combinable:
    """The SQL value of dimension `key` for each answer, never NULL."""
    check_dimension(key)
    if key.startswith(PROPERTY):
        prop = key[len(PROPERTY) :]
        text = Cast(KeyTextTransform(prop, "properties"), TextField())
        return Coalesce(NullIf(text, Value("")), Value(NOT_SET), output_field=TextField())
    if key == "survey":
        return F("survey__slug")
    if key == "tenure":
        months = tenure_months()
        whens = [
            When(account__isnull=True, then=Value(NO_ACCOUNT)),
            When(account__customer_since__isnull=True, then=Value(NOT_SET)),
        ]
        whens += [
            When(LessThan(months, limit), then=Value(label)) for limit, label in TENURE_BUCKETS
        ]
        return Case(*whens, default=Value(TENURE_LAST), output_field=CharField())
    return Case(
        When(account__isnull=True, then=Value(NO_ACCOUNT)),
        default=_text(f"account__{key}"),
        output_field=CharField(),
    )


@dataclass(frozen=True)
class SegmentRow(Compared):
    """One value of a dimension: its NPS now and in the period before."""

    value: str
    current: NpsSummary
    previous: NpsSummary
    overall: PeriodComparison

    @property
    def small(self) -> bool:
        """Too few answers now to rank: shown, flagged, never sorted among the others."""
        return self.current.responses < MIN_SEGMENT_N

    @property
    def against_trend(self) -> bool:
        """A real change that the overall figure does not show, or shows the other way.

        A flat overall NPS can hide a falling segment; a rising one can hide a
        segment that falls.
        """
        if self.small or not self.significant or self.change is None:
            return False
        if not self.overall.change_significant:
            return True
        return (self.change > 0) != (self.overall.change > 0)

    @property
    def z(self) -> float:
        return abs(change_z(self.previous, self.current) or 0.0)


@dataclass(frozen=True)
class SegmentTable:
    dimension: str
    since: date
    until: date
    overall: PeriodComparison
    rows: list[SegmentRow]

    @property
    def label(self) -> str:
        return dimension_label(self.dimension)


SORTS = {"value", "n", "nps", "change"}


def _default_order(row: SegmentRow) -> tuple[int, float, str]:
    if row.against_trend:
        return (0, -row.z, row.value)
    if not row.small:
        return (1, -row.current.nps, row.value)
    return (2, -row.current.responses, row.value)


def sort_rows(rows: list[SegmentRow], sort: str) -> list[SegmentRow]:
    """Against-the-trend first, then by NPS (the default), or by a column (`-` = descending).

    Whatever the column, small segments stay at the bottom: their order means nothing.
    """
    key = sort.lstrip("-")
    if key not in SORTS:
        return sorted(rows, key=_default_order)
    value: dict[str, Any] = {
        "value": lambda r: r.value.lower(),
        "n": lambda r: r.current.responses,
        "nps": lambda r: r.current.nps,
        "change": lambda r: r.change if r.change is not None else float("-inf"),
    }
    ranked = sorted((r for r in rows if not r.small), key=value[key], reverse=sort.startswith("-"))
    return ranked + sorted((r for r in rows if r.small), key=_default_order)


def segment_table(
    qs: QuerySet[Any], dimension: str, since: date, until: date, sort: str = ""
) -> SegmentTable:
    """NPS per value of `dimension` for [since, until] and the period of equal length before.

    Two grouped queries whatever the number of answers: the overall comparison,
    and one GROUP BY over both periods. `qs` is the segment, not yet narrowed in time.
    """
    check_dimension(dimension)
    overall = compare_periods(qs, since, until)
    prev_since, _ = previous_period(since, until)
    middle = day_start(since)
    rows = (
        qs.filter(
            created_at__gte=day_start(prev_since), created_at__lt=day_start(until + timedelta(1))
        )
        .order_by()
        .annotate(segment_value=dimension_expr(dimension))
        .values("segment_value")
        .annotate(
            **class_counts("cur_", Q(created_at__gte=middle)),
            **class_counts("prev_", Q(created_at__lt=middle)),
        )
    )
    found = [
        SegmentRow(
            value=str(row["segment_value"]),
            current=summary_from(row, "cur_"),
            previous=summary_from(row, "prev_"),
            overall=overall,
        )
        for row in rows
    ]
    return SegmentTable(dimension, since, until, overall, sort_rows(found, sort))


def segment_query(dimension: str, value: str) -> Mapping[str, str]:
    """The query parameters that narrow the answers list to one segment value."""
    return {"segment": dimension, "segment_value": value}


def property_names(qs: QuerySet[Any], sample: int = 2000) -> list[str]:
    """Custom property names seen on the newest answers, for the dimension menu.

    A bounded sample: a menu does not need every property ever sent, and reading
    every answer's JSON would cost as much as the figures themselves.
    """
    names: set[str] = set()
    for props in qs.order_by("-created_at").values_list("properties", flat=True)[:sample]:
        if isinstance(props, dict):
            names.update(k for k in props if isinstance(k, str) and 0 < len(k) <= 100)
    return sorted(names)
