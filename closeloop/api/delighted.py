"""Delighted's v1 REST API, served under /v1/ for teams whose code was written for Delighted.

An integration keeps working by changing its base URL to `<SITE_URL>/v1/` and
its key to a closeloop API key (or an adopted Delighted key, see
`create_api_key --key`). Shapes, Unix timestamps, status codes, the optional
`.json` suffix, HTTP Basic auth with the key as user name, JSON or form
bodies: all as Delighted answered them. docs/delighted.md maps each endpoint
to closeloop and lists the differences.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import OperationalError, transaction
from django.db.models import Max, Min, Q, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from closeloop.access.models import ApiKey
from closeloop.core.errors import ConcurrentWriteError, FieldError
from closeloop.core.schemas import has_nul
from closeloop.insights.metrics import summarise
from closeloop.loop import erasure
from closeloop.loop.consent import unsubscribe_person
from closeloop.loop.intake import change_response, record_responses
from closeloop.surveys import sending
from closeloop.surveys.delighted_shapes import person_json, response_json, unix
from closeloop.surveys.ingest import PersonData, ResponseData, upsert_people
from closeloop.surveys.models import Person, Response, Survey, SurveyRequest
from closeloop.surveys.schemas import past_problem

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20
MAX_ID = 2**63 - 1
# Latest Unix time we accept (year 9999) and the earliest (1970).
MAX_TIMESTAMP = 253402300799
# Person properties with a meaning of their own, as in Delighted.
_REQUEST_OPTIONS = {
    "question_product_name": "product",
    "delighted_email_subject": "subject",
    "delighted_intro_message": "intro",
    "thank_you_message": "thank_you",
    "thank_you_link_text": "thank_you_link_text",
    "thank_you_link_url": "thank_you_link_url",
}


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


def _not_found() -> DelightedError:
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


def _text(params: dict[str, Any], name: str, max_length: int) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise invalid(name, "must be a string")
    text = str(value).strip()
    if len(text) > max_length:
        raise invalid(name, f"is too long (at most {max_length} characters)")
    return text


def _integer(params: dict[str, Any], name: str, low: int, high: int) -> int | None:
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


def _timestamp(params: dict[str, Any], name: str) -> datetime | None:
    seconds = _integer(params, name, 0, MAX_TIMESTAMP)
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


def _past(params: dict[str, Any], name: str) -> datetime | None:
    """A Unix timestamp of something that already happened: from 2000-01-01 to now."""
    when = _timestamp(params, name)
    problem = None if when is None else past_problem(when)
    if problem:
        raise invalid(name, problem)
    return when


def _flag(params: dict[str, Any], name: str, default: bool) -> bool:
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


def _properties(params: dict[str, Any], name: str) -> dict[str, Any]:
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


def _email(params: dict[str, Any], name: str) -> str | None:
    value = _text(params, name, 254)
    if not value:
        return None
    try:
        validate_email(value)
    except DjangoValidationError:
        raise invalid(name, "is not a valid email address") from None
    return value.lower()


def _page(params: dict[str, Any]) -> tuple[int, int]:
    per_page = _integer(params, "per_page", 1, MAX_PER_PAGE) or DEFAULT_PER_PAGE
    page = _integer(params, "page", 1, 100_000) or 1
    return page, per_page


# --- people ---------------------------------------------------------------------------------


def _with_survey_dates(people: QuerySet[Person]) -> QuerySet[Person]:
    return people.annotate(
        last_sent_at=Max("survey_requests__sent_at"),
        last_responded_at=Max("responses__created_at"),
        next_survey_scheduled_at=Min(
            "survey_requests__scheduled_at",
            filter=Q(survey_requests__status=SurveyRequest.Status.SCHEDULED),
        ),
    )


def create_person(request: HttpRequest, params: dict[str, Any]) -> HttpResponse:
    """POST /v1/people: add or update a person and (unless send=false) schedule their survey."""
    channel = _text(params, "channel", 10) or "email"
    if channel == "sms":
        raise invalid("channel", "sms is not supported: closeloop surveys by email", "unsupported")
    if channel != "email":
        raise invalid("channel", "must be email or sms")
    email = _email(params, "email")
    if email is None:
        raise invalid("email", "is required", "missing")
    new_email = _email(params, "email_update")
    phone = _text(params, "phone_number", 32)
    new_phone = _text(params, "phone_number_update", 32)
    name = _text(params, "name", 200)
    delay = _integer(params, "delay", 0, 365 * 86400) or 0
    send = _flag(params, "send", True)
    last_sent_at = _past(params, "last_sent_at")
    properties = _properties(params, "properties")
    locale = properties.pop("locale", None)
    options = {
        option: str(properties.pop(prop))
        for prop, option in _REQUEST_OPTIONS.items()
        if properties.get(prop) not in (None, "")
    }
    for prop, limit in (("delighted_email_subject", 200), ("question_product_name", 100)):
        value = options.get(_REQUEST_OPTIONS[prop], "")
        if len(value) > limit:
            raise invalid(f"properties[{prop}]", f"at most {limit} characters")
    link = options.get("thank_you_link_url", "")
    if link and not (link.startswith(("https://", "http://")) and len(link) <= 2000):
        raise invalid("properties[thank_you_link_url]", "must be an http(s) URL")
    with transaction.atomic():
        if new_email and new_email != email:
            if Person.objects.filter(email=new_email).exists():
                raise invalid("email_update", "belongs to another person", "taken")
            Person.objects.filter(email=email).update(email=new_email)
            email = new_email
        data = PersonData(
            email=email,
            name=name,
            phone=new_phone or phone,
            locale=str(locale)[:16] if locale else None,
            properties=properties,
        )
        try:
            person = upsert_people([data])[("email", email)]
        except FieldError as exc:
            raise invalid(exc.field, exc.reason) from None
        if last_sent_at is not None:
            # Surveyed elsewhere (by Delighted): the throttle counts it before scheduling.
            Person.objects.filter(pk=person.pk).update(last_sent_elsewhere_at=last_sent_at)
            person.last_sent_elsewhere_at = last_sent_at
        scheduled_at = None
        if send:
            (survey_request,) = sending.schedule(
                [person],
                Survey.default(),
                at=timezone.now() + timedelta(seconds=delay),
                options=options,
            )
            if survey_request.status == SurveyRequest.Status.SCHEDULED:
                scheduled_at = survey_request.scheduled_at
    return JsonResponse(
        {
            "id": str(person.pk),
            "email": person.email,
            "name": person.name or None,
            "survey_scheduled_at": unix(scheduled_at),
            "properties": person.properties,
        }
    )


def list_people(request: HttpRequest, params: dict[str, Any]) -> HttpResponse:
    """GET /v1/people: people in the order they were added, with a Link header to the next page."""
    per_page = _integer(params, "per_page", 1, MAX_PER_PAGE) or DEFAULT_PER_PAGE
    people = Person.objects.all()
    since, until = _timestamp(params, "since"), _timestamp(params, "until")
    if since:
        people = people.filter(created_at__gte=since)
    if until:
        people = people.filter(created_at__lte=until)
    email = _email(params, "email")
    if email:
        people = people.filter(email=email)
    phone = _text(params, "phone_number", 32)
    if phone:
        people = people.filter(phone=phone)
    after = _integer(params, "page_info", 0, MAX_ID)
    if after:
        people = people.filter(pk__gt=after)
    found = list(_with_survey_dates(people.order_by("pk"))[: per_page + 1])
    reply = JsonResponse([person_json(p) for p in found[:per_page]], safe=False)
    if len(found) > per_page:
        query = {k: v for k, v in request.GET.items() if k != "page_info"}
        query["page_info"] = str(found[per_page - 1].pk)
        url = request.build_absolute_uri(f"{request.path}?{urlencode(query)}")
        reply["Link"] = f'<{url}>; rel="next"'
    return reply


def _find_person(identifier: str) -> Person:
    kind, _, value = identifier.partition(":")
    if not value:
        kind, value = "id", identifier
    lookups = {"id": "pk", "email": "email", "phone_number": "phone"}
    if kind not in lookups:
        raise invalid("id", "must be an id, email:<address> or phone_number:<number>")
    if kind == "id" and (not value.isdigit() or int(value) > MAX_ID):
        raise _not_found()
    if kind == "email":
        value = value.lower()
    person = Person.objects.filter(**{lookups[kind]: value}).order_by("pk").first()
    if person is None:
        raise _not_found()
    return person


def delete_person(request: HttpRequest, params: dict[str, Any], identifier: str) -> HttpResponse:
    """DELETE /v1/people/<id | email:… | phone_number:…>: the person and every copy of
    their personal data (closeloop/loop/erasure.py)."""
    person = _find_person(identifier)
    erasure.erase(person)
    return JsonResponse({"ok": True}, status=202)


def delete_pending(request: HttpRequest, params: dict[str, Any], identifier: str) -> HttpResponse:
    """DELETE /v1/people/<email>/survey_requests/pending: cancel surveys not yet sent."""
    person = Person.objects.filter(email=identifier.lower()).first()
    if person is None:
        raise _not_found()
    SurveyRequest.objects.filter(person=person, status=SurveyRequest.Status.SCHEDULED).update(
        status=SurveyRequest.Status.CANCELLED,
        status_reason="pending survey requests deleted through the API",
    )
    return JsonResponse({"ok": True})


# --- survey responses -----------------------------------------------------------------------


def _response_json(response: Response, expand: set[str]) -> dict[str, Any]:
    return response_json(response, expand, settings.SITE_URL)


def _expand(params: dict[str, Any]) -> set[str]:
    value = params.get("expand", [])
    items = value if isinstance(value, list) else [value]
    unknown = [str(i) for i in items if i not in ("person", "notes")]
    if unknown:
        raise invalid("expand", f"cannot expand {unknown[0]!r}; use person or notes")
    return {str(i) for i in items}


def _score(params: dict[str, Any], required: bool) -> int | None:
    score = _integer(params, "score", 0, 10)
    if score is None and required:
        raise invalid("score", "is required", "missing")
    return score


def create_response(request: HttpRequest, params: dict[str, Any]) -> HttpResponse:
    """POST /v1/survey_responses: record an answer for a person already added."""
    raw_person = params.get("person")
    if raw_person in (None, ""):
        raise invalid("person", "is required", "missing")
    if not str(raw_person).isdigit() or int(str(raw_person)) > MAX_ID:
        raise invalid("person", "must be the id of a person")
    person = Person.objects.filter(pk=int(str(raw_person))).first()
    if person is None:
        raise invalid("person", "does not exist", "not_found")
    score = _score(params, required=True)
    assert score is not None
    comment = _text(params, "comment", 10_000) or ""
    properties = _properties(params, "person_properties")
    data = ResponseData(
        person=PersonData.of(person),
        score=score,
        comment=comment,
        # A back-dated answer keeps its date; an old one is history and opens no case.
        created_at=_past(params, "created_at"),
        properties=properties,
        source="api",
    )
    try:
        (outcome,) = record_responses([data])
    except FieldError as exc:
        raise invalid(exc.field, exc.reason) from None
    return JsonResponse(_response_json(outcome.response, set()), status=201)


def _responses(params: dict[str, Any]) -> QuerySet[Response]:
    answers = Response.objects.all()
    for name, lookup in (
        ("since", "created_at__gte"),
        ("until", "created_at__lte"),
        ("updated_since", "updated_at__gte"),
        ("updated_until", "updated_at__lte"),
    ):
        when = _timestamp(params, name)
        if when is not None:
            answers = answers.filter(**{lookup: when})
    trend = _integer(params, "trend", 1, MAX_ID)
    if trend is not None:
        answers = answers.filter(survey_id=trend)
    return answers


def list_responses(request: HttpRequest, params: dict[str, Any]) -> HttpResponse:
    """GET /v1/survey_responses: a page of answers, filtered and ordered as Delighted's."""
    page, per_page = _page(params)
    answers = _responses(params)
    person_id = _integer(params, "person_id", 1, MAX_ID)
    if person_id is not None:
        answers = answers.filter(person_id=person_id)
    person_email = _email(params, "person_email")
    if person_email:
        answers = answers.filter(person__email=person_email)
    orders = {
        "asc": ("created_at", "pk"),
        "desc": ("-created_at", "-pk"),
        "asc:updated_at": ("updated_at", "pk"),
        "desc:updated_at": ("-updated_at", "-pk"),
    }
    order = _text(params, "order", 20) or "asc"
    if order not in orders:
        raise invalid("order", "must be asc, desc, asc:updated_at or desc:updated_at")
    expand = _expand(params)
    if "person" in expand:
        answers = answers.select_related("person")
    start = (page - 1) * per_page
    found = list(answers.order_by(*orders[order])[start : start + per_page + 1])
    reply = JsonResponse([_response_json(r, expand) for r in found[:per_page]], safe=False)
    if len(found) > per_page:
        query = {k: v for k, v in request.GET.items() if k != "page"}
        url = request.build_absolute_uri(f"{request.path}?{urlencode({**query, 'page': page + 1})}")
        reply["Link"] = f'<{url}>; rel="next"'
    return reply


