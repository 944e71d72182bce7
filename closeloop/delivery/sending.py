"""The worker's delivery steps: claim due rows, send them, record how it went.

Claiming is a conditional UPDATE that stamps the rows with a fresh claim
token (after `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL, so workers do
not queue behind each other). Only the holder of the token may record the
outcome, so two workers never send the same row. A claim is a lease: if a
worker dies mid-batch, its rows become claimable again after `LEASE`; a worker
still sending (a slow relay) renews it every `RENEW_EVERY`.

The outbox imports no app that queues deliveries. What they must hear (a message
went out, one failed for good, an address bounced, the mail set-up failed or works
again) reaches them through the `Listeners` the caller hands in, called inside the
transaction that records it; `worker.py` hands in `loop.outcomes.LISTENERS`.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, partial

from django.db import OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from closeloop.core import claims
from closeloop.core.db import bulk_insert

from .models import MAX_ATTEMPTS, Attempt, Delivery, Outage, retry_delay
from .transports import SERVER, TransportError, kept_mailer, send_http, sender_scope

log = logging.getLogger("closeloop.delivery")

EMAIL_BATCH = 100
SMTP_SESSIONS = 4
HTTP_BATCH = 24
HTTP_THREADS = 8
# A claim lasts this long unless renewed: a worker killed mid-batch leaves its rows to
# another worker after at most this. A batch still sending renews it every RENEW_EVERY.
LEASE = timedelta(seconds=60)
RENEW_EVERY = timedelta(seconds=15)
# Outcomes are recorded as they come in, at most this many seconds late.
RECORD_EVERY = 0.2


@dataclass(frozen=True)
class Listeners:
    """What the apps that queue deliveries are told, each inside the transaction that
    records it: `sent` the deliveries that went out; `gave_up` one that failed for good
    (after `bounced`, when its address refused it for good); `outage` and `outage_over`
    when the mail set-up stopped all email and when it works again."""

    sent: Callable[[list[Delivery]], object]
    gave_up: Callable[[Delivery], object]
    bounced: Callable[[str, datetime], object]
    outage: Callable[[Outage], object]
    outage_over: Callable[[Outage], object]


def worker_name() -> str:
    """Who is sending, as recorded on each attempt: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _claimable(now: datetime) -> Q:
    """Due and pending, or claimed by a worker whose lease has run out.

    Written so the partial index on (next_attempt_at) serves it: a claimed row
    keeps the due time it had when it was claimed.
    """
    return Q(
        status__in=[Delivery.Status.PENDING, Delivery.Status.SENDING], next_attempt_at__lte=now
    ) & (Q(status=Delivery.Status.PENDING) | Q(claimed_until__lt=now))


def claim(kinds: Iterable[str], limit: int) -> list[Delivery]:
    """Take up to `limit` due deliveries of the given kinds for this worker alone."""
    token = secrets.token_hex(16)
    now = timezone.now()
    due = Delivery.objects.filter(_claimable(now), kind__in=list(kinds))
    ids = claims.claim(
        due.order_by("next_attempt_at", "id"),
        limit,
        status=Delivery.Status.SENDING,
        claim_token=token,
        claimed_until=now + LEASE,
    )
    return list(
        Delivery.objects.filter(id__in=ids, claim_token=token)
        .select_related("channel", "case__person", "survey_request")
        .order_by("next_attempt_at", "id")
    )


@dataclass
class Outcome:
    """How one send went: `error` is None on success."""

    delivery: Delivery
    error: TransportError | None
    ms: int


RECORD_TRIES = 5


def record(outcomes: list[Outcome], listeners: Listeners) -> None:
    """Write a batch's results in one transaction: statuses, attempts, and the cases' timelines.

    Only rows still held under their claim token are written: a worker whose
    lease ran out (it stalled for longer than LEASE) records nothing for rows
    another worker has since taken. The messages are already out, so a transaction
    that fails on a lock (a deadlock or a busy database) is tried again rather than
    left to a lease that would send them a second time.
    """
    if not outcomes:
        return
    for attempt in range(1, RECORD_TRIES + 1):
        try:
            _record(outcomes, listeners)
            return
        except OperationalError:
            if attempt == RECORD_TRIES:
                raise
            log.warning("recording %d deliveries failed on a lock; again", len(outcomes))
            time.sleep(0.05 * 2**attempt)


