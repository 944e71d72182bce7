"""Stripe webhooks (docs/integrations.md): payments, downgrades, cancellations and churn.

Each event is verified with Stripe's own library (`stripe.WebhookSignature`, what
`stripe.Webhook.construct_event` calls: the `Stripe-Signature` header, `t=…,v1=…`, an
HMAC-SHA256 of `t.payload` with the endpoint's signing secret, within 5 minutes),
stored once per event id, matched to an account, then applied:

- `customer.subscription.deleted`: the account churned, when the subscription ended,
  with `cancellation_details.feedback` and `comment` as the reason;
- `customer.subscription.updated`: a lower ARR than before is a contraction (and a
  downgrade signal), a higher one an expansion; `cancel_at_period_end` turning on is a
  scheduled cancellation;
- `invoice.payment_failed`, `customer.subscription.trial_will_end`,
  `charge.dispute.created`: signals on the account.

An account is found by the Stripe customer id kept in its properties
(`stripe_customer_id`), or given as its external id, or by the email on the event
(an invoice's `customer_email`, a charge's billing email). An event whose customer is
not known yet is kept as unmatched and applied once someone maps the customer to an
account on the integrations page. An event about a subscription that is older than
one already applied for it changes nothing (stale).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import stripe
from django.db import IntegrityError, transaction
from django.utils import timezone

from closeloop.core.errors import FieldError
from closeloop.core.schemas import NUL_REFUSAL, has_nul
from closeloop.surveys.models import Account, AccountChange

from .matching import account_for
from .models import AccountSignal, IntegrationEvent, Received

SOURCE = IntegrationEvent.Source.STRIPE
CUSTOMER_KEY = "stripe_customer_id"
USED = {
    "customer.subscription.deleted",
    "customer.subscription.updated",
    "invoice.payment_failed",
    "customer.subscription.trial_will_end",
    "charge.dispute.created",
}
SUBSCRIPTION_EVENTS = {"customer.subscription.deleted", "customer.subscription.updated"}
PER_YEAR = {"day": 365, "week": 52, "month": 12, "year": 1}


class BadSignature(Exception):
    """The request is not from Stripe (or not for this endpoint's secret)."""


def _at(seconds: Any) -> datetime | None:
    return datetime.fromtimestamp(int(seconds), tz=UTC) if seconds else None


def verify(payload: bytes, signature: str, secret: str) -> dict[str, Any]:
    """The event, its signature checked by Stripe's library (within its 5-minute
    tolerance); BadSignature, or ValueError for a body that is not a JSON object."""
    try:
        stripe.WebhookSignature.verify_header(
            payload, signature, secret, stripe.Webhook.DEFAULT_TOLERANCE
        )
    except stripe.SignatureVerificationError as exc:
        raise BadSignature(str(exc)) from exc
    found = json.loads(payload)
    if not isinstance(found, dict):
        raise ValueError("not a JSON object")
    return found


def receive(payload: bytes, signature: str, secret: str) -> Received:
    """Verify, store once, match and apply one webhook delivery."""
    body = verify(payload, signature, secret)
    if b"\\u0000" in payload and has_nul(body):
        raise FieldError("event", NUL_REFUSAL)
    event_id, kind = body.get("id"), body.get("type")
    obj = (body.get("data") or {}).get("object") or {}
    if not isinstance(event_id, str) or not isinstance(kind, str) or not isinstance(obj, dict):
        raise FieldError("event", "not a Stripe event: needs id, type and data.object")
    try:
        occurred = _at(body.get("created")) or timezone.now()
    except (TypeError, ValueError, OverflowError, OSError):
        raise FieldError("created", "not a Unix time") from None
    known = IntegrationEvent.objects.filter(source=SOURCE, event_id=event_id).first()
    if known is not None:
        return Received(known, False)
    customer = obj.get("customer") if kind != "customer.deleted" else obj.get("id")
    event = IntegrationEvent(
        source=SOURCE,
        event_id=event_id[:255],
        type=kind[:100],
        occurred_at=occurred,
        object_id=str(obj.get("id") or "")[:255],
        customer_ref=str(customer or "")[:255],
        email=_email(obj)[:254],
        payload=body,
        status=IntegrationEvent.Status.IGNORED,
    )
    try:
        with transaction.atomic():
            event.save()
    except IntegrityError:  # the same event, delivered twice at once: the other one won
        return Received(IntegrationEvent.objects.get(source=SOURCE, event_id=event_id), False)
    if kind in USED:
        try:
            with transaction.atomic():
                apply(event)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # Kept, never lost: the payload is on the integrations page to look at.
            event.status = IntegrationEvent.Status.IGNORED
            event.note = f"could not be read: {type(exc).__name__} {exc}"[:300]
            event.save(update_fields=["status", "note"])
    return Received(event, True)


def _email(obj: Mapping[str, Any]) -> str:
    email = obj.get("customer_email") or (obj.get("billing_details") or {}).get("email") or ""
    return str(email).strip().lower()


def apply(event: IntegrationEvent) -> None:
    """Match the event to its account and record what it says (inside the caller's
    transaction); the event's status says what became of it."""
    account = account_for(event.customer_ref, CUSTOMER_KEY, event.email)
    if account is None:
        event.status, event.note = IntegrationEvent.Status.UNMATCHED, "no account for customer"
        event.save(update_fields=["status", "note"])
        return
    event.account = account
    if event.type in SUBSCRIPTION_EVENTS and _newer_applied(event):
        event.status = IntegrationEvent.Status.STALE
        event.note = "an event about this subscription that happened later was already applied"
        event.save(update_fields=["status", "note", "account"])
        return
    obj = event.payload["data"]["object"]
    note = HANDLERS[event.type](event, account, obj)
    event.status, event.note, event.applied_at = (
        IntegrationEvent.Status.APPLIED,
        note,
        timezone.now(),
    )
    event.save(update_fields=["status", "note", "account", "applied_at"])


def _newer_applied(event: IntegrationEvent) -> bool:
    return IntegrationEvent.objects.filter(
        source=SOURCE,
        object_id=event.object_id,
        status=IntegrationEvent.Status.APPLIED,
        occurred_at__gt=event.occurred_at,
    ).exists()


def _signal(event: IntegrationEvent, account: Account, kind: str, at: datetime, detail: str) -> str:
    AccountSignal.objects.create(
        account=account, kind=kind, at=at, detail=detail[:300], event=event
    )
    return detail


def _money(cents: Any, currency: Any) -> str:
    try:
        return f"{str(currency or '').upper()} {int(cents) / 100:,.2f}".strip()
    except (TypeError, ValueError):
        return ""


def _subscription_deleted(event: IntegrationEvent, account: Account, obj: dict[str, Any]) -> str:
    ended = _at(obj.get("ended_at")) or _at(obj.get("canceled_at")) or event.occurred_at
    details = obj.get("cancellation_details") or {}
    reason = "; ".join(
        str(part) for part in (details.get("feedback"), details.get("comment")) if part
    )[:500]
    if account.churned_at is not None and account.churned_at <= ended:
        return "already churned"
    AccountChange.objects.create(
        account=account,
        kind=AccountChange.Kind.CHURNED,
        at=ended,
        arr_before_cents=account.arr_cents,
        reason=reason,
        source=SOURCE,
    )
    account.churned_at, account.churn_reason = ended, reason or account.churn_reason
    account.save(update_fields=["churned_at", "churn_reason", "updated_at"])
    return f"churned {ended:%Y-%m-%d}" + (f": {reason}" if reason else "")


def annual_cents(subscription: Mapping[str, Any]) -> int | None:
    """What a subscription's items cost in a year, in the smallest currency unit."""
    items = (subscription.get("items") or {}).get("data")
    if not isinstance(items, list):
        return None
    total = 0
    for item in items:
        price = item.get("price") or item.get("plan") or {}
        amount = price.get("unit_amount", price.get("amount"))
        interval = (price.get("recurring") or {}).get("interval") or price.get("interval")
        count = (price.get("recurring") or {}).get("interval_count") or price.get(
            "interval_count", 1
        )
        if amount is None or interval not in PER_YEAR:
            continue
        total += int(amount) * int(item.get("quantity") or 1) * PER_YEAR[interval] // int(count)
    return total


def _subscription_updated(event: IntegrationEvent, account: Account, obj: dict[str, Any]) -> str:
    previous = (event.payload.get("data") or {}).get("previous_attributes") or {}
    notes = []
    if "items" in previous:
        before = annual_cents({"items": previous["items"]})
        after = annual_cents(obj)
        if before is not None and after is not None and before != after:
            kind = (
                AccountChange.Kind.CONTRACTION if after < before else AccountChange.Kind.EXPANSION
            )
            AccountChange.objects.create(
                account=account,
                kind=kind,
                at=event.occurred_at,
                arr_before_cents=before,
                arr_after_cents=after,
                source=SOURCE,
            )
            account.arr_cents = after
            account.save(update_fields=["arr_cents", "updated_at"])
            notes.append(f"{kind}: ARR {before / 100:,.0f} → {after / 100:,.0f}")
            if kind == AccountChange.Kind.CONTRACTION:
                _signal(event, account, AccountSignal.Kind.DOWNGRADE, event.occurred_at, notes[-1])
    if obj.get("cancel_at_period_end") and previous.get("cancel_at_period_end") is False:
        details = obj.get("cancellation_details") or {}
        why = details.get("feedback") or details.get("comment") or ""
        ends = _at(obj.get("cancel_at")) or _at(obj.get("current_period_end"))
        detail = "cancels at the end of the period" + (f" ({ends:%Y-%m-%d})" if ends else "")
        notes.append(
            _signal(
                event,
                account,
                AccountSignal.Kind.CANCEL_SCHEDULED,
                event.occurred_at,
                detail + (f": {why}" if why else ""),
            )
        )
    return "; ".join(notes) or "no change closeloop tracks"


def _payment_failed(event: IntegrationEvent, account: Account, obj: dict[str, Any]) -> str:
    amount = _money(obj.get("amount_due"), obj.get("currency"))
    attempt = obj.get("attempt_count")
    detail = f"payment of {amount} failed" + (f" (attempt {attempt})" if attempt else "")
    return _signal(event, account, AccountSignal.Kind.PAYMENT_FAILED, event.occurred_at, detail)


def _trial_ending(event: IntegrationEvent, account: Account, obj: dict[str, Any]) -> str:
    ends = _at(obj.get("trial_end"))
    detail = "trial ends" + (f" {ends:%Y-%m-%d}" if ends else " soon")
    return _signal(event, account, AccountSignal.Kind.TRIAL_ENDING, event.occurred_at, detail)


def _dispute(event: IntegrationEvent, account: Account, obj: dict[str, Any]) -> str:
    amount = _money(obj.get("amount"), obj.get("currency"))
    detail = f"payment of {amount} disputed: {obj.get('reason') or 'no reason given'}"
    return _signal(event, account, AccountSignal.Kind.DISPUTE, event.occurred_at, detail)


HANDLERS = {
    "customer.subscription.deleted": _subscription_deleted,
    "customer.subscription.updated": _subscription_updated,
    "invoice.payment_failed": _payment_failed,
    "customer.subscription.trial_will_end": _trial_ending,
    "charge.dispute.created": _dispute,
}


def map_customer(customer: str, account: Account) -> int:
    """Someone says which account a Stripe customer is: remember it, and apply that
    customer's waiting events in the order they happened. How many were applied."""
    if not customer.strip():
        raise FieldError("customer", "name the Stripe customer id (cus_…)")
    taken = Account.objects.filter(**{f"properties__{CUSTOMER_KEY}": customer}).exclude(
        pk=account.pk
    )
    if taken.exists():
        raise FieldError("customer", f"{customer} is already mapped to {taken.first()}")
    account.properties = {**account.properties, CUSTOMER_KEY: customer}
    account.save(update_fields=["properties", "updated_at"])
    waiting = IntegrationEvent.objects.filter(
        source=SOURCE, status=IntegrationEvent.Status.UNMATCHED, customer_ref=customer
    ).order_by("occurred_at", "id")
    done = 0
    for event in waiting:
        apply(event)
        done += event.status == IntegrationEvent.Status.APPLIED
    return done


def dump(event: IntegrationEvent) -> str:
    return json.dumps(event.payload, indent=2, sort_keys=True)[:20_000]
