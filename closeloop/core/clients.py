"""Whose address a request comes from: one rule for everything that counts per client
(the login throttle, the link-survey limit)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The connection's address; with WEB_PROXY_COUNT proxies in front, the one the
    outermost proxy saw (each proxy appends to X-Forwarded-For, so the last entries are
    theirs and anything before them is whatever the client wrote)."""
    proxies: int = settings.WEB_PROXY_COUNT
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [a for a in forwarded if a]
    if proxies and len(forwarded) >= proxies:
        return str(forwarded[-proxies])
    return str(request.META.get("REMOTE_ADDR", ""))
