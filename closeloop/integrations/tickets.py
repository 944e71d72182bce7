"""Support tickets (docs/integrations.md, "Support tickets"): from Zendesk and Intercom
webhooks and from `POST /api/v1/tickets` for any other desk.

Every source becomes the same `Ticket` state (status, priority, opened and closed,
reopens, the customer's satisfaction rating), kept per the sender's ticket id. A
delivery older than the state already held changes nothing (stale), so webhooks that
arrive out of order cannot undo a newer status. A ticket is placed at an account by its
organisation (an account's external id, or an id mapped on the integrations page) or by
its requester's email; a ticket that cannot be placed is kept and waits to be mapped.

What the tickets say per account, for account health: open tickets and the oldest's
age, urgent or high tickets open for more than a week, the reopen rate and poor
satisfaction ratings in the last 90 days.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Min, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from closeloop.core.errors import FieldError
from closeloop.surveys.models import Account
from closeloop.surveys.schemas import when_it_happened

from .matching import account_for, text
from .models import IntegrationEvent, Received, Ticket

STATUSES = {
    "new": Ticket.Status.OPEN,
    "open": Ticket.Status.OPEN,
    "pending": Ticket.Status.OPEN,
    "hold": Ticket.Status.OPEN,
    "snoozed": Ticket.Status.OPEN,
    "solved": Ticket.Status.CLOSED,
    "closed": Ticket.Status.CLOSED,
}
PRIORITIES = {p.value for p in Ticket.Priority}
WINDOW = timedelta(days=90)
STUCK = timedelta(days=7)


@dataclass
class TicketState:
    """What one delivery says about a ticket, whatever its source."""

    ticket_id: str
    updated_at: datetime
    status: str = ""  # open / closed, "" when the delivery does not say
    priority: str = ""
    subject: str = ""
    opened_at: datetime | None = None
    closed_at: datetime | None = None
    csat: int | None = None  # 1–5
    org_ref: str = ""
    email: str = ""


def moment(value: Any, field: str) -> datetime | None:
    """An ISO 8601 time or Unix seconds, in the past; FieldError naming `field`."""
    if value in (None, ""):
        return None
    at: datetime | None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            at = datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            at = None
    elif isinstance(value, str):
        try:
            at = parse_datetime(value.strip())
        except ValueError:
            at = None
    else:
        at = None
    if at is None:
        raise FieldError(field, "not a time (ISO 8601 or Unix seconds)")
    try:
        return when_it_happened(at)
    except ValueError as exc:
        raise FieldError(field, str(exc)) from None


def status_of(value: Any, field: str = "status") -> str:
    if value in (None, ""):
        return ""
    found = STATUSES.get(text(value).lower())
    if found is None:
        raise FieldError(field, "one of " + ", ".join(sorted(STATUSES)))
    return found


def priority_of(value: Any, field: str = "priority") -> str:
    if value in (None, ""):
        return ""
    found = text(value).lower()
    if found not in PRIORITIES:
        raise FieldError(field, "one of " + ", ".join(sorted(PRIORITIES)))
    return found


def csat_of(value: Any, field: str = "csat") -> int | None:
    """A rating from 1 to 5; Zendesk's good / bad are 5 and 1."""
    if value in (None, "", "unoffered", "offered"):
        return None
    if isinstance(value, str) and value.strip().lower() in ("good", "bad"):
        return 5 if value.strip().lower() == "good" else 1
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5:
        return value
    raise FieldError(field, "a rating from 1 to 5 (or good / bad)")


def record(source: str, state: TicketState) -> tuple[Ticket, str]:
    """Apply one delivery to its ticket (in the caller's transaction): its status says
    what became of it — applied, stale (older than what is held), or unmatched (kept,
    waiting for its account)."""
    ticket = (
        Ticket.objects.select_for_update().filter(source=source, ticket_id=state.ticket_id).first()
    )
    if ticket is None:
        ticket = Ticket(
            source=source,
            ticket_id=state.ticket_id,
            opened_at=state.opened_at or state.updated_at,
            updated_at=state.updated_at,
        )
    elif state.updated_at < ticket.updated_at:
        return ticket, IntegrationEvent.Status.STALE
    if state.status == Ticket.Status.OPEN and ticket.status == Ticket.Status.CLOSED and ticket.pk:
        ticket.reopens += 1
        ticket.closed_at = None
    if state.status:
        ticket.status = state.status
    if state.status == Ticket.Status.CLOSED and ticket.closed_at is None:
        ticket.closed_at = state.closed_at or state.updated_at
    if state.opened_at:
        ticket.opened_at = state.opened_at
    for name in ("priority", "subject", "org_ref", "email"):
        value = getattr(state, name)
        if value:
            setattr(ticket, name, value)
    if state.csat is not None:
        ticket.csat = state.csat
    ticket.updated_at = state.updated_at
    if ticket.account_id is None:
        ticket.account = account_for(ticket.org_ref, f"{source}_organization_id", ticket.email)
    ticket.save()
    if ticket.account_id is None:
        return ticket, IntegrationEvent.Status.UNMATCHED
    return ticket, IntegrationEvent.Status.APPLIED


