"""What happens to a comment after its answer is saved: the worker finds its themes
and its sentiment.

Saving an answer never waits for the classifier. Ingest marks a commented answer
"pending"; `handle_theme_batch` claims a batch of pending answers, reads them
(`analysis.analyse`) and stores one ThemeTag per theme with the model's version, and
the sentiment of the comment and of each sentence on the answer. A failure leaves the
answers pending with the error and a later retry time; after MAX_ATTEMPTS they are
marked "failed", visibly, rather than retried for ever.
"""

from __future__ import annotations

import ctypes
import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from closeloop.core import claims
from closeloop.core.reading import error_text
from closeloop.surveys.models import Response

from . import analysis, sentiment
from .models import ThemeTag

log = logging.getLogger("closeloop.themes")

BATCH = 64
LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 5
PENDING, DONE, FAILED = "pending", "done", "failed"


def _due(now: datetime) -> Q:
    return Q(themes_status=PENDING) & (Q(themes_next_at__isnull=True) | Q(themes_next_at__lte=now))


def _reread_due(now: datetime) -> Q:
    """Read rows whose sentiment came from the interim model, not leased by a worker."""
    return Q(themes_status=DONE, sentiment_version__in=sentiment.INTERIM_VERSIONS) & (
        Q(themes_next_at__isnull=True) | Q(themes_next_at__lte=now)
    )


def _claim(model: Any, text_field: str, now: datetime, due_rows: Q | None = None) -> list[Any]:
    """Take up to BATCH due rows (answers, or replies and call notes; by default those
    pending, or `due_rows`) by stamping them with a lease end unique to this claim."""
    due_rows = _due(now) if due_rows is None else due_rows
    due = model.objects.filter(due_rows).order_by("themes_next_at", "id")
    ids = claims.claim(due, BATCH, themes_next_at=now + LEASE)
    return list(
        model.objects.filter(id__any=ids).only(
            "id", text_field, "themes_attempts", "themes_next_at"
        )
    )


def sentiment_fields(feeling: Any, version: str) -> dict[str, Any]:
    return {
        "themes_status": DONE,
        "themes_next_at": None,
        "themes_error": "",
        "sentiment": feeling.overall.label,
        "sentiment_score": feeling.overall.score,
        "sentiment_sentences": feeling.sentences_as_dicts(),
        "sentiment_version": version,
    }


def read_batch(model: Any, text_field: str, what: str, store: Any) -> bool:
    """Claim a batch of pending rows, read their texts, and `store(batch, found)` in one
    transaction. When the models fail the rows stay pending with the error, retried
    later (see `_retry`). False when nothing was pending."""
    if not analysis.ready():
        return False  # the theme model is being built (`learning.handle_model_preparation`)
    now = timezone.now()
    batch = _claim(model, text_field, now)
    if not batch:
        return False
    try:
        found = analysis.analyse([getattr(row, text_field) for row in batch])
    except Exception as exc:  # any failure of the models must leave the rows pending
        log.exception("%s analysis failed for %d rows", what, len(batch))
        _retry(model, batch, error_text(exc), now)
        return True
    with transaction.atomic():
        store(batch, found)
    _give_back_memory()
    return True


def handle_theme_batch() -> bool:
    """Worker step: find the themes of a batch of newly saved comments."""

    def store(batch: list[Response], found: analysis.Analysed) -> None:
        ids = [r.pk for r in batch]
        ThemeTag.objects.filter(response_id__any=ids, source=ThemeTag.Source.MODEL).delete()
        ThemeTag.objects.bulk_create(
            [
                ThemeTag(
                    response_id=r.pk,
                    theme=found.in_use[slug],
                    confidence=round(confidence, 4),
                    source=ThemeTag.Source.MODEL,
                    model_version=found.themes_version,
                )
                for r, result in zip(batch, found.results, strict=True)
                for slug, confidence in result.themes
                if slug in found.in_use
            ],
            ignore_conflicts=True,  # a person's tag for the same theme stays as it is
        )
        for r, result in zip(batch, found.results, strict=True):
            Response.objects.filter(pk=r.pk, themes_status=PENDING).update(
                **sentiment_fields(result.sentiment, found.sentiment_version)
            )

    return read_batch(Response, "comment", "comment", store)


def _give_back_memory() -> None:
    """Return the batch's freed memory to the system (glibc keeps it otherwise): a worker
    that read a burst of comments does not stay at its peak size."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def handle_sentiment_reread() -> bool:
    """Worker step: once the tuned sentiment model is in use, read again the answers
    whose sentiment came from the interim model (their themes stay as they are). False
    while the interim model is still the reader or nothing is left."""
    return reread_sentiment(Response, "comment")


def reread_sentiment(model: Any, text_field: str) -> bool:
    """Read again a batch of `model`'s rows (a ReadByWorker) whose sentiment came from the
    interim model, once the tuned one is in use; False when there is nothing to do."""
    reader = sentiment.current_sentiment()
    if reader.interim:
        return False
    now = timezone.now()
    batch = _claim(model, text_field, now, _reread_due(now))
    if not batch:
        return False
    found = reader.analyse([getattr(row, text_field) for row in batch])
    with transaction.atomic():
        for row, feeling in zip(batch, found, strict=True):
            model.objects.filter(
                pk=row.pk, sentiment_version__in=sentiment.INTERIM_VERSIONS
            ).update(**sentiment_fields(feeling, reader.version))
    return True


def _retry(model: Any, batch: list[Any], error: str, now: datetime) -> None:
    """Leave the rows pending with the error, later; fail those out of attempts."""
    for row in batch:
        attempts = row.themes_attempts + 1
        give_up = attempts >= MAX_ATTEMPTS
        model.objects.filter(pk=row.pk, themes_status=PENDING).update(
            themes_status=FAILED if give_up else PENDING,
            themes_attempts=attempts,
            themes_error=error,
            themes_next_at=None if give_up else now + timedelta(minutes=2**attempts),
        )
