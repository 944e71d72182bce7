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
    from closeloop.themes import sentiment

    return {"sentiment_model": SimpleLazyObject(sentiment.status)}


def mail_outages(request: HttpRequest) -> dict[str, Any]:
    """`mail_outages`: what holds email back because of our own set-up (a refused login,
    an unreachable server, a refused sender), for the banner managers and admins see."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.can_manage():
        return {}
    from closeloop.delivery.models import Outage

    return {"mail_outages": list(Outage.objects.filter(resolved_at=None).order_by("started_at"))}
