"""The worker's delivery steps: claim due rows, send them, record how it went.

Claiming is a conditional UPDATE that stamps the rows with a fresh claim
token (after `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL, so workers do
not queue behind each other). Only the holder of the token may record the
outcome, so two workers never send the same row. A claim is a lease: if a
worker dies mid-batch, its rows become claimable again after `LEASE`.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from closeloop.loop import notify

from .models import MAX_ATTEMPTS, Attempt, Delivery, retry_delay
from .transports import TransportError, mailer, send_http

log = logging.getLogger("closeloop.delivery")

EMAIL_BATCH = 25
HTTP_BATCH = 10
LEASE = timedelta(minutes=5)


def worker_name() -> str:
    """Who is sending, as recorded on each attempt: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _claimable(now: datetime) -> Q:
    return Q(status=Delivery.Status.PENDING, next_attempt_at__lte=now) | Q(
        status=Delivery.Status.SENDING, claimed_until__lt=now
    )


def claim(kinds: Iterable[str], limit: int) -> list[Delivery]:
    """Take up to `limit` due deliveries of the given kinds for this worker alone."""
    token = secrets.token_hex(16)
    now = timezone.now()
    with transaction.atomic():
        candidates = Delivery.objects.filter(_claimable(now), kind__in=list(kinds)).order_by(
            "next_attempt_at", "id"
        )
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True)
        ids = list(candidates.values_list("id", flat=True)[:limit])
        if not ids:
            return []
        Delivery.objects.filter(_claimable(now), id__in=ids).update(
            status=Delivery.Status.SENDING, claim_token=token, claimed_until=now + LEASE
        )
    return list(
        Delivery.objects.filter(claim_token=token, status=Delivery.Status.SENDING)
        .select_related("channel")
        .order_by("next_attempt_at", "id")
    )


def record_success(delivery: Delivery, started: float) -> None:
    """Mark a claimed delivery sent, and tell its case."""
    now = timezone.now()
    with transaction.atomic():
        updated = Delivery.objects.filter(
            pk=delivery.pk, claim_token=delivery.claim_token, status=Delivery.Status.SENDING
        ).update(
            status=Delivery.Status.SENT,
            sent_at=now,
            attempts=F("attempts") + 1,
            claim_token="",
            last_error="",
        )
        if not updated:
            log.warning("delivery %s: claim lost before recording success", delivery.pk)
            return
        Attempt.objects.create(
            delivery=delivery, at=now, ok=True, duration_ms=_ms(started), worker=worker_name()
        )
        delivery.status = Delivery.Status.SENT
        delivery.sent_at = now
        notify.delivery_sent(delivery)


def record_failure(delivery: Delivery, error: TransportError, started: float) -> None:
    """Schedule a retry with backoff, or fail for good on a permanent error or too many tries."""
    now = timezone.now()
    attempts = delivery.attempts + 1
    final = error.permanent or attempts >= MAX_ATTEMPTS
    delay = retry_delay(attempts)
    if error.retry_after is not None:
        delay = max(delay, timedelta(seconds=error.retry_after))
    message = str(error)
    if final and not error.permanent:
        message = f"gave up after {attempts} attempts; last: {message}"
    with transaction.atomic():
        updated = Delivery.objects.filter(
            pk=delivery.pk, claim_token=delivery.claim_token, status=Delivery.Status.SENDING
        ).update(
            status=Delivery.Status.FAILED if final else Delivery.Status.PENDING,
            attempts=attempts,
            next_attempt_at=now if final else now + delay,
            claim_token="",
            last_error=message,
            permanent_failure=error.permanent,
        )
        if not updated:
            return
        Attempt.objects.create(
            delivery=delivery,
            at=now,
            ok=False,
            permanent=error.permanent,
            error=str(error),
            duration_ms=_ms(started),
            worker=worker_name(),
        )
        if final:
            delivery.status = Delivery.Status.FAILED
            delivery.last_error = message
            delivery.permanent_failure = error.permanent
            notify.delivery_failed(delivery)
    log.info("delivery %s failed (%s): %s", delivery.pk, "final" if final else "retry", error)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _run(batch: list[Delivery], send: Callable[[Delivery], None]) -> None:
    for delivery in batch:
        started = time.monotonic()
        try:
            send(delivery)
        except TransportError as error:
            record_failure(delivery, error, started)
        else:
            record_success(delivery, started)


def handle_email_batch() -> bool:
    """Worker step: send due emails over one SMTP session."""
    batch = claim([Delivery.Kind.EMAIL], EMAIL_BATCH)
    if not batch:
        return False
    with mailer() as m:
        _run(batch, m.send)
    return True


def handle_http_batch() -> bool:
    """Worker step: post due Slack messages and webhooks."""
    batch = claim([Delivery.Kind.SLACK, Delivery.Kind.WEBHOOK], HTTP_BATCH)
    if not batch:
        return False
    _run(batch, lambda d: send_http(d, d.channel.secret if d.channel else ""))
    return True
