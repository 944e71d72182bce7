"""API v1: ingest answers, upsert customers, read answers and NPS metrics.

Served at /api/v1/ with its OpenAPI document at /api/v1/docs. Callers send
`Authorization: Bearer <key>`; keys come from `manage.py create_api_key`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import date, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from ninja import Field, NinjaAPI, Schema, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.security import HttpBearer
from pydantic import ValidationError

from closeloop.access.models import ApiKey, IdempotencyRecord
from closeloop.core.errors import FieldError
from closeloop.core.nps import NpsSummary
from closeloop.insights.filters import ResponseFilter
from closeloop.insights.metrics import compare_periods, previous_period
from closeloop.loop import erasure
from closeloop.loop.intake import record_responses
from closeloop.surveys.ingest import Outcome, upsert_accounts
from closeloop.surveys.ingest import upsert_people as _upsert_people
from closeloop.surveys.models import Account, Person, Response, Survey
from closeloop.surveys.schemas import AccountIn, PersonIn, ResponseIn
from closeloop.themes.model_files import ModelNotReady

from .access import require_write
from .announcements import router as announcements_router
from .cases import router as follow_up_router
from .insights import router as insights_router
from .schemas import (
    AccountDetailOut,
    BatchIn,
    BatchOut,
    MetricsOut,
    PersonOut,
    ResponseOut,
    ResponsePage,
)
from .surveys import router as surveys_router
from .themes import router as themes_router
from .tickets import router as tickets_router


class BearerKey(HttpBearer):
    """Bearer authentication with an API key."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        return ApiKey.authenticate(token)


api = NinjaAPI(
    title="closeloop API",
    version="1",
    urls_namespace="api-v1",
    auth=BearerKey(),
    docs_url="/docs",
    description=__doc__,
)


def _error(status: int, loc: list[str | int], msg: str) -> JsonResponse:
    return JsonResponse({"detail": [{"loc": loc, "msg": msg}]}, status=status)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
        return _error(400, ["body"], f"malformed JSON: {exc.__cause__}")
    return JsonResponse({"detail": str(exc)}, status=exc.status_code)


@api.exception_handler(ModelNotReady)
def _model_not_ready(request: HttpRequest, exc: ModelNotReady) -> HttpResponse:
    """A model the call needs is still being built by the worker: try again shortly."""
    reply = JsonResponse({"detail": str(exc)}, status=503)
    reply["Retry-After"] = str(exc.retry_after)
    return reply


