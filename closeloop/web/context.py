"""What every page's top bar needs about the signed-in user, and what pages that show
sentiment say about the model that read it."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject


def unread_notifications(request: HttpRequest) -> dict[str, Any]:
    """How many in-app notifications the user has not seen (the bell)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"unread_notifications": user.notifications.filter(read_at__isnull=True).count()}


def sentiment_model(request: HttpRequest) -> dict[str, Any]:
    """`sentiment_model`: whether the tuned sentiment model is ready, or the tuning's
    progress; read only by pages that include `_sentiment_note.html`."""
    from closeloop.insights import sentiment

    return {"sentiment_model": SimpleLazyObject(sentiment.status)}
