"""Delighted's v1 REST API, served under /v1/ for teams whose code was written for Delighted.

An integration keeps working by changing its base URL to `<SITE_URL>/v1/` and
its key to a closeloop API key (or an adopted Delighted key, see
`create_api_key --key`). Shapes, Unix timestamps, status codes, the optional
`.json` suffix, HTTP Basic auth with the key as user name, JSON or form
bodies: all as Delighted answered them. docs/delighted.md maps each endpoint
to closeloop and lists the differences.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Min, Q, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from closeloop.core.errors import FieldError
from closeloop.insights.metrics import summarise
from closeloop.loop import erasure
from closeloop.loop.consent import unsubscribe_person
from closeloop.loop.intake import change_response, record_responses
from closeloop.surveys import sending
from closeloop.surveys.delighted_shapes import person_json, response_json, unix
from closeloop.surveys.ingest import PersonData, ResponseData, upsert_people
from closeloop.surveys.models import Person, Response, Survey, SurveyRequest

from . import delighted_protocol as wire
from .delighted_protocol import DEFAULT_PER_PAGE, MAX_ID, MAX_PER_PAGE, invalid

# Person properties with a meaning of their own, as in Delighted.
_REQUEST_OPTIONS = {
    "question_product_name": "product",
    "delighted_email_subject": "subject",
    "delighted_intro_message": "intro",
    "thank_you_message": "thank_you",
    "thank_you_link_text": "thank_you_link_text",
    "thank_you_link_url": "thank_you_link_url",
}


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
    channel = wire.text(params, "channel", 10) or "email"
    if channel == "sms":
        raise invalid("channel", "sms is not supported: closeloop surveys by email", "unsupported")
    if channel != "email":
        raise invalid("channel", "must be email or sms")
    email = wire.email(params, "email")
    if email is None:
        raise invalid("email", "is required", "missing")
    new_email = wire.email(params, "email_update")
    phone = wire.text(params, "phone_number", 32)
    new_phone = wire.text(params, "phone_number_update", 32)
    name = wire.text(params, "name", 200)
    delay = wire.integer(params, "delay", 0, 365 * 86400) or 0
    send = wire.flag(params, "send", True)
    last_sent_at = wire.past(params, "last_sent_at")
    properties = wire.properties(params, "properties")
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
    per_page = wire.integer(params, "per_page", 1, MAX_PER_PAGE) or DEFAULT_PER_PAGE
    people = Person.objects.all()
    since, until = wire.timestamp(params, "since"), wire.timestamp(params, "until")
    if since:
        people = people.filter(created_at__gte=since)
    if until:
        people = people.filter(created_at__lte=until)
    email = wire.email(params, "email")
    if email:
        people = people.filter(email=email)
    phone = wire.text(params, "phone_number", 32)
    if phone:
        people = people.filter(phone=phone)
    after = wire.integer(params, "page_info", 0, MAX_ID)
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
        raise wire.not_found()
    if kind == "email":
        value = value.lower()
    person = Person.objects.filter(**{lookups[kind]: value}).order_by("pk").first()
    if person is None:
        raise wire.not_found()
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
        raise wire.not_found()
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
    score = wire.integer(params, "score", 0, 10)
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
    comment = wire.text(params, "comment", 10_000) or ""
    properties = wire.properties(params, "person_properties")
    data = ResponseData(
        person=PersonData.of(person),
        score=score,
        comment=comment,
        # A back-dated answer keeps its date; an old one is history and opens no case.
        created_at=wire.past(params, "created_at"),
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
        when = wire.timestamp(params, name)
        if when is not None:
            answers = answers.filter(**{lookup: when})
    trend = wire.integer(params, "trend", 1, MAX_ID)
    if trend is not None:
        answers = answers.filter(survey_id=trend)
    return answers


def list_responses(request: HttpRequest, params: dict[str, Any]) -> HttpResponse:
    """GET /v1/survey_responses: a page of answers, filtered and ordered as Delighted's."""
    page, per_page = wire.page(params)
    answers = _responses(params)
    person_id = wire.integer(params, "person_id", 1, MAX_ID)
    if person_id is not None:
        answers = answers.filter(person_id=person_id)
    person_email = wire.email(params, "person_email")
    if person_email:
        answers = answers.filter(person__email=person_email)
    orders = {
        "asc": ("created_at", "pk"),
        "desc": ("-created_at", "-pk"),
        "asc:updated_at": ("updated_at", "pk"),
        "desc:updated_at": ("-updated_at", "-pk"),
    }
    order = wire.text(params, "order", 20) or "asc"
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
        raise wire.not_found()
    response = Response.objects.select_related("person").filter(pk=int(pk)).first()
    if response is None:
        raise wire.not_found()
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
    comment = wire.text(params, "comment", 10_000) if "comment" in params else None
    notes = params.get("notes")
    if isinstance(notes, list):
        notes = None  # the list a retrieve returned, sent back unchanged
    elif notes is not None:
        notes = wire.text(params, "notes", 10_000)
    updated = change_response(
        response,
        score=score,
        comment=comment,
        notes=notes,
        properties=wire.properties(params, "person_properties"),
        via="delighted_api",
    )
    return JsonResponse(_response_json(updated, {"person"} & _expand(params)))


# --- metrics, unsubscribes, bounces ---------------------------------------------------------


def metrics(request: HttpRequest, params: dict[str, Any]) -> HttpResponse:
    """GET /v1/metrics: NPS and class counts between since and until (default: the last 30 days)."""
    until = wire.timestamp(params, "until") or timezone.now()
    since = wire.timestamp(params, "since") or until - timedelta(days=30)
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
    email = wire.email(params, "person_email")
    if email is None:
        raise invalid("person_email", "is required", "missing")
    try:
        person = upsert_people([PersonData(email=email)])[("email", email)]
    except FieldError as exc:
        raise invalid("person_email", exc.reason) from None
    unsubscribe_person(person)
    return JsonResponse({"ok": True})


def _listed(params: dict[str, Any], flag: str, label: str) -> list[dict[str, Any]]:
    page, per_page = wire.page(params)
    people = Person.objects.filter(**{f"{flag}__isnull": False})
    since, until = wire.timestamp(params, "since"), wire.timestamp(params, "until")
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