def _find_response(pk: str) -> Response:
    if not pk.isdigit() or int(pk) > MAX_ID:
        raise _not_found()
    response = Response.objects.select_related("person").filter(pk=int(pk)).first()
    if response is None:
        raise _not_found()
    return response


def get_response(request: HttpRequest, params: dict[str, Any], pk: str) -> HttpResponse:
    """GET /v1/survey_responses/<id>."""
    return JsonResponse(_response_json(_find_response(pk), _expand(params)))


def update_response(request: HttpRequest, params: dict[str, Any], pk: str) -> HttpResponse:
    """PUT /v1/survey_responses/<id>: change score, comment, properties or notes (kept in history).

    Read-only fields a client sends back (id, permalink, timestamps) are ignored.
    """
    response = _find_response(pk)
    given_person = params.get("person")
    if isinstance(given_person, dict):
        given_person = given_person.get("id")
    if given_person not in (None, "") and str(given_person) != str(response.person_id):
        raise invalid("person", "cannot be changed: an answer belongs to the person who gave it")
    score = _score(params, required=False)
    comment = _text(params, "comment", 10_000) if "comment" in params else None
    notes = params.get("notes")
    if isinstance(notes, list):
        notes = None  # the list a retrieve returned, sent back unchanged
    elif notes is not None:
        notes = _text(params, "notes", 10_000)
    updated = change_response(
        response,
        score=score,
        comment=comment,
        notes=notes,
        properties=_properties(params, "person_properties"),
        via="delighted_api",
    )
    return JsonResponse(_response_json(updated, {"person"} & _expand(params)))