def receive(
    source: str, event_id: str, kind: str, body: dict[str, Any], state: TicketState
) -> Received:
    """Store a webhook delivery once per event id, then apply it to its ticket."""
    known = IntegrationEvent.objects.filter(source=source, event_id=event_id).first()
    if known is not None:
        return Received(known, False)
    try:
        with transaction.atomic():
            ticket, status = record(source, state)
            event = IntegrationEvent.objects.create(
                source=source,
                event_id=event_id[:255],
                type=kind[:100],
                occurred_at=state.updated_at,
                object_id=state.ticket_id[:255],
                customer_ref=(state.org_ref or state.email)[:255],
                email=state.email[:254],
                payload=body,
                status=status,
                note=f"ticket {state.ticket_id}: {ticket.status}"
                if status != IntegrationEvent.Status.STALE
                else "a later update of this ticket was already applied",
                account=ticket.account,
                applied_at=timezone.now() if status == IntegrationEvent.Status.APPLIED else None,
            )
    except IntegrityError:  # the same delivery, twice at once: the other one won
        return Received(IntegrationEvent.objects.get(source=source, event_id=event_id), False)
    return Received(event, True)


def zendesk_state(body: dict[str, Any]) -> tuple[str, str, TicketState]:
    """(event id, type, state) of a Zendesk webhook: an event subscription's
    `zen:event-type:ticket.*` (the ticket in `detail`), or a trigger's body shaped as
    docs/integrations.md shows (`{"ticket": {...}}`)."""
    if isinstance(body.get("detail"), dict):
        detail, kind = body["detail"], text(body.get("type"), 100)
        event_id = text(body.get("id"))
        if not event_id:
            raise FieldError("id", "a Zendesk event has an id")
        when = moment(body.get("time"), "time") or moment(
            detail.get("updated_at"), "detail.updated_at"
        )
        where = "detail"
    elif isinstance(body.get("ticket"), dict):
        detail, kind, where = body["ticket"], "trigger", "ticket"
        when = moment(detail.get("updated_at"), "ticket.updated_at")
        event_id = ""
    else:
        raise FieldError("body", "a Zendesk ticket event (detail) or trigger body (ticket)")
    ticket_id = text(detail.get("id"))
    if not ticket_id:
        raise FieldError(f"{where}.id", "the ticket's id is required")
    if when is None:
        raise FieldError(f"{where}.updated_at", "when the ticket changed is required")
    state = TicketState(
        ticket_id=ticket_id,
        updated_at=when,
        status=status_of(detail.get("status"), f"{where}.status"),
        priority=priority_of(detail.get("priority"), f"{where}.priority"),
        subject=text(detail.get("subject"), 300),
        opened_at=moment(detail.get("created_at"), f"{where}.created_at"),
        csat=csat_of(
            (detail.get("satisfaction_rating") or {}).get("score")
            if isinstance(detail.get("satisfaction_rating"), dict)
            else detail.get("satisfaction"),
            f"{where}.satisfaction",
        ),
        org_ref=text(detail.get("organization_id") or detail.get("organization")),
        email=text(detail.get("requester_email"), 254).lower(),
    )
    event = (body.get("event") or {}) if isinstance(body.get("event"), dict) else {}
    if kind.endswith("ticket.status_changed") and event.get("current"):
        state.status = status_of(event["current"], "event.current")
    if kind.endswith("ticket.priority_changed") and event.get("current"):
        state.priority = priority_of(event["current"], "event.current")
    if not event_id:  # a trigger's body has none: the ticket's version is the delivery
        event_id = f"{ticket_id}@{when.isoformat()}:{state.status}"
    return event_id, kind, state


def intercom_state(body: dict[str, Any]) -> tuple[str, str, TicketState]:
    """(event id, topic, state) of an Intercom `notification_event` about a
    conversation (conversation.user.created, conversation.admin.closed, …)."""
    event_id, topic = text(body.get("id")), text(body.get("topic"), 100)
    if not event_id or not topic:
        raise FieldError("id", "an Intercom notification has an id and a topic")
    item = ((body.get("data") or {}) if isinstance(body.get("data"), dict) else {}).get("item")
    if not isinstance(item, dict) or not text(item.get("id")):
        raise FieldError("data.item.id", "the conversation's id is required")
    when = (
        moment(item.get("updated_at"), "data.item.updated_at")
        or moment(body.get("created_at"), "created_at")
        or timezone.now()
    )
    author = (
        ((item.get("source") or {}).get("author") or {})
        if isinstance(item.get("source"), dict)
        else {}
    )
    rating = item.get("conversation_rating")
    state = TicketState(
        ticket_id=text(item.get("id")),
        updated_at=when,
        status=status_of(item.get("state"), "data.item.state"),
        priority="high" if item.get("priority") == "priority" else "",
        subject=text(item.get("title") or (item.get("source") or {}).get("subject"), 300)
        if isinstance(item.get("source"), dict) or item.get("title")
        else "",
        opened_at=moment(item.get("created_at"), "data.item.created_at"),
        csat=csat_of(rating.get("rating"), "data.item.conversation_rating.rating")
        if isinstance(rating, dict)
        else None,
        org_ref=text((item.get("company") or {}).get("id"))
        if isinstance(item.get("company"), dict)
        else "",
        email=text(author.get("email"), 254).lower() if isinstance(author, dict) else "",
    )
    return event_id, topic, state


