"""What happens the moment a customer answers, top to bottom: the one way in for answers.

The API (ours and the Delighted-compatible one), CSV imports, survey emails and pages
and the demo data all record answers here. Each call stores the answers
(`surveys.ingest`) and triages them (`triage.follow_up`) in one transaction, so an
answer and its follow-up are committed together or not at all. The batch API stores
its answers marked `triage_pending` instead and returns at once; the worker's intake
lane triages them right after, in order, each batch in one transaction that also
clears the mark (`handle_pending_triage`), so a stored answer is always triaged once:

1. Accounts and people are upserted; their properties are frozen onto each answer;
   an answer whose `external_id` was stored before is not stored again.
2. Answers older than the policy's freshness window (historical imports) stop
   there: following up on last year's score helps nobody.
3. An answer from a person with an open case joins that case (a new score, a
   timeline entry, the owner told) instead of opening a second one.
4. Otherwise triage (docs/domain.md §3–4): the score's band × the account's value
   picks an action from the policy's matrix (promoters and passives get their own
   loops), routing picks an owner, the SLA sets `due_at` (and when to escalate), and
   the priority score places it in the queues.
5. The outbox gets its rows: the owner's alert (email + in-app), channel messages
   (Slack, webhooks, email), the first outreach email when the action is automated,
   a call task when it is a call, and a follow-up survey request when the action
   asks for one.
The worker sends those rows after commit (`delivery.sending`) and escalates missed
deadlines (`sla`). A changed answer is told to its case, or opens one
(`triage.answer_changed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, transaction

from closeloop.surveys import ingest
from closeloop.surveys.ingest import Outcome, PersonData, ResponseData
from closeloop.surveys.models import Response, SurveyRequest

from . import triage


def record_responses(items: Sequence[ResponseData], *, triage_later: bool = False) -> list[Outcome]:
    """Store answers and start their follow-up, all or none; one outcome per item, in
    order. A retried item (same `external_id`) gets the original answer, `created=False`.
    `triage_later` leaves the follow-up to the worker's next `handle_pending_triage`."""
    if triage_later:
        return ingest.store_responses(items, then=None)
    return ingest.store_responses(items, then=triage.follow_up)


# Answers triaged per transaction by the intake lane: a batch API call's worth.
TRIAGE_BATCH = 1000


def handle_pending_triage() -> bool:
    """Worker step (intake lane): triage the oldest answers the batch API stored, up to
    TRIAGE_BATCH, in the transaction that clears their mark. Concurrent workers take
    different answers (SKIP LOCKED); a failure rolls back both, so the answers stay
    queued and are tried again."""
    due = Response.objects.filter(triage_pending=True)
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        answers = list(
            due.select_related("person__account", "account", "survey").order_by("id")[:TRIAGE_BATCH]
        )
        if not answers:
            return False
        ids = [r.pk for r in answers]
        taken = Response.objects.filter(pk__any=ids, triage_pending=True).update(
            triage_pending=False
        )
        if taken != len(ids):  # another worker took some first (SQLite): try again
            transaction.set_rollback(True)
            return True
        for answer in answers:
            answer.triage_pending = False
        triage.follow_up(answers)
    return True


def change_response(
    response: Response,
    *,
    score: int | None = None,
    comment: str | None = None,
    via: str,
    notes: str | None = None,
    properties: dict[str, Any] | None = None,
) -> Response:
    """Change an answer, keeping what it was; its case (or a new one) hears of a new
    score or comment. None leaves a field as it is; properties given are merged."""
    return ingest.change_response(
        response,
        score=score,
        comment=comment,
        via=via,
        notes=notes,
        properties=properties,
        then=triage.answer_changed,
    )


def answer_request(
    request: SurveyRequest, score: int, comment: str | None, source: str
) -> tuple[Response, bool]:
    """A person answered through their survey email or page; returns the answer and
    whether it is new. The first answer is recorded like any other; later ones change
    it, keeping the history. `comment=None` leaves the comment as it is."""
    with transaction.atomic():
        # Lock the request row only: FOR UPDATE on the joined person and survey rows
        # would block (and on PostgreSQL deadlock with) every transaction that writes a
        # row pointing at them, such as the worker recording a batch of sent emails.
        locked = SurveyRequest.objects.select_for_update(of=("self",)).select_related(
            "person", "survey"
        )
        request = locked.get(pk=request.pk)
        existing = Response.objects.filter(request=request).order_by("pk").first()
        if existing is not None:
            return change_response(existing, score=score, comment=comment, via=source), False
        data = ResponseData(
            person=PersonData.of(request.person),
            score=score,
            comment=comment or "",
            source=source,
            survey=request.survey.slug,
            request=request,
        )
        return record_responses([data])[0].response, True