# --- metrics, unsubscribes, bounces ---------------------------------------------------------


def metrics(request: HttpRequest, params: dict[str, Any]) -> HttpResponse:
    """GET /v1/metrics: NPS and class counts between since and until (default: the last 30 days)."""
    until = _timestamp(params, "until") or timezone.now()
    since = _timestamp(params, "since") or until - timedelta(days=30)
    if since > until:
        raise invalid("since", "must be before until")
    answers = _responses({k: v for k, v in params.items() if k == "trend"}).filter(
        created_at__gte=since, created_at__lte=until
    )
    summary = summarise(answers)
    return JsonResponse(
        {
            "nps": round(summary.nps),
            "promoter_count": summary.promoters,
            "promoter_percent": round(summary.percent(summary.promoters), 2),
            "passive_count": summary.passives,
            "passive_percent": round(summary.percent(summary.passives), 2),
            "detractor_count": summary.detractors,
            "detractor_percent": round(summary.percent(summary.detractors), 2),
            "response_count": summary.responses,
        }
    )


def create_unsubscribe(request: HttpRequest, params: dict[str, Any]) -> HttpResponse:
    """POST /v1/unsubscribes: stop surveying an address (a new one is added, unsubscribed)."""
    email = _email(params, "person_email")
    if email is None:
        raise invalid("person_email", "is required", "missing")
    try:
        person = upsert_people([PersonData(email=email)])[("email", email)]
    except FieldError as exc:
        raise invalid("person_email", exc.reason) from None
    unsubscribe_person(person)
    return JsonResponse({"ok": True})


def _listed(params: dict[str, Any], flag: str, label: str) -> list[dict[str, Any]]:
    page, per_page = _page(params)
    people = Person.objects.filter(**{f"{flag}__isnull": False})
    since, until = _timestamp(params, "since"), _timestamp(params, "until")
    if since:
        people = people.filter(**{f"{flag}__gte": since})
    if until:
        people = people.filter(**{f"{flag}__lte": until})
    start = (page - 1) * per_page
    return [
        {
            "person_id": str(p.pk),
            "email": p.email,
            "name": p.name or None,
            label: unix(getattr(p, flag)),
        }
        for p in people.order_by(flag, "pk")[start : start + per_page]
    ]


def list_unsubscribes(request: HttpRequest, params: dict[str, Any]) -> HttpResponse:
    """GET /v1/unsubscribes."""
    return JsonResponse(_listed(params, "unsubscribed_at", "unsubscribed_at"), safe=False)


def list_bounces(request: HttpRequest, params: dict[str, Any]) -> HttpResponse:
    """GET /v1/bounces."""
    return JsonResponse(_listed(params, "bounced_at", "bounced_at"), safe=False)
