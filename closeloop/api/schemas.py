"""Typed shapes of what the API gives back, and of the batch envelope."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ninja import Schema
from pydantic import ConfigDict, Field

from closeloop.insights import health
from closeloop.integrations import tickets, usage
from closeloop.surveys.models import Account, Response
from closeloop.surveys.schemas import MAX_BATCH


class BatchIn(Schema):
    """The envelope only: each item is checked on its own (`ResponseIn`, NUL included),
    so one bad item is reported by index instead of refusing the batch."""

    model_config = ConfigDict(extra="forbid")

    responses: list[dict[str, Any]] = Field(max_length=MAX_BATCH)


class Rejection(Schema):
    index: int
    field: str
    reason: str


class BatchOut(Schema):
    accepted: int
    rejected: list[Rejection]
    ids: list[int | None]


class AccountChangeOut(Schema):
    kind: str
    at: datetime
    arr_before: float | None
    arr_after: float | None
    reason: str
    source: str


class AccountOut(Schema):
    id: int
    external_id: str | None
    name: str
    tier: str
    arr: float
    currency: str
    plan: str
    company_size: str
    industry: str
    customer_since: date | None
    owner_email: str | None
    executive_sponsor_email: str | None
    properties: dict[str, Any]
    churned_at: datetime | None
    churn_reason: str

    @staticmethod
    def resolve_arr(obj: Account) -> float:
        return obj.arr

    @staticmethod
    def resolve_owner_email(obj: Account) -> str | None:
        return obj.owner.email if obj.owner else None

    @staticmethod
    def resolve_executive_sponsor_email(obj: Account) -> str | None:
        return obj.executive_sponsor.email if obj.executive_sponsor else None


class AccountDetailOut(AccountOut):
    changes: list[AccountChangeOut] = Field(
        description="its history: churned, reactivated, contraction, expansion (newest first)"
    )
    health: dict[str, Any] | None = Field(
        description="score (0–100), band and reasons (GET /insights/health); null once churned"
    )

    usage: dict[str, Any] | None = Field(
        description="product usage from Segment: users, last_active, active days and people "
        "in the last 30 days and the 30 before, seats paid and their active share; null "
        "without users matched to the account"
    )

    tickets: dict[str, Any] | None = Field(
        description="support load: open tickets, the oldest, urgent or high ones open over "
        "a week, tickets opened, reopen rate and poor ratings in 90 days; null without tickets"
    )

    @staticmethod
    def resolve_tickets(obj: Account) -> dict[str, Any] | None:
        found = tickets.of(obj)
        return found.as_dict() if found is not None else None

    @staticmethod
    def resolve_usage(obj: Account) -> dict[str, Any] | None:
        found = usage.of(obj)
        return found.as_dict() if found is not None else None

    @staticmethod
    def resolve_health(obj: Account) -> dict[str, Any] | None:
        found = health.of(obj)
        if found is None:
            return None
        return {
            "score": found.score,
            "band": found.band,
            "reasons": [{"points": p, "reason": r} for p, r in found.reasons],
        }

    @staticmethod
    def resolve_changes(obj: Account) -> list[dict[str, Any]]:
        return [
            {
                "kind": c.kind,
                "at": c.at,
                "arr_before": c.arr_before_cents / 100 if c.arr_before_cents is not None else None,
                "arr_after": c.arr_after_cents / 100 if c.arr_after_cents is not None else None,
                "reason": c.reason,
                "source": c.source,
            }
            for c in obj.changes.order_by("-at", "-id")[:50]
        ]


class PersonOut(Schema):
    id: int
    email: str | None
    external_id: str | None
    name: str
    phone: str
    locale: str
    properties: dict[str, Any]
    account: AccountOut | None
    unsubscribed_at: datetime | None
    bounced_at: datetime | None


class PersonBrief(Schema):
    id: int
    email: str | None
    external_id: str | None
    name: str


class AccountBrief(Schema):
    id: int
    external_id: str | None
    name: str
    tier: str


class ThemeTagOut(Schema):
    slug: str
    name: str
    confidence: float | None = Field(
        None, description="the classifier's; null when a person tagged it"
    )
    source: str = Field(description="model or person")
    model_version: str


class SentenceOut(Schema):
    text: str
    sentiment: str = Field(description="negative, neutral or positive")
    score: float = Field(description="from -1 (most negative) to +1 (most positive)")


class SentimentOut(Schema):
    sentiment: str = Field(description="negative, neutral or positive")
    score: float | None = Field(description="from -1 (most negative) to +1 (most positive)")
    sentences: list[SentenceOut]
    model_version: str


class ResponseOut(Schema):
    id: int
    external_id: str | None
    score: int
    category: str
    band: str | None
    comment: str
    source: str
    survey: str
    person: PersonBrief
    account: AccountBrief | None
    properties: dict[str, Any]
    tags: list[str]
    themes: list[ThemeTagOut] = Field(description="themes found in the comment")
    themes_status: str = Field(
        description="pending until the worker has read the comment (themes and sentiment), "
        "then done (or failed); empty without a comment"
    )
    sentiment: SentimentOut | None = Field(
        description="the comment's and each sentence's; null until the worker has read it"
    )
    notes: str
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_themes(obj: Response) -> list[dict[str, Any]]:
        return obj.themes_json()

    @staticmethod
    def resolve_sentiment(obj: Response) -> dict[str, Any] | None:
        return obj.sentiment_json()

    @staticmethod
    def resolve_survey(obj: Response) -> str:
        return obj.survey.slug

    @staticmethod
    def resolve_category(obj: Response) -> str:
        return str(obj.category)

    @staticmethod
    def resolve_band(obj: Response) -> str | None:
        return str(obj.band) if obj.band else None


class ResponsePage(Schema):
    items: list[ResponseOut]
    next_cursor: str | None


class NpsFigures(Schema):
    since: date
    until: date
    nps: float
    promoters: int
    passives: int
    detractors: int
    responses: int
    promoter_percent: float
    passive_percent: float
    detractor_percent: float
    nps_ci_low: float
    nps_ci_high: float


class MetricsOut(NpsFigures):
    previous: NpsFigures
    change: float
    change_significant: bool
