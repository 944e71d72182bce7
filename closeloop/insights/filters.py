"""Narrowing answers to a period and a segment, from query parameters.

The API, the metrics and the pages all take the same parameters, read here:
since/until (dates, until inclusive), score, band, category, account, tier,
survey, person (email or id), q (text in the comment), tag, theme (a slug, or
"unclassified"), sentiment, property.<key>=<value>
and segment=<dimension>&segment_value=<value> (a row of the segments page).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from closeloop.core.errors import FieldError
from closeloop.core.nps import BAND_RANGES, CATEGORY_RANGES, Band, Category
from closeloop.core.periods import day_start, today
from closeloop.insights.segments import check_dimension, dimension_expr
from closeloop.surveys.models import Response
from closeloop.themes.models import UNCLASSIFIED, Theme, ThemeTag

PROPERTY_PREFIX = "property."
# Ids are 64-bit; a longer number can only be an external id.
MAX_ID = 2**63 - 1


# Periods and their previous periods must stay inside what dates can represent.
EARLIEST_DAY, LATEST_DAY = date(1900, 1, 1), date(2999, 12, 31)


def _parse_date(name: str, value: str) -> date:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise FieldError(name, f"{value!r} is not a date like 2026-01-31", where="query") from None
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise FieldError(name, f"must be between {EARLIEST_DAY} and {LATEST_DAY}", where="query")
    return day


SENTIMENTS = ("negative", "neutral", "positive")


def theme_matches(theme: str, path: str = "") -> Q:
    """Answers carrying the theme with this slug; for UNCLASSIFIED, answers the worker read
    and gave no theme. `path` leads from the queried model to the answer ("response__")."""
    tagged = ThemeTag.objects.filter(response=OuterRef(path.removesuffix("__") or "pk"))
    if theme == UNCLASSIFIED:
        return Q(Q(**{f"{path}themes_status": "done"}), ~Exists(tagged))
    # The theme's id as a scalar subquery: PostgreSQL reads it once and then probes the
    # (theme, response) index per answer, where a join to the themes by slug inside the
    # EXISTS made a filtered page take twice its bare SQL's time at a million answers.
    theme_id = Subquery(Theme.objects.filter(slug=theme).values("pk")[:1])
    return Q(Exists(tagged.filter(theme_id=theme_id)))


@dataclass
class ResponseFilter:
    """A segment of answers; empty fields do not narrow anything."""

    since: date | None = None
    until: date | None = None
    scores: list[int] = field(default_factory=list)
    band: Band | None = None
    category: Category | None = None
    account: str | None = None
    tier: str | None = None
    survey: str | None = None
    person: str | None = None
    q: str | None = None
    tag: str | None = None
    # A theme's slug, or UNCLASSIFIED: read by the worker and given no theme.
    theme: str | None = None
    sentiment: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    # One value of a segments-page dimension (see insights.segments), e.g. plan = "Pro".
    segment: tuple[str, str] | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> ResponseFilter:
        """Read filters from query parameters, raising FieldError on bad values."""
        flt = cls()
        for key, value in params.items():
            if "\x00" in key or "\x00" in value:
                raise FieldError(
                    key.replace("\x00", ""), "must not contain the NUL character", where="query"
                )
        if params.get("since"):
            flt.since = _parse_date("since", params["since"])
        if params.get("until"):
            flt.until = _parse_date("until", params["until"])
        if flt.since and flt.until and flt.until < flt.since:
            raise FieldError("until", "is before since", where="query")
        if params.get("score"):
            for part in params["score"].split(","):
                if not part.strip().isdigit() or not 0 <= int(part) <= 10:
                    raise FieldError(
                        "score", f"{part!r} is not an integer from 0 to 10", where="query"
                    )
                flt.scores.append(int(part))
        if params.get("band"):
            try:
                flt.band = Band(params["band"])
            except ValueError:
                raise FieldError(
                    "band", "must be severe, moderate or mild", where="query"
                ) from None
        if params.get("category"):
            try:
                flt.category = Category(params["category"])
            except ValueError:
                raise FieldError(
                    "category", "must be promoter, passive or detractor", where="query"
                ) from None
        for name in ("account", "tier", "survey", "person", "q", "tag", "theme"):
            if params.get(name):
                setattr(flt, name, params[name].strip())
        if params.get("sentiment"):
            if params["sentiment"] not in SENTIMENTS:
                raise FieldError(
                    "sentiment", "must be negative, neutral or positive", where="query"
                )
            flt.sentiment = params["sentiment"]
        if params.get("segment"):
            dimension = check_dimension(params["segment"], "segment")
            if "segment_value" not in params:
                raise FieldError("segment_value", "is required with segment", where="query")
            flt.segment = (dimension, params["segment_value"])
        for key, value in params.items():
            if key.startswith(PROPERTY_PREFIX):
                prop = key[len(PROPERTY_PREFIX) :]
                if not prop or len(prop) > 100:
                    raise FieldError(
                        key, "needs a property name of 1 to 100 characters", where="query"
                    )
                flt.properties[prop] = value
        return flt

    def period(self, days: int) -> tuple[date, date]:
        """(since, until): the filter's, or the last `days` days up to today (org's calendar)."""
        until = self.until or today()
        return self.since or until - timedelta(days=days - 1), until

    def apply(self, qs: QuerySet[Response]) -> QuerySet[Response]:
        """Narrow a queryset of answers to this segment (dates aside: see `window`)."""
        if self.since:
            qs = qs.filter(created_at__gte=day_start(self.since))
        if self.until:
            qs = qs.filter(created_at__lt=day_start(self.until + timedelta(days=1)))
        return self.apply_segment(qs)

    def apply_segment(self, qs: QuerySet[Response]) -> QuerySet[Response]:
        """Narrow by everything but the period."""
        if self.scores:
            qs = qs.filter(score__in=self.scores)
        if self.band:
            low, high = BAND_RANGES[self.band]
            qs = qs.filter(score__gte=low, score__lte=high)
        if self.category:
            low, high = CATEGORY_RANGES[self.category]
            qs = qs.filter(score__gte=low, score__lte=high)
        if self.account:
            by_ext = Q(account__external_id=self.account)
            by_id = self.account.isdigit() and int(self.account) <= MAX_ID
            qs = qs.filter(by_ext | Q(account_id=int(self.account)) if by_id else by_ext)
        if self.tier:
            qs = qs.filter(account__tier=self.tier)
        if self.survey:
            qs = qs.filter(survey__slug=self.survey)
        if self.person:
            by_email = Q(person__email=self.person.lower())
            by_id = self.person.isdigit() and int(self.person) <= MAX_ID
            qs = qs.filter(by_email | Q(person_id=int(self.person)) if by_id else by_email)
        if self.q:
            qs = qs.filter(comment__icontains=self.q)
        if self.tag:
            # Tags are a JSON list; its text holds each tag as a JSON string, on both databases.
            ascii_only = connection.vendor != "postgresql"
            needle = json.dumps(self.tag, ensure_ascii=ascii_only)
            qs = qs.alias(_tags=Cast("tags", TextField())).filter(_tags__contains=needle)
        if self.theme:
            qs = qs.filter(theme_matches(self.theme))
        if self.sentiment:
            qs = qs.filter(sentiment=self.sentiment)
        if self.segment:
            dimension, value = self.segment
            qs = qs.alias(_segment=dimension_expr(dimension)).filter(_segment=value)
        for index, (key, value) in enumerate(self.properties.items()):
            # KeyTextTransform takes the key literally, so a key cannot smuggle in a lookup,
            # and compares the value as text, so "3" matches both 3 and "3".
            alias = f"_property_{index}"
            qs = qs.alias(**{alias: Cast(KeyTextTransform(key, "properties"), TextField())}).filter(
                **{alias: value}
            )
        return qs
