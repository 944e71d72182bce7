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

import logging
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from closeloop.surveys.models import Response

from . import analysis
from .models import Theme, ThemeTag

log = logging.getLogger("closeloop.themes")

BATCH = 64
LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 5
PENDING, DONE, FAILED = "pending", "done", "failed"


def _due(now: datetime) -> Q:
    return Q(themes_status=PENDING) & (Q(themes_next_at__isnull=True) | Q(themes_next_at__lte=now))


def _claim(now: datetime) -> list[Response]:
    """Take up to BATCH due answers by stamping them with a lease end unique to this claim."""
    until = now + LEASE
    with transaction.atomic():
        due = Response.objects.filter(_due(now)).order_by("themes_next_at", "id")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("id", flat=True)[:BATCH])
        if not ids:
            return []
        Response.objects.filter(_due(now), id__in=ids).update(themes_next_at=until)
    # Rows another worker took between our read and our write carry its stamp, not ours.
    return list(
        Response.objects.filter(id__in=ids, themes_status=PENDING, themes_next_at=until).only(
            "id", "comment", "themes_attempts", "themes_next_at"
        )
    )


def handle_theme_batch() -> bool:
    """Worker step: find the themes of a batch of newly saved comments."""
    now = timezone.now()
    batch = _claim(now)
    if not batch:
        return False
    try:
        found = analysis.analyse([r.comment for r in batch])
        themes = {t.slug: t for t in Theme.objects.filter(retired_at__isnull=True)}
    except Exception as exc:  # any failure of the model must leave the answers pending
        log.exception("comment analysis failed for %d answers", len(batch))
        _retry(batch, f"{type(exc).__name__}: {exc}"[:300], now)
        return True
    with transaction.atomic():
        ids = [r.pk for r in batch]
        ThemeTag.objects.filter(response_id__in=ids, source=ThemeTag.Source.MODEL).delete()
        ThemeTag.objects.bulk_create(
            [
                ThemeTag(
                    response_id=r.pk,
                    theme=themes[slug],
                    confidence=round(confidence, 4),
                    source=ThemeTag.Source.MODEL,
                    model_version=found.themes_version,
                )
                for r, result in zip(batch, found.results, strict=True)
                for slug, confidence in result.themes
                if slug in themes
            ],
            ignore_conflicts=True,  # a person's tag for the same theme stays as it is
        )
        for r, result in zip(batch, found.results, strict=True):
            feeling = result.sentiment
            Response.objects.filter(pk=r.pk, themes_status=PENDING).update(
                themes_status=DONE,
                themes_next_at=None,
                themes_error="",
                sentiment=feeling.overall.label,
                sentiment_score=feeling.overall.score,
                sentiment_sentences=feeling.sentences_as_dicts(),
                sentiment_version=found.sentiment_version,
            )
    return True


def _retry(batch: list[Response], error: str, now: datetime) -> None:
    """Leave the answers pending with the error, later; fail those out of attempts."""
    for response in batch:
        attempts = response.themes_attempts + 1
        give_up = attempts >= MAX_ATTEMPTS
        Response.objects.filter(pk=response.pk, themes_status=PENDING).update(
            themes_status=FAILED if give_up else PENDING,
            themes_attempts=attempts,
            themes_error=error,
            themes_next_at=None if give_up else now + timedelta(minutes=2**attempts),
        )