def map_customer(source: str, ref: str, account: Account) -> int:
    """Someone says which account a desk's organisation (or requester email) is: the
    waiting tickets are placed, and an organisation is remembered for the next ones."""
    ref = ref.strip()
    if not ref:
        raise FieldError("customer", "name the organisation id or email")
    waiting = Ticket.objects.filter(source=source, account__isnull=True).filter(
        Q(org_ref=ref) | Q(org_ref="", email__iexact=ref)
    )
    if "@" not in ref:
        key = f"{source}_organization_id"
        taken = Account.objects.filter(**{f"properties__{key}": ref}).exclude(pk=account.pk)
        if taken.exists():
            raise FieldError("customer", f"{ref} is already mapped to {taken.first()}")
        account.properties = {**account.properties, key: ref}
        account.save(update_fields=["properties", "updated_at"])
    IntegrationEvent.objects.filter(
        source=source, status=IntegrationEvent.Status.UNMATCHED, customer_ref=ref
    ).update(status=IntegrationEvent.Status.APPLIED, account=account, applied_at=timezone.now())
    return waiting.update(account=account)


@dataclass(frozen=True)
class Load:
    """What an account's tickets say (the last 90 days, and those still open)."""

    open: int
    oldest_open: datetime | None
    stuck: int  # urgent or high, open for more than a week
    recent: int  # opened in the last 90 days
    reopened: int  # of those, reopened at least once
    poor_ratings: int  # rated 1 or 2 of 5, last 90 days
    rated: int

    @property
    def reopen_rate(self) -> float | None:
        return self.reopened / self.recent if self.recent else None

    def as_dict(self) -> dict[str, object]:
        return {
            "open": self.open,
            "oldest_open": self.oldest_open,
            "urgent_or_high_open_over_7_days": self.stuck,
            "opened_90_days": self.recent,
            "reopen_rate_90_days": round(self.reopen_rate, 3)
            if self.reopen_rate is not None
            else None,
            "poor_ratings_90_days": self.poor_ratings,
            "rated_90_days": self.rated,
        }


def by_account(
    accounts: QuerySet[Account] | Iterable[Account] | None = None, now: datetime | None = None
) -> dict[int, Load]:
    """The ticket load of each account with tickets (all, or `accounts`), one query."""
    now = now or timezone.now()
    since = now - WINDOW
    # Open at `now`: opened by then and not closed, or closed after it (a backtest
    # reads the past; the ratings and reopens are the ticket's latest).
    is_open = Q(opened_at__lte=now) & (Q(status=Ticket.Status.OPEN) | Q(closed_at__gt=now))
    rows = Ticket.objects.filter(account__isnull=False, opened_at__lte=now).filter(
        is_open | Q(opened_at__gt=since) | Q(updated_at__gt=since)
    )
    if isinstance(accounts, QuerySet):
        rows = rows.filter(account_id__in=accounts.values("pk"))
    elif accounts is not None:
        rows = rows.filter(account_id__in=[a.pk for a in accounts])
    recent = Q(opened_at__gt=since)
    rated = Q(csat__isnull=False, updated_at__gt=since, updated_at__lte=now)
    found = {}
    for row in rows.values("account_id").annotate(
        open=Count("id", filter=is_open),
        oldest=Min("opened_at", filter=is_open),
        stuck=Count(
            "id", filter=is_open & Q(priority__in=["urgent", "high"], opened_at__lt=now - STUCK)
        ),
        recent=Count("id", filter=recent),
        reopened=Count("id", filter=recent & Q(reopens__gt=0)),
        poor=Count("id", filter=rated & Q(csat__lte=2)),
        rated=Count("id", filter=rated),
    ):
        found[row["account_id"]] = Load(
            open=row["open"],
            oldest_open=row["oldest"],
            stuck=row["stuck"],
            recent=row["recent"],
            reopened=row["reopened"],
            poor_ratings=row["poor"],
            rated=row["rated"],
        )
    return found


def of(account: Account, now: datetime | None = None) -> Load | None:
    return by_account([account], now).get(account.pk)
