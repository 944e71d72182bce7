"""Sending surveys: schedule people, send due invitations through the outbox, remind once.

Survey hygiene (docs/domain.md §10) is checked twice, when people are scheduled
and again when the worker sends: a person who unsubscribed, bounced, has no
email address or was surveyed within the survey's throttle window is
*skipped*, with the reason kept on the request. Nothing blocked is queued for
later. Follow-up surveys that a case's playbook asks for are exempt from the
throttle (they are part of closing the loop), not from unsubscribes or bounces.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import Max
from django.utils import timezone

from closeloop.core import claims
from closeloop.core.db import bulk_insert
from closeloop.delivery.models import Delivery

from .mail import Invitations
from .models import Person, Suppression, Survey, SurveyRequest, Wave

log = logging.getLogger("closeloop.surveys")

BATCH = 200
ID_SLICE = 5000


def schedule(
    people: Sequence[Person],
    survey: Survey,
    *,
    at: datetime | None = None,
    spread_days: int = 0,
    wave: Wave | None = None,
    purpose: str = SurveyRequest.Purpose.SURVEY,
    options: dict[str, Any] | None = None,
) -> list[SurveyRequest]:
    """Invite people to a survey now, at `at`, or spread evenly over `spread_days` from then.

    Returns every request made, blocked ones included (status `skipped`, with why).
    """
    now = timezone.now()
    start = at or now
    blocked = blocked_reasons(people, survey, purpose, now, pending_too=True)
    rows = []
    for i, person in enumerate(people):
        when = start + timedelta(days=spread_days) * i / len(people) if spread_days else start
        reason = blocked.get(person.pk)
        rows.append(
            SurveyRequest(
                person=person,
                survey=survey,
                wave=wave,
                purpose=purpose,
                scheduled_at=when,
                options=options or {},
                status=SurveyRequest.Status.SKIPPED if reason else SurveyRequest.Status.SCHEDULED,
                status_reason=reason or "",
                created_at=now,
            )
        )
    bulk_insert(rows)
    return rows


def blocked_reasons(
    people: Sequence[Person],
    survey: Survey,
    purpose: str,
    now: datetime,
    *,
    pending_too: bool = False,
    exclude: Sequence[int] = (),
) -> dict[int, str]:
    """Why each person may not be sent this survey now, for those who may not."""
    reasons: dict[int, str] = {}
    for person in people:
        if person.unsubscribed_at is not None:
            reasons[person.pk] = "unsubscribed"
        elif person.bounced_at is not None:
            reasons[person.pk] = "bounced"
        elif not person.email:
            reasons[person.pk] = "has no email address"
    erased = Suppression.suppressed([p.email for p in people if p.email and p.pk not in reasons])
    for person in people:
        if person.email in erased:
            reasons[person.pk] = "erased at their request: never surveyed again"
    if purpose in (
        SurveyRequest.Purpose.FOLLOW_UP,
        SurveyRequest.Purpose.CHECK_BACK,
        SurveyRequest.Purpose.EXIT,
    ):
        return reasons  # asked because of a case or a churn, not a survey wave: never throttled
    since = now - timedelta(days=survey.throttle_days)
    for person in people:
        elsewhere = person.last_sent_elsewhere_at
        if person.pk not in reasons and elsewhere is not None and elsewhere >= since:
            reasons[person.pk] = (
                f"throttled: surveyed {elsewhere:%Y-%m-%d} (before closeloop), "
                f"at most once in {survey.throttle_days} days"
            )
    rest = [p.pk for p in people if p.pk not in reasons]
    if not rest:
        return reasons
    # In slices, so a wave of any size stays under SQLite's limit on query parameters.
    for start in range(0, len(rest), ID_SLICE):
        ids = rest[start : start + ID_SLICE]
        recent = (
            SurveyRequest.objects.filter(
                person_id__in=ids, sent_at__gte=since, purpose=SurveyRequest.Purpose.SURVEY
            )
            .exclude(pk__in=list(exclude))
            .values("person_id")
            .annotate(last=Max("sent_at"))
        )
        for row in recent:
            reasons[row["person_id"]] = (
                f"throttled: surveyed {row['last']:%Y-%m-%d}, "
                f"at most once in {survey.throttle_days} days"
            )
        if pending_too:
            pending = (
                SurveyRequest.objects.filter(
                    person_id__in=ids,
                    status=SurveyRequest.Status.SCHEDULED,
                    purpose=SurveyRequest.Purpose.SURVEY,
                )
                .values("person_id")
                .annotate(latest=Max("scheduled_at"))
            )
            for row in pending:
                reasons.setdefault(
                    row["person_id"], f"already scheduled for {row['latest']:%Y-%m-%d %H:%M} UTC"
                )
    return reasons


def handle_due_surveys() -> bool:
    """Worker step: send the survey invitations that are due, skipping the blocked."""
    now = timezone.now()
    with transaction.atomic():
        due = SurveyRequest.objects.filter(
            status=SurveyRequest.Status.SCHEDULED, scheduled_at__lte=now
        ).order_by("scheduled_at", "id")
        ids = claims.claim(due, BATCH, status=SurveyRequest.Status.SENT, sent_at=now)
        if not ids:
            return False
        _send(
            list(
                SurveyRequest.objects.filter(pk__in=ids).select_related("survey", "person__account")
            ),
            now,
        )
    return True


def _send(requests: list[SurveyRequest], now: datetime) -> None:
    by_survey: dict[tuple[int, str], list[SurveyRequest]] = {}
    for request in requests:
        by_survey.setdefault((request.survey_id, request.purpose), []).append(request)
    skipped: list[SurveyRequest] = []
    deliveries: list[Delivery] = []
    invitation = Invitations()
    for (_, purpose), group in by_survey.items():
        blocked = blocked_reasons(
            [r.person for r in group],
            group[0].survey,
            purpose,
            now,
            exclude=[r.pk for r in group],
        )
        for request in group:
            reason = blocked.get(request.person_id)
            if reason:
                request.status = SurveyRequest.Status.SKIPPED
                request.status_reason = reason
                request.sent_at = None
                skipped.append(request)
                continue
            try:
                deliveries.append(invitation(request))
            except Exception as exc:  # one request's data never holds back the others
                log.exception("survey request %s could not be rendered", request.pk)
                _failed(request, f"could not be written: {type(exc).__name__}: {exc}")
    if skipped:
        SurveyRequest.objects.bulk_update(skipped, ["status", "status_reason", "sent_at"])
    queued = insert_isolated(deliveries, _refused)
    log.info("surveys: %d sent, %d skipped", queued, len(skipped))


def _failed(request: SurveyRequest, reason: str) -> None:
    SurveyRequest.objects.filter(pk=request.pk).update(
        status=SurveyRequest.Status.FAILED, status_reason=reason[:200], sent_at=None
    )


def _refused(delivery: Delivery, error: Exception) -> None:
    if delivery.survey_request is not None:
        _failed(delivery.survey_request, f"could not be queued: {type(error).__name__}: {error}")


def insert_isolated(
    deliveries: list[Delivery], refused: Callable[[Delivery, Exception], None]
) -> int:
    """Insert a batch's deliveries at once; if the database refuses the batch (one row's
    data that does not fit), insert them one by one so only the bad rows are left out,
    each told to `refused`. Returns how many were inserted."""
    try:
        with transaction.atomic():
            bulk_insert(deliveries)
        return len(deliveries)
    except DatabaseError:
        log.warning("a batch of %d deliveries was refused; inserting one by one", len(deliveries))
    inserted = 0
    for delivery in deliveries:
        delivery.pk, delivery._state.adding = None, True
        try:
            with transaction.atomic():
                delivery.save(force_insert=True)
            inserted += 1
        except DatabaseError as exc:
            log.error("delivery to %s refused by the database: %s", delivery.to, exc)
            refused(delivery, exc)
    return inserted


def handle_reminders() -> bool:
    """Worker step: one reminder to people who have not answered after the survey's wait."""
    now = timezone.now()
    did = False
    for survey in Survey.objects.filter(reminder_days__gt=0):
        with transaction.atomic():
            due = SurveyRequest.objects.filter(
                survey=survey,
                status=SurveyRequest.Status.SENT,
                reminded_at__isnull=True,
                purpose=SurveyRequest.Purpose.SURVEY,
                sent_at__lte=now - timedelta(days=survey.reminder_days),
                # Remind only while the links still work, and only if the invitation left.
                sent_at__gte=now - timedelta(days=survey.link_days - 1),
                deliveries__purpose=Delivery.Purpose.SURVEY,
                deliveries__status=Delivery.Status.SENT,
            ).order_by("sent_at", "id")
            ids = claims.claim(due, BATCH, reminded_at=now)
            if not ids:
                continue
            did = True
            requests = SurveyRequest.objects.filter(pk__in=ids).select_related(
                "survey", "person__account"
            )
            reminder = Invitations(reminder=True)
            reminders = []
            for r in requests:
                if r.person.unsubscribed_at is not None or r.person.bounced_at is not None:
                    continue
                try:
                    reminders.append(reminder(r))
                except Exception:  # this request's data alone: its reminder is skipped
                    log.exception("reminder for survey request %s could not be written", r.pk)
            insert_isolated(reminders, _reminder_refused)
    return did


def _reminder_refused(delivery: Delivery, error: Exception) -> None:
    """A reminder the database refused is not sent; the invitation stands."""


def delivery_failed(delivery: Delivery) -> None:
    """A survey email failed for good: the request failed (a refused address is marked
    bounced by the outbox, as for every customer email)."""
    request = delivery.survey_request
    if request is None:
        return
    if delivery.purpose == Delivery.Purpose.SURVEY:
        SurveyRequest.objects.filter(pk=request.pk, status=SurveyRequest.Status.SENT).update(
            status=SurveyRequest.Status.FAILED, status_reason=delivery.last_error[:200]
        )
