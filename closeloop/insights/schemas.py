"""What callers may send to record an incident; the API and the page share it."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field, ValidationInfo, field_validator

from closeloop.core.periods import org_zone
from closeloop.core.schemas import StrictSchema
from closeloop.surveys.schemas import EARLIEST_ANSWER
from closeloop.team.models import User

from .models import Incident

LATEST = datetime(3000, 1, 1, tzinfo=UTC)


class IncidentIn(StrictSchema):
    kind: Incident.Kind = Field(description="incident, outage, release or price_change")
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=10_000)
    started_at: datetime = Field(description="without a zone: the organisation's time zone")
    ended_at: datetime | None = None

    @field_validator("started_at", "ended_at", mode="after")
    @classmethod
    def _zoned(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=org_zone())
        if value < EARLIEST_ANSWER:
            raise ValueError(f"must be after {EARLIEST_ANSWER:%Y-%m-%d}")
        if value >= LATEST:
            raise ValueError(f"must be before {LATEST:%Y-%m-%d}")
        # Stored in UTC: PostgreSQL refuses offsets beyond ±15:59 that Python accepts.
        return value.astimezone(UTC)

    @field_validator("ended_at", mode="after")
    @classmethod
    def _ends_after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        started = info.data.get("started_at")
        if value is not None and started is not None and value < started:
            raise ValueError("must not be before started_at")
        return value

    def create(self, by: User | None = None) -> Incident:
        """Save the incident."""
        return Incident.objects.create(**self.model_dump(), created_by=by)
