"""Delighted's wire protocol, as the /v1/ endpoints speak it: its errors, HTTP Basic
authentication with an API key, per-key rate limits, and reading parameters from a
query, a form or a JSON body the way Delighted did."""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.views.decorators.csrf import csrf_exempt

from closeloop.access.models import ApiKey
from closeloop.core.errors import ConcurrentWriteError
from closeloop.core.schemas import has_nul
from closeloop.surveys.schemas import past_problem

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20
MAX_ID = 2**63 - 1
# Latest Unix time we accept (year 9999) and the earliest (1970).
MAX_TIMESTAMP = 253402300799


class DelightedError(Exception):
    """An answer other than success, in Delighted's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []
        self.headers = headers or {}

    def response(self) -> JsonResponse:
        body: dict[str, Any] = {"status": self.status, "message": self.message}
        if self.errors:
            body["errors"] = self.errors
        reply = JsonResponse(body, status=self.status)
        for name, value in self.headers.items():
            reply[name] = value
        return reply


def invalid(name: str, message: str, code: str = "invalid") -> DelightedError:
    """422 naming the parameter, as Delighted's validation errors do."""
    return DelightedError(
        422,
        "Validation failed",
        [{"field": name, "code": code, "message": f"{name} {message}"}],
    )


def not_found() -> DelightedError:
    return DelightedError(404, "Resource not found")


# --- authentication and rate limits ---------------------------------------------------------


def _key(request: HttpRequest) -> ApiKey:
    """The API key from HTTP Basic auth (user name; a colon and password may follow)."""
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise DelightedError(
            401, "Authentication required: HTTP Basic with your API key as the user name"
        )
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise DelightedError(401, "Invalid API key") from None
    key = ApiKey.authenticate(decoded.split(":", 1)[0])
    if key is None:
        raise DelightedError(401, "Invalid API key")
    return key


@dataclass
class _Bucket:
    tokens: float
    at: float = field(default_factory=time.monotonic)


class RateLimiter:
    """A token bucket per API key in this process: `per_minute` requests, refilled smoothly."""

    def __init__(self) -> None:
        self.buckets: dict[int, _Bucket] = {}
        self.lock = threading.Lock()

    def take(self, key_id: int, per_minute: int) -> float | None:
        """None if the request may go ahead, else the seconds until it may."""
        if per_minute <= 0:
            return None
        rate = per_minute / 60.0
        now = time.monotonic()
        with self.lock:
            bucket = self.buckets.setdefault(key_id, _Bucket(tokens=float(per_minute), at=now))
            bucket.tokens = min(float(per_minute), bucket.tokens + (now - bucket.at) * rate)
            bucket.at = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return None
            return (1 - bucket.tokens) / rate


limiter = RateLimiter()

View = Callable[..., HttpResponse]


def endpoint(methods: dict[str, View]) -> View:
    """One URL: authenticate, rate-limit, dispatch by method, and answer errors as Delighted."""

    @csrf_exempt
    @wraps(next(iter(methods.values())))
    def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        handler = methods.get(request.method or "")
        try:
            key = _key(request)
            wait = limiter.take(key.pk, settings.DELIGHTED_RATE_LIMIT_PER_MINUTE)
            if wait is not None:
                raise DelightedError(
                    429,
                    "Too many requests",
                    headers={"Retry-After": str(max(1, int(wait + 0.999)))},
                )
            if handler is None:
                raise DelightedError(405, f"{request.method} is not allowed here")
            if request.method != "GET" and not key.can_write:
                raise DelightedError(401, "This API key is read-only")
            return handler(request, _params(request), **kwargs)
        except DelightedError as error:
            return error.response()
        except (ConcurrentWriteError, OperationalError):
            # The database is busy or away: Delighted's "try again shortly".
            return DelightedError(
                503, "Service unavailable", headers={"Retry-After": "5"}
            ).response()

    return view


# --- parameters -----------------------------------------------------------------------------