def _record(outcomes: list[Outcome], listeners: Listeners) -> None:
    now = timezone.now()
    who = worker_name()
    attempts: list[Attempt] = []
    with transaction.atomic():
        held = set(
            Delivery.objects.filter(
                pk__in=[o.delivery.pk for o in outcomes],
                claim_token__in={o.delivery.claim_token for o in outcomes},
                status=Delivery.Status.SENDING,
            )
            .select_for_update()
            .values_list("pk", "claim_token")
        )
        mine = [o for o in outcomes if (o.delivery.pk, o.delivery.claim_token) in held]
        if len(mine) < len(outcomes):
            log.warning("%d deliveries: claim lost before recording", len(outcomes) - len(mine))
        sent = [o.delivery for o in mine if o.error is None]
        waits = _outages([o for o in mine if o.error is not None and o.error.setup], now, listeners)
        if sent:
            Delivery.objects.filter(pk__in=[d.pk for d in sent]).update(
                status=Delivery.Status.SENT,
                sent_at=now,
                attempts=F("attempts") + 1,
                claim_token="",
                last_error="",
            )
        for outcome in mine:
            delivery, error = outcome.delivery, outcome.error
            attempts.append(
                Attempt(
                    delivery=delivery,
                    at=now,
                    ok=error is None,
                    permanent=bool(error and error.permanent),
                    error=str(error or ""),
                    duration_ms=outcome.ms,
                    worker=who,
                )
            )
            if error is None:
                delivery.status = Delivery.Status.SENT
                delivery.sent_at = now
            elif error.setup:
                _wait(delivery, error, waits[error.setup])
            else:
                _failed(delivery, error, now, listeners)
        bulk_insert(attempts)
        emails = [d for d in sent if d.kind == Delivery.Kind.EMAIL]
        if emails:
            senders = {sender_scope(d) for d in emails}
            for outage in Outage.resolve({SERVER} | senders, now):
                listeners.outage_over(outage)
        if sent:
            listeners.sent(sent)


def _outages(failed: list[Outcome], now: datetime, listeners: Listeners) -> dict[str, datetime]:
    """Report each set-up fault of the batch once; when its emails may be tried again."""
    waits = {}
    for scope in sorted({o.error.setup for o in failed if o.error is not None}):
        errors = [o.error for o in failed if o.error is not None and o.error.setup == scope]
        outage, new = Outage.report(scope, str(errors[0]), len(errors), now)
        if new:
            listeners.outage(outage)
        waits[scope] = outage.retry_at
    return waits


def _wait(delivery: Delivery, error: TransportError, until: datetime) -> None:
    """Our set-up failed, not this email: it waits for the next try, attempts unspent."""
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.PENDING,
        next_attempt_at=until,
        claim_token="",
        last_error=f"waiting for the mail set-up to work: {error}"[:2000],
    )


def _failed(delivery: Delivery, error: TransportError, now: datetime, listeners: Listeners) -> None:
    """Schedule a retry with backoff, or fail for good on a permanent error or too many tries."""
    attempts = delivery.attempts + 1
    final = error.permanent or attempts >= MAX_ATTEMPTS
    delay = retry_delay(attempts)
    if error.retry_after is not None:
        delay = max(delay, timedelta(seconds=error.retry_after))
    message = str(error)
    if final and not error.permanent:
        message = f"gave up after {attempts} attempts; last: {message}"
    bounced = error.bounce and delivery.purpose in Delivery.TO_CUSTOMERS
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.FAILED if final else Delivery.Status.PENDING,
        attempts=attempts,
        next_attempt_at=now if final else now + delay,
        claim_token="",
        last_error=message,
        permanent_failure=error.permanent,
        bounced=bounced,
    )
    log.info("delivery %s failed (%s): %s", delivery.pk, "final" if final else "retry", error)
    if final:
        delivery.status = Delivery.Status.FAILED
        delivery.last_error = message
        delivery.permanent_failure = error.permanent
        delivery.bounced = bounced
        _gave_up(delivery, now, listeners)


def _gave_up(delivery: Delivery, now: datetime, listeners: Listeners) -> None:
    """A delivery failed for good: the bounce rule if it was one; its client is told.

    The one rule for every email to a customer (survey, reminder, outreach, fix notice):
    an address refused for good stops what is still queued to it, and its people are
    marked bounced (`listeners.bounced`), so later surveys skip them until it changes.
    """
    if delivery.bounced:
        Delivery.cancel_to_customer(delivery.to, f"the address bounced: {delivery.last_error}")
        listeners.bounced(delivery.to, now)
    listeners.gave_up(delivery)


def bounced_later(delivery: Delivery, reason: str, listeners: Listeners) -> bool:
    """The receiving server accepted the email, then reported it undeliverable (a bounce
    report naming the recipient's mailbox): the delivery failed after all, with the same
    consequences as a refusal at once. False if it was not (or no longer) marked sent."""
    now = timezone.now()
    bounced = delivery.purpose in Delivery.TO_CUSTOMERS
    with transaction.atomic():
        if not Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SENT).update(
            status=Delivery.Status.FAILED,
            permanent_failure=True,
            bounced=bounced,
            last_error=reason[:2000],
        ):
            return False
        Attempt.objects.create(
            delivery=delivery,
            at=now,
            ok=False,
            permanent=True,
            error=reason,
            worker="bounce report",
        )
        delivery.status = Delivery.Status.FAILED
        delivery.permanent_failure, delivery.bounced = True, bounced
        delivery.last_error = reason[:2000]
        _gave_up(delivery, now, listeners)
    return True


