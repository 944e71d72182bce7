"""The worker reads customers' replies and call notes for their themes and sentiment,
with the theme engine's batch reader; they are kept on the timeline event, while the
case's own themes stay its answer's."""

from __future__ import annotations

from closeloop.themes import analysis
from closeloop.themes.tagging import PENDING, read_batch, reread_sentiment, sentiment_fields

from .models import Activity


def handle_reply_batch() -> bool:
    """Worker step: themes and sentiment of customers' replies and of call notes."""

    def store(batch: list[Activity], found: analysis.Analysed) -> None:
        for a, result in zip(batch, found.results, strict=True):
            Activity.objects.filter(pk=a.pk, themes_status=PENDING).update(
                themes=found.named(result.themes),
                themes_version=found.themes_version,
                **sentiment_fields(result.sentiment, found.sentiment_version),
            )

    return read_batch(Activity, "text", "reply", store)


def handle_reply_reread() -> bool:
    """Worker step: replies and call notes read by the interim sentiment model are read
    again once the tuned one is in use."""
    return reread_sentiment(Activity, "text")
