"""What callers may send to create people, accounts and answers, validated field by field.

The API and the CSV import share these shapes, so a row is accepted or refused
for the same reasons whichever way it arrives. Unknown fields are refused.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.utils import timezone
from pydantic import Field, StrictInt, field_validator, model_validator

from closeloop.core.schemas import StrictSchema

from .ingest import AccountData, PersonData, ResponseData

PropertyValue = str | int | float | bool | None
Properties = Annotated[dict[Annotated[str, Field(max_length=100)], PropertyValue], Field()]
MAX_BATCH = 1000
EARLIEST_ANSWER = datetime(2000, 1, 1, tzinfo=UTC)


def past_problem(value: datetime) -> str | None:
    """Why `value` cannot be when something already happened (an answer given, a survey
    sent): before 2000-01-01, or in the future beyond five minutes of clock skew."""
    if value < EARLIEST_ANSWER:
        return "is before 2000-01-01, earlier than any NPS answer"
    if value > timezone.now() + timedelta(minutes=5):
        return "is in the future"
    return None


def when_it_happened(value: datetime | None) -> datetime | None:
    """A past moment in UTC (a naive one is taken as UTC); ValueError naming why not."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    problem = past_problem(value)
    if problem:
        raise ValueError(problem)
    return value.astimezone(UTC)


class AccountIn(StrictSchema):
    external_id: str | None = Field(None, min_length=1, max_length=200)
    name: str | None = Field(None, min_length=1, max_length=200)
    tier: str | None = Field(None, max_length=40)
    arr: Decimal | None = Field(
        None, ge=0, le=Decimal("1e15"), decimal_places=2, description="ARR in currency units"
    )
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    plan: str | None = Field(None, max_length=100)
    company_size: str | None = Field(None, max_length=40)
    industry: str | None = Field(None, max_length=100)
    customer_since: date | None = None
    owner_email: str | None = Field(None, max_length=254, description="A closeloop user's email")
    executive_sponsor_email: str | None = Field(
        None,
        max_length=254,
        description="A closeloop user told of detractors when the account is among the "
        "highest-value (triage policy: executive_sponsor)",
    )
    properties: Properties = Field(default_factory=dict)
    churned_at: datetime | None = Field(
        None, description="when the account stopped being a customer (UTC when no offset)"
    )
    churn_reason: str | None = Field(None, max_length=500, description="why they left")
    churned: bool | None = Field(
        None, description="false brings a churned account back (reactivation)"
    )

    @model_validator(mode="after")
    def _identified(self) -> AccountIn:
        if not self.external_id and not self.name:
            raise ValueError("an account needs an external_id or a name")
        return self

    @field_validator("churned_at")
    @classmethod
    def _churned_when(cls, value: datetime | None) -> datetime | None:
        return when_it_happened(value)

    @model_validator(mode="after")
    def _churn_consistent(self) -> AccountIn:
        if self.churned is False and self.churned_at is not None:
            raise ValueError("churned: false (a reactivation) cannot come with a churned_at")
        if self.churned is True and self.churned_at is None:
            raise ValueError("churned: true needs churned_at, when it happened")
        return self

    def to_data(self) -> AccountData:
        return AccountData(
            external_id=self.external_id,
            name=self.name,
            tier=self.tier,
            arr_cents=int(self.arr * 100) if self.arr is not None else None,
            currency=self.currency,
            plan=self.plan,
            company_size=self.company_size,
            industry=self.industry,
            customer_since=self.customer_since,
            owner_email=self.owner_email.lower() if self.owner_email else None,
            sponsor_email=(
                self.executive_sponsor_email.lower() if self.executive_sponsor_email else None
            ),
            properties=dict(self.properties),
            churned_at=self.churned_at,
            churn_reason=self.churn_reason,
            reactivated=self.churned is False,
        )


class PersonIn(StrictSchema):
    email: str | None = Field(None, max_length=254)
    external_id: str | None = Field(None, min_length=1, max_length=200)
    name: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=32)
    locale: str | None = Field(
        None, max_length=16, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$"
    )
    properties: Properties = Field(default_factory=dict)
    account: AccountIn | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            validate_email(value)
        except DjangoValidationError:
            raise ValueError("is not a valid email address") from None
        return value.lower()

    @model_validator(mode="after")
    def _identified(self) -> PersonIn:
        if not self.email and not self.external_id:
            raise ValueError("a person needs an email or an external_id")
        return self

    def to_data(self) -> PersonData:
        return PersonData(
            email=self.email,
            external_id=self.external_id,
            name=self.name,
            phone=self.phone,
            locale=self.locale,
            properties=dict(self.properties),
            account=self.account.to_data() if self.account else None,
        )


class ResponseIn(StrictSchema):
    person: PersonIn
    score: StrictInt = Field(ge=0, le=10)
    comment: str = Field("", max_length=10_000)
    created_at: datetime | None = Field(None, description="When it was answered, for backfills")
    external_id: str | None = Field(None, min_length=1, max_length=200)
    survey: str | None = Field(
        None, min_length=1, max_length=100, description="Survey slug; default 'nps'"
    )
    tags: list[Annotated[str, Field(min_length=1, max_length=50)]] = Field(
        default_factory=list, max_length=20
    )
    notes: str = Field("", max_length=10_000)

    @field_validator("created_at")
    @classmethod
    def _created_at(cls, value: datetime | None) -> datetime | None:
        return when_it_happened(value)

    def to_data(self) -> ResponseData:
        return ResponseData(
            person=self.person.to_data(),
            score=self.score,
            comment=self.comment,
            created_at=self.created_at,
            external_id=self.external_id,
            survey=self.survey,
            tags=list(self.tags),
            notes=self.notes,
        )