def _attempt(delivery: Delivery, send: Callable[[Delivery], None]) -> Outcome:
    started = time.monotonic()
    error = None
    try:
        send(delivery)
    except TransportError as exc:
        error = exc
    except Exception as exc:  # any fault is this delivery's alone: the batch is recorded
        log.exception("delivery %s failed unexpectedly", delivery.pk)
        error = TransportError(f"{type(exc).__name__}: {exc}"[:500], permanent=True)
    return Outcome(delivery, error, int((time.monotonic() - started) * 1000))


def handle_email_batch(listeners: Listeners) -> bool:
    """Worker step: send due emails over a few SMTP sessions at once."""
    if Outage.server_paused(timezone.now()):
        return False  # the mail server failed us; wait for its next try (see Outage)
    claimed = claim([Delivery.Kind.EMAIL], EMAIL_BATCH)
    if not claimed:
        return False
    # A few SMTP sessions side by side: each waits on the server most of the time.
    chunks = [claimed[i::SMTP_SESSIONS] for i in range(SMTP_SESSIONS)]
    jobs: list[Callable[[queue.SimpleQueue[Outcome]], None]] = [
        partial(_send_emails, c) for c in chunks if c
    ]
    _send_all(claimed, _pool("email"), jobs, listeners)
    return True


def _send_emails(deliveries: list[Delivery], done: queue.SimpleQueue[Outcome]) -> None:
    m = kept_mailer()  # one session per sending thread, kept between batches
    for delivery in deliveries:
        done.put(_attempt(delivery, m.send))


def handle_slack_batch(listeners: Listeners) -> bool:
    """Worker step: post due Slack messages (owners' alerts), apart from webhooks, so a
    slow webhook receiver never holds an alert back."""
    return _http_batch(Delivery.Kind.SLACK, listeners)


def handle_webhook_batch(listeners: Listeners) -> bool:
    """Worker step: post due webhooks."""
    return _http_batch(Delivery.Kind.WEBHOOK, listeners)


def _http_batch(kind: str, listeners: Listeners) -> bool:
    claimed = claim([kind], HTTP_BATCH)
    if not claimed:
        return False
    # Receivers answer slowly compared with our CPU; post a batch side by side.
    _send_all(claimed, _pool(kind), [partial(_post, d) for d in claimed], listeners)
    return True


def _post(delivery: Delivery, done: queue.SimpleQueue[Outcome]) -> None:
    done.put(_attempt(delivery, send_http))


def _send_all(
    claimed: list[Delivery],
    pool: ThreadPoolExecutor,
    jobs: list[Callable[[queue.SimpleQueue[Outcome]], None]],
    listeners: Listeners,
) -> None:
    """Run the sending jobs in `pool` and record each outcome soon after it is known (at
    most RECORD_EVERY later), not at the end of the batch: a worker killed mid-batch
    then leaves only the messages of its last moment unrecorded, to be sent again.
    While any job is still going the batch's lease is renewed, so a slow relay never
    lets another worker take the same rows."""
    done: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
    futures = [pool.submit(job, done) for job in jobs]
    token = claimed[0].claim_token
    renewed_at = time.monotonic()
    pending = set(futures)
    while pending:
        _, pending = wait(pending, timeout=RECORD_EVERY)
        record(_drain(done), listeners)
        if pending and time.monotonic() - renewed_at >= RENEW_EVERY.total_seconds():
            renewed_at = time.monotonic()
            n = Delivery.objects.filter(claim_token=token, status=Delivery.Status.SENDING).update(
                claimed_until=timezone.now() + LEASE
            )
            log.info("batch still sending: lease renewed on %d deliveries", n)
    for future in futures:
        future.result()  # a job's own failure (never a send's) is not swallowed
    record(_drain(done), listeners)


def _drain(done: queue.SimpleQueue[Outcome]) -> list[Outcome]:
    ready = []
    while True:
        try:
            ready.append(done.get_nowait())
        except queue.Empty:
            return ready


@cache
def _pool(kind: str) -> ThreadPoolExecutor:
    """Threads for sending only (they never touch the database); one pool per kind, so
    slow webhook receivers never hold the threads email or Slack need."""
    size = SMTP_SESSIONS if kind == "email" else HTTP_THREADS
    return ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"closeloop-{kind}")
