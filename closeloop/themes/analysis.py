"""What closeloop reads in a comment: its themes and its sentiment, in one pass.

The theme classifier reads the comment's MiniLM embedding; the sentiment model reads it
with its own tuned copy of that encoder. The worker (`tagging`) stores the result; the
classify API returns it without storing anything.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from . import classifier, learning, sentiment
from .models import Theme

log = logging.getLogger("closeloop.themes")


@dataclass(frozen=True)
class Analysis:
    themes: list[tuple[str, float]]  # (slug, confidence), most likely first
    sentiment: sentiment.CommentSentiment


@dataclass(frozen=True)
class Analysed:
    results: list[Analysis]
    themes_version: str
    sentiment_version: str
    in_use: dict[str, Theme]  # slug → every theme that may be given (not retired)

    def named(self, themes: list[tuple[str, float]]) -> list[dict[str, Any]]:
        """Found themes as the API and the timeline show them: slug, name, confidence."""
        return [
            {"slug": slug, "name": self.in_use[slug].name, "confidence": round(confidence, 4)}
            for slug, confidence in themes
            if slug in self.in_use
        ]


def ready() -> bool:
    """Whether `analyse` can run now: the theme model is built (sentiment always has a
    reader: the tuned model, or the interim model until it is ready)."""
    return learning.model_ready()


def warm_up() -> None:
    """Load the models `analyse` uses into this process (a web process at start)."""
    from django.db import connection

    try:
        if ready():
            learning.current_model()
        classifier.embedder()
        sentiment.current_sentiment()
    finally:
        connection.close()  # this thread's own connection


_warming = threading.Event()


def warming() -> bool:
    """Whether this process is still loading its models at start: a request then gets
    503 with Retry-After instead of waiting (and competing) for them."""
    return _warming.is_set()


def warm_up_in_background() -> None:
    def run() -> None:
        try:
            warm_up()
        except Exception:  # a request that needs the models loads them (or says 503)
            log.exception("loading the models at start failed")
        finally:
            _warming.clear()

    _warming.set()
    threading.Thread(target=run, name="warm-up", daemon=True).start()


def analyse(comments: Sequence[str]) -> Analysed:
    """Themes and sentiment of each comment (empty, emoji-only, very long and
    non-English comments included: see `classifier.clean` and `has_words`)."""
    themes_model = learning.current_model()
    feeling_model = sentiment.current_sentiment()
    rows = list(Theme.objects.all())
    mapping = learning.slug_map(rows)
    found, feelings = read(comments, themes_model, feeling_model)
    themes = [_relabel(f, mapping) for f in found]
    return Analysed(
        [Analysis(t, f) for t, f in zip(themes, feelings, strict=True)],
        themes_model.version,
        feeling_model.version,
        {t.slug: t for t in rows if t.retired_at is None},
    )


_beside = ThreadPoolExecutor(1, thread_name_prefix="sentiment")


def read(
    comments: Sequence[str], themes_model: classifier.ThemeClassifier, feeling: sentiment.Reader
) -> tuple[list[list[tuple[str, float]]], list[sentiment.CommentSentiment]]:
    """The themes and the sentiment of each comment, as the models name them.

    The tuned sentiment model reads beside the theme classifier, in a second thread: the
    Python parts of each (the n-grams, VADER's lexicon) then run while the other's encoder
    keeps the cores busy (about 1.1× the comments per second of one after the other). The
    interim model reads the theme classifier's embeddings, so it waits for them."""
    cleaned = [classifier.clean(c) for c in comments]
    if not cleaned:
        return [], []
    if feeling.interim:
        vectors = classifier.embed(cleaned)
        return themes_model.predict(cleaned, vectors), feeling.analyse(comments, vectors)
    feelings = _beside.submit(feeling.analyse, comments)
    themes = themes_model.predict(cleaned, classifier.embed(cleaned))
    return themes, feelings.result()


def _relabel(
    found: list[tuple[str, float]], mapping: dict[str, str | None]
) -> list[tuple[str, float]]:
    """A model trained before a merge or retirement speaks of themes as they are now: a
    merged theme's finding counts for the theme it became, a retired one's is dropped."""
    best: dict[str, float] = {}
    for slug, confidence in found:
        now = mapping.get(slug, slug)
        if now is not None and confidence > best.get(now, -1.0):
            best[now] = confidence
    return sorted(best.items(), key=lambda pair: -pair[1])
