"""What an API key may do, checked the same way by every operation."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.errors import HttpError

from .models import ApiKey


def require_write(request: HttpRequest) -> ApiKey:
    """The request's key, if it may change data; 403 for a read-only key."""
    key: ApiKey = request.auth  # type: ignore[attr-defined]
    if not key.can_write:
        raise HttpError(403, "this API key is read-only")
    return key
