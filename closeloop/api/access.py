"""What an API key may do, checked the same way by every operation.

Three scopes: read-only keys read; read-write keys also change answers, people,
accounts and cases; admin keys also change how closeloop works (channels, the triage
policy, templates, teams, routing rules, announcements, the theme taxonomy) and are
the only keys that see channel secrets and URLs.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja.errors import HttpError

from closeloop.access.models import ApiKey


def require_write(request: HttpRequest) -> ApiKey:
    """The request's key, if it may change data; 403 for a read-only key."""
    key: ApiKey = request.auth  # type: ignore[attr-defined]
    if not key.can_write:
        raise HttpError(403, "this API key is read-only")
    return key


def require_admin(request: HttpRequest) -> ApiKey:
    """The request's key, if it may change settings; 403 for any other key."""
    key: ApiKey = request.auth  # type: ignore[attr-defined]
    if not key.is_admin:
        raise HttpError(
            403,
            "this operation changes settings and needs an admin API key "
            "(manage.py create_api_key NAME --admin, or the API keys page)",
        )
    return key


def sees_secrets(request: HttpRequest) -> bool:
    """Whether the request's key may see channel secrets and webhook URLs."""
    key: ApiKey | None = getattr(request, "auth", None)
    return key is not None and key.is_admin
