"""POST /api/v1/tickets: support tickets from any desk (docs/integrations.md, "Support
tickets"). Zendesk and Intercom send theirs to their webhooks (`integrations.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Router, Schema
from pydantic import field_validator

from closeloop.core.errors import FieldError
from closeloop.core.schemas import StrictSchema
from closeloop.integrations import tickets
from closeloop.integrations.models import IntegrationEvent
from closeloop.surveys.schemas import when_it_happened

from .access import require_write

router = Router(tags=["integrations"])


class TicketIn(StrictSchema):
    id: str = Field(min_length=1, max_length=255, description="the desk's ticket id")
    account_external_id: str | None = Field(None, max_length=255)
    email: str | None = Field(None, max_length=254, description="the requester's email")
    subject: str = Field("", max_length=300)
    status: str = Field(description="new, open, pending, hold, snoozed, solved or closed")
    priority: str | None = Field(None, description="low, normal, high or urgent")
    opened_at: datetime = Field(description="ISO 8601 or Unix seconds")
    closed_at: datetime | None = None
    csat: int | None = Field(None, ge=1, le=5, description="the customer's rating, 1–5")
    updated_at: datetime | None = Field(
        None, description="when the desk last changed it (default: now); older is ignored"
    )

    @field_validator("opened_at", "closed_at", "updated_at")
    @classmethod
    def _happened(cls, value: datetime | None) -> datetime | None:
        return when_it_happened(value)


class TicketOut(Schema):
    id: str
    account: int | None
    status: str
    reopens: int
    result: str = Field(description="applied, unmatched (kept for mapping) or stale")


def _state(payload: TicketIn) -> tickets.TicketState:
    opened, closed = payload.opened_at, payload.closed_at
    if closed is not None and closed < opened:
        raise FieldError("closed_at", "before opened_at")
    if not (payload.account_external_id or payload.email):
        raise FieldError("account_external_id", "give the account's external id or an email")
    return tickets.TicketState(
        ticket_id=payload.id,
        updated_at=payload.updated_at or timezone.now(),
        status=tickets.status_of(payload.status),
        priority=tickets.priority_of(payload.priority),
        subject=payload.subject,
        opened_at=opened,
        closed_at=closed,
        csat=tickets.csat_of(payload.csat),
        org_ref=payload.account_external_id or "",
        email=(payload.email or "").lower(),
    )


@router.post("/tickets", response=TicketOut, summary="Record a support ticket")
def post_ticket(request: HttpRequest, payload: TicketIn) -> dict[str, Any]:
    """Create or update a ticket by its id. A ticket whose account is not known yet is
    kept and waits on Settings → Integrations; an update older than the one held is
    ignored (`stale`)."""
    require_write(request)
    state = _state(payload)
    with transaction.atomic():
        ticket, result = tickets.record(IntegrationEvent.Source.API, state)
    return {
        "id": ticket.ticket_id,
        "account": ticket.account_id,
        "status": ticket.status,
        "reopens": ticket.reopens,
        "result": result,
    }