def _nest(query: QueryDict) -> dict[str, Any]:
    """Form or query parameters with Rails-style nesting: `a[b]=1` → {a: {b: 1}}, `a[]=1` → [1]."""
    out: dict[str, Any] = {}
    for raw_key, values in query.lists():
        if raw_key.endswith("[]"):
            out[raw_key[:-2]] = list(values)
        elif "[" in raw_key and raw_key.endswith("]"):
            name, _, inner = raw_key[:-1].partition("[")
            target = out.setdefault(name, {})
            if not isinstance(target, dict):
                raise invalid(name, "is given both as a value and as an object")
            target[inner] = values[-1]
        else:
            out[raw_key] = values[-1]
    return out


def _params(request: HttpRequest) -> dict[str, Any]:
    """Query parameters and the body (JSON or form-encoded), merged; the body wins."""
    params = _nest(request.GET)
    if request.method in ("GET", "HEAD") or not request.body:
        return params
    content_type = request.content_type or ""
    if content_type == "application/json":
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise DelightedError(400, f"Malformed JSON body: {exc}") from None
        if not isinstance(body, dict):
            raise invalid("body", "must be a JSON object")
    elif content_type in ("application/x-www-form-urlencoded", ""):
        try:
            body = _nest(QueryDict(request.body, encoding="utf-8"))
        except UnicodeDecodeError:
            raise invalid("body", "is not valid UTF-8") from None
    elif content_type == "multipart/form-data" and request.method == "POST":
        body = _nest(request.POST)
    else:
        raise DelightedError(415, f"Unsupported content type {content_type}")
    if has_nul(body):
        raise invalid("body", "must not contain the NUL character")
    return {**params, **body}


def text(params: dict[str, Any], name: str, max_length: int) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise invalid(name, "must be a string")
    text = str(value).strip()
    if len(text) > max_length:
        raise invalid(name, f"is too long (at most {max_length} characters)")
    return text


def integer(params: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise invalid(name, "must be an integer")
    if isinstance(value, str):
        if not value.strip().lstrip("-").isdigit():
            raise invalid(name, "must be an integer")
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise invalid(name, "must be an integer")
    if not low <= value <= high:
        raise invalid(name, f"must be between {low} and {high}")
    return value


def timestamp(params: dict[str, Any], name: str) -> datetime | None:
    seconds = integer(params, name, 0, MAX_TIMESTAMP)
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


def past(params: dict[str, Any], name: str) -> datetime | None:
    """A Unix timestamp of something that already happened: from 2000-01-01 to now."""
    when = timestamp(params, name)
    problem = None if when is None else past_problem(when)
    if problem:
        raise invalid(name, problem)
    return when


def flag(params: dict[str, Any], name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1", "yes"):
        return True
    if str(value).lower() in ("false", "0", "no"):
        return False
    raise invalid(name, "must be true or false")


def properties(params: dict[str, Any], name: str) -> dict[str, Any]:
    value = params.get(name)
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid(name, "must be an object of names and values")
    if len(value) > 100:
        raise invalid(name, "has more than 100 entries")
    clean: dict[str, Any] = {}
    for key, item in value.items():
        if len(str(key)) > 100:
            raise invalid(f"{name}[{str(key)[:40]}…]", "name is longer than 100 characters")
        if item is not None and not isinstance(item, str | int | float | bool):
            raise invalid(f"{name}[{key}]", "must be a string, number or boolean")
        if isinstance(item, str) and len(item) > 1000:
            raise invalid(f"{name}[{key}]", "is longer than 1000 characters")
        clean[str(key)] = item
    return clean


def email(params: dict[str, Any], name: str) -> str | None:
    value = text(params, name, 254)
    if not value:
        return None
    try:
        validate_email(value)
    except DjangoValidationError:
        raise invalid(name, "is not a valid email address") from None
    return value.lower()


def page(params: dict[str, Any]) -> tuple[int, int]:
    per_page = integer(params, "per_page", 1, MAX_PER_PAGE) or DEFAULT_PER_PAGE
    page = integer(params, "page", 1, 100_000) or 1
    return page, per_page
