"""Waves: choose who gets a survey (accounts, a segment, or a CSV file), check, then schedule.

A wave is planned in two steps the pages show one after the other: `plan()`
says how many people the choice reaches and how many would be skipped and
why, writing nothing; `start()` makes the wave and its requests in one
transaction. People without an email address are left out of a wave: there
is nothing to send them.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from closeloop.core.errors import FieldError
from closeloop.team.models import User

from . import csvio
from .ingest import PersonData, upsert_people
from .models import Person, Survey, SurveyRequest, Wave
from .schemas import PersonIn
from .sending import blocked_reasons, schedule

MAX_WAVE = 100_000
MAX_SPREAD_DAYS = 60
_PROPERTY_KEY = re.compile(r"^[A-Za-z0-9_.\- ]{1,100}$")


@dataclass
class Audience:
    """Who a wave goes to. Set one source: accounts, segment fields, or CSV people."""

    source: str = "segment"
    account_ids: list[int] = field(default_factory=list)
    tier: str = ""
    plan: str = ""
    industry: str = ""
    company_size: str = ""
    property_key: str = ""
    property_value: str = ""
    csv_people: list[PersonData] = field(default_factory=list)

    SOURCES = ("accounts", "segment", "csv")

    def check(self) -> None:
        """Refuse a choice that cannot be read, naming the field."""
        if self.source not in self.SOURCES:
            raise FieldError("source", "choose accounts, a segment or a CSV file")
        if self.source == "accounts" and not self.account_ids:
            raise FieldError("accounts", "choose at least one account")
        if self.source == "csv" and not self.csv_people:
            raise FieldError("file", "the CSV file holds no people")
        if self.source == "segment" and (self.property_key or self.property_value):
            if not _PROPERTY_KEY.match(self.property_key) or "__" in self.property_key:
                raise FieldError(
                    "property_key",
                    "a property name is 1–100 letters, digits, spaces, '.', '_' or '-'",
                )

    def query(self) -> QuerySet[Person]:
        """The people already stored who match (for a CSV: those the file names)."""
        people = Person.objects.filter(email__isnull=False).exclude(email="")
        if self.source == "accounts":
            return people.filter(account_id__in=self.account_ids)
        if self.source == "csv":
            emails = [p.email for p in self.csv_people if p.email]
            ids = [p.external_id for p in self.csv_people if p.external_id and not p.email]
            return people.filter(Q(email__in=emails) | Q(external_id__in=ids))
        for name in ("tier", "plan", "industry", "company_size"):
            value = getattr(self, name).strip()
            if value:
                people = people.filter(**{f"account__{name}__iexact": value})
        if self.property_key:
            key, value = self.property_key, self.property_value
            people = people.filter(
                Q(**{f"properties__{key}": value}) | Q(**{f"account__properties__{key}": value})
            )
        return people

    def describe(self) -> str:
        """A few words on who was chosen, kept as the wave's default name."""
        if self.source == "accounts":
            return f"{len(self.account_ids)} account(s)"
        if self.source == "csv":
            return f"{len(self.csv_people)} people from a CSV file"
        parts = [
            f"{name.replace('_', ' ')} {getattr(self, name)}"
            for name in ("tier", "plan", "industry", "company_size")
            if getattr(self, name)
        ]
        if self.property_key:
            parts.append(f"{self.property_key} = {self.property_value}")
        return ", ".join(parts) or "everyone with an email address"


def read_csv(raw: bytes) -> tuple[list[PersonData], str]:
    """People from an uploaded CSV (the people import's columns), and the file's text to keep
    between checking and scheduling; a bad row is refused."""
    try:
        text = csvio.decode(raw)
    except csvio.CsvFileError as exc:
        raise FieldError("file", str(exc)) from None
    valid, report = csvio.read("people", text)
    if report.problems:
        first = report.problems[0]
        more = f" (and {len(report.problems) - 1} more)" if len(report.problems) > 1 else ""
        where = f"row {first.row}, " if first.row else ""
        raise FieldError("file", f"{where}{first.column}: {first.reason}{more}")
    return [item.to_data() for _, item in valid if isinstance(item, PersonIn)], text


def _within_limit(reached: int) -> None:
    if reached > MAX_WAVE:
        raise FieldError("audience", f"a wave reaches at most {MAX_WAVE:,} people; narrow it down")


@dataclass
class Plan:
    """What a wave would do: how many are reached, sent, and skipped for which reason."""

    reached: int
    new_people: int
    send: int
    skipped: dict[str, int]

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


def plan(survey: Survey, audience: Audience) -> Plan:
    """Count a wave before making it. Writes nothing."""
    audience.check()
    people = list(audience.query()[: MAX_WAVE + 1])
    new_people = 0
    if audience.source == "csv":
        known = {p.email for p in people}
        new_people = len({p.email for p in audience.csv_people if p.email and p.email not in known})
    reached = len(people) + new_people
    _within_limit(reached)
    blocked = blocked_reasons(
        people, survey, SurveyRequest.Purpose.SURVEY, timezone.now(), pending_too=True
    )
    reasons = Counter(reason.split(":", 1)[0] for reason in blocked.values())
    return Plan(reached, new_people, reached - len(blocked), dict(reasons.most_common()))


def start(
    survey: Survey,
    audience: Audience,
    *,
    name: str = "",
    at: datetime | None = None,
    spread_days: int = 0,
    created_by: User | None = None,
) -> Wave:
    """Make a wave and schedule its people, in one transaction (CSV people are stored first)."""
    audience.check()
    if not 0 <= spread_days <= MAX_SPREAD_DAYS:
        raise FieldError("spread_days", f"spread a wave over 0 to {MAX_SPREAD_DAYS} days")
    if len(name) > 200:
        raise FieldError("name", "at most 200 characters")
    with transaction.atomic():
        if audience.source == "csv":
            upsert_people(audience.csv_people)
        people = list(audience.query().select_related("account")[: MAX_WAVE + 1])
        if not people:
            raise FieldError("audience", "nobody with an email address matches this choice")
        _within_limit(len(people))
        wave = Wave.objects.create(
            survey=survey,
            name=name or audience.describe(),
            starts_at=at or timezone.now(),
            spread_days=spread_days,
            created_by=created_by,
        )
        schedule(people, survey, at=wave.starts_at, spread_days=spread_days, wave=wave)
    return wave


def cancel_rest(wave: Wave, user: User) -> int:
    """Stop a wave: its requests not yet sent are cancelled (kept, with who did it)."""
    return SurveyRequest.objects.filter(wave=wave, status=SurveyRequest.Status.SCHEDULED).update(
        status=SurveyRequest.Status.CANCELLED,
        status_reason=f"cancelled by {user.get_full_name() or user.get_username()}"[:200],
    )