@api.exception_handler(AuthenticationError)
def _unauthorised(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return JsonResponse(
        {"detail": "missing, unknown or revoked API key; send Authorization: Bearer <key>"},
        status=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


@api.exception_handler(FieldError)
def _bad_input(request: HttpRequest, exc: FieldError) -> HttpResponse:
    """Input that cannot be used: every problem, each naming where in the request it is."""
    detail = [
        {"loc": [exc.where, *field.split(".")] if field else [exc.where], "msg": reason}
        for field, reason in exc.problems
    ]
    return JsonResponse({"detail": detail}, status=exc.status)


def _idempotent(request: HttpRequest, key: ApiKey, run: Any) -> HttpResponse:
    """Run a write once per Idempotency-Key: a retry gets the first answer back.

    The answer is recorded in the write's own transaction, so a crash leaves
    neither; a concurrent duplicate fails on the unique key and replays.
    """
    idem = request.headers.get("Idempotency-Key")
    if not idem:
        status, body = run()
        return JsonResponse(body, status=status, safe=False)
    if len(idem) > 255:
        return _error(422, ["header", "Idempotency-Key"], "must be at most 255 characters")
    digest = hashlib.sha256(request.body).hexdigest()
    for _ in range(2):
        stored = IdempotencyRecord.objects.filter(api_key=key, key=idem).first()
        if stored is not None and stored.created_at < IdempotencyRecord.cutoff():
            stored.delete()  # forgotten: the key starts afresh
            stored = None
        if stored is not None:
            if stored.request_hash != digest or stored.path != request.path:
                return _error(
                    409, ["header", "Idempotency-Key"], "was used before for a different request"
                )
            return JsonResponse(stored.body, status=stored.status_code, safe=False)
        try:
            with transaction.atomic():
                status, body = run()
                if status < 500:
                    IdempotencyRecord.objects.create(
                        api_key=key,
                        key=idem,
                        path=request.path,
                        request_hash=digest,
                        status_code=status,
                        body=body,
                    )
            return JsonResponse(body, status=status, safe=False)
        except IntegrityError:
            continue
    raise HttpError(409, "concurrent requests with one Idempotency-Key")


def _response_json(response: Response) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(ResponseOut.from_orm(response).model_dump_json())
    return body


@api.post("/responses", response={200: ResponseOut, 201: ResponseOut}, summary="Record an answer")
def create_response(request: HttpRequest, payload: ResponseIn) -> HttpResponse:
    """Store one answer. A repeat with the same `external_id` returns the original with 200."""
    key = require_write(request)

    def run() -> tuple[int, dict[str, Any]]:
        (outcome,) = record_responses([payload.to_data()])
        return (201 if outcome.created else 200), _response_json(outcome.response)

    return _idempotent(request, key, run)


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(item)"


@api.post("/responses/batch", response=BatchOut, summary="Record up to 1,000 answers")
def create_responses_batch(request: HttpRequest, payload: BatchIn) -> HttpResponse:
    """Validate each item on its own; store the valid ones together, report the others.

    `ids[i]` is the stored id of item i (null when rejected). Items whose
    `external_id` is already stored are accepted and point at the original. The
    answers are stored at once and triaged by the worker right after (its intake lane).
    """
    key = require_write(request)
    known_surveys = set(Survey.objects.values_list("slug", flat=True))

    def run() -> tuple[int, dict[str, Any]]:
        rejected: list[dict[str, Any]] = []
        valid: list[tuple[int, ResponseIn]] = []
        for index, raw in enumerate(payload.responses):
            try:
                item = ResponseIn.model_validate(raw)
            except ValidationError as exc:
                first = exc.errors()[0]
                rejected.append(
                    {"index": index, "field": _loc(first["loc"]), "reason": first["msg"]}
                )
                continue
            if item.survey and item.survey not in known_surveys:
                rejected.append(
                    {"index": index, "field": "survey", "reason": f"no survey {item.survey!r}"}
                )
                continue
            valid.append((index, item))
        ids: list[int | None] = [None] * len(payload.responses)
        outcomes: list[Outcome] = record_responses(
            [item.to_data() for _, item in valid], triage_later=True
        )
        for (index, _), outcome in zip(valid, outcomes, strict=True):
            ids[index] = outcome.response.pk
        return 200, {"accepted": len(valid), "rejected": rejected, "ids": ids}

    return _idempotent(request, key, run)


@api.get("/responses", response=ResponsePage, summary="List answers, newest first")
def list_responses(
    request: HttpRequest, cursor: str | None = None, limit: int = 100
) -> dict[str, Any]:
    """Filter with since, until, score (e.g. 0,1,2), band, category, account, tier, survey,
    q (comment text) and property.<key>=<value>; page with the returned `next_cursor`."""
    if not 1 <= limit <= 500:
        raise FieldError("limit", "must be from 1 to 500", where="query")
    qs = ResponseFilter.from_params(request.GET).apply(
        Response.objects.select_related("person", "account", "survey").prefetch_related(
            "theme_tags__theme"
        )
    )
    if cursor:
        created_at, last_id = _decode_cursor(cursor)
        qs = qs.filter(created_at__lte=created_at).exclude(created_at=created_at, id__gte=last_id)
    page = list(qs.order_by("-created_at", "-id")[: limit + 1])
    next_cursor = _encode_cursor(page[limit - 1]) if len(page) > limit else None
    return {"items": page[:limit], "next_cursor": next_cursor}


def _encode_cursor(response: Response) -> str:
    raw = f"{response.created_at.isoformat()}|{response.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        created, pk = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created), int(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise FieldError("cursor", "is not a cursor this API returned", where="query") from None


@api.get("/responses/{response_id}", response=ResponseOut, summary="One answer")
def get_response(request: HttpRequest, response_id: int) -> Response:
    """Read one stored answer by id."""
    return get_object_or_404(
        Response.objects.select_related("person", "account", "survey"), pk=response_id
    )


def _figures(summary: NpsSummary, since: date, until: date) -> dict[str, Any]:
    low, high = summary.interval
    return {
        "since": since,
        "until": until,
        "nps": round(summary.nps, 1),
        "promoters": summary.promoters,
        "passives": summary.passives,
        "detractors": summary.detractors,
        "responses": summary.responses,
        "promoter_percent": round(summary.percent(summary.promoters), 1),
        "passive_percent": round(summary.percent(summary.passives), 1),
        "detractor_percent": round(summary.percent(summary.detractors), 1),
        "nps_ci_low": round(low, 1),
        "nps_ci_high": round(high, 1),
    }


@api.get("/metrics", response=MetricsOut, summary="NPS for a period and segment")
def metrics(request: HttpRequest) -> dict[str, Any]:
    """NPS, counts, percentages and 95% interval for [since, until] (days in
    ORG_TIME_ZONE, until inclusive; default the last 30 days), with the previous period
    of equal length and whether the change is statistically significant. Takes the
    segment filters of GET /responses."""
    flt = ResponseFilter.from_params(request.GET)
    since, until = flt.period(30)
    if since > until:
        raise FieldError("since", "is after until", where="query")
    cmp = compare_periods(flt.apply_segment(Response.objects.all()), since, until)
    prev_since, prev_until = previous_period(since, until)
    return {
        **_figures(cmp.current, since, until),
        "previous": _figures(cmp.previous, prev_since, prev_until),
        "change": round(cmp.change, 1),
        "change_significant": cmp.change_significant,
    }


@api.post("/people", response={200: PersonOut, 201: PersonOut}, summary="Create or update a person")
def upsert_person(request: HttpRequest, payload: PersonIn) -> Status[Person]:
    """Found by email, else external_id; given fields replace, properties merge."""
    require_write(request)
    data = payload.to_data()
    existed = Person.objects.filter(**{data.key()[0]: data.key()[1]}).exists()
    with transaction.atomic():
        person = _upsert_people([data])[data.key()]
    person = Person.objects.select_related("account").get(pk=person.pk)
    return Status(200 if existed else 201, person)


@api.get("/people/{person_id}", response=PersonOut, summary="One person")
def get_person(request: HttpRequest, person_id: int) -> Person:
    """Read one person with their account."""
    return get_object_or_404(Person.objects.select_related("account"), pk=person_id)


class ErasedOut(Schema):
    erased: dict[str, int] = Field(description="how many rows of each kind were removed")


@api.delete("/people/{person_id}", response=ErasedOut, summary="Erase a person")
def erase_person(request: HttpRequest, person_id: int) -> dict[str, Any]:
    """Remove the person and every copy of their personal data: answers, cases, emails
    and webhooks about them, their replies, theme examples from their words, stored API
    replies naming them. Only a hash of their address is kept, so they are never
    surveyed again (docs/privacy.md)."""
    require_write(request)
    person = get_object_or_404(Person, pk=person_id)
    return {"erased": erasure.erase(person).counts}


@api.post(
    "/accounts",
    response={200: AccountDetailOut, 201: AccountDetailOut},
    summary="Create or update an account",
)
def upsert_account(request: HttpRequest, payload: AccountIn) -> Status[Account]:
    """Found by external_id, else name; given fields replace, properties merge.

    `churned_at` (and `churn_reason`) records that the account left; `churned: false`
    brings it back; a new `arr` below or above the last is a contraction or expansion.
    Each goes into the account's `changes`, which the program's churn figures read."""
    require_write(request)
    data = payload.to_data()
    field, value = data.key()
    lookup = {field: value} if field == "external_id" else {field: value, "external_id": None}
    existed = Account.objects.filter(**lookup).exists()
    with transaction.atomic():
        account = upsert_accounts([data])[data.key()]
    return Status(200 if existed else 201, account)


@api.get("/accounts/{account_id}", response=AccountDetailOut, summary="One account")
def get_account(request: HttpRequest, account_id: int) -> Account:
    """Read one account."""
    return get_object_or_404(Account, pk=account_id)


api.add_router("", follow_up_router)
api.add_router("", announcements_router)
api.add_router("", surveys_router)
api.add_router("", insights_router)
api.add_router("", themes_router)
api.add_router("", tickets_router)
