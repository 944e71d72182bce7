"""What a row whose text the worker reads carries: the reading's state (pending, done,
failed, with retries) and the sentiment found. Answers (their comment) and case events
(a customer's reply, a call note) are such rows; `themes.tagging` reads them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import models
from django.utils import timezone

from .sentiment_versions import INTERIM_SENTIMENTS

# A retraining or discovery "running" this long was cut off with its worker.
STALE_RUN = timedelta(hours=1)


def fail_cut_off(model: Any, now: datetime) -> None:
    """Mark runs of `model` (status, started_at, finished_at, error) that have been
    running longer than STALE_RUN as failed. Read first: an idle worker polls this, and
    an UPDATE takes SQLite's write lock even when it changes nothing."""
    stale = model.objects.filter(status="running", started_at__lt=now - STALE_RUN)
    if stale.exists():
        stale.update(status="failed", finished_at=now, error="interrupted")


def fail_run(model: Any, pk: int, exc: BaseException) -> None:
    """Mark one run of `model` (a retraining, a discovery) failed, saying why."""
    model.objects.filter(pk=pk).update(
        status="failed", finished_at=timezone.now(), error=error_text(exc)
    )


def error_text(exc: BaseException) -> str:
    """An exception as a row's `error` shows it: its type and message, cut to 300."""
    return f"{type(exc).__name__}: {exc}"[:300]


class ReadByWorker(models.Model):
    """ "pending" until the worker has read the text, then "done", or "failed" after every
    retry; "" when there is nothing to read."""

    themes_status = models.CharField(max_length=8, blank=True, default="", db_default="")
    themes_attempts = models.PositiveSmallIntegerField(default=0, db_default=0)
    themes_next_at = models.DateTimeField(null=True, blank=True)
    themes_error = models.CharField(max_length=300, blank=True, default="", db_default="")
    # The text's sentiment, its score from -1 to +1, and each sentence's
    # ([{"text", "sentiment", "score"}]); "" until read.
    sentiment = models.CharField(max_length=8, blank=True, default="", db_default="")
    sentiment_score = models.FloatField(null=True, blank=True)
    sentiment_sentences = models.JSONField(default=list, blank=True, db_default=[])
    sentiment_version = models.CharField(max_length=80, blank=True, default="", db_default="")

    class Meta:
        abstract = True

    @property
    def sentiment_is_interim(self) -> bool:
        """Read by the interim model: read again once the tuned model is ready."""
        return self.sentiment_version in INTERIM_SENTIMENTS

    def sentiment_json(self) -> dict[str, Any] | None:
        """The sentiment of the text and of each sentence; None until the worker read it."""
        if not self.sentiment:
            return None
        return {
            "sentiment": self.sentiment,
            "score": self.sentiment_score,
            "sentences": self.sentiment_sentences,
            "model_version": self.sentiment_version,
        }
