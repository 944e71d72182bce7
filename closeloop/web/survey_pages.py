"""The pages customers see: answer by clicking a number, add a comment, unsubscribe.

Every page works without JavaScript, in the person's language, on a phone.
A click on a number in the email opens the page with that number chosen. Mail
scanners open every link of a message, so opening a link (GET) records nothing:
the page's script saves the number with a POST as it loads (scanners do not run
it), and without JavaScript the page's button does. Several different numbers of
one email opened within a few seconds are a scanner's doing: the script's save is
refused and the answer stays as it was. Clicking another number later changes the
answer (the change is kept). Links are signed; a damaged one gets 400 and an
expired one 410, each with a page that says so.

Anonymous answers to link surveys are limited per client address and survey
(LINK_SURVEY_ANSWERS_PER_MINUTE), beyond which the page answers 429.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from closeloop.core.clients import client_address
from closeloop.core.errors import FieldError
from closeloop.core.schemas import has_nul
from closeloop.loop.consent import unsubscribe_person
from closeloop.loop.intake import answer_request, change_response, record_responses
from closeloop.surveys import links
from closeloop.surveys.ingest import ACCOUNT_PREFIX, PersonData, ResponseData
from closeloop.surveys.mail import context, sample_request
from closeloop.surveys.models import LinkHit, Person, Response, Survey, SurveyRequest
from closeloop.surveys.texts import texts

MAX_COMMENT = 10_000
MAX_LINK_PROPERTIES = 30
_PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_RESPONSE_SALT = "closeloop.surveys.link-response"
_PERSON_SALT = "closeloop.surveys.link-person"
_CLICK_SALT = "closeloop.surveys.click"
# Different numbers of one email opened within this long are a scanner, not a person.
SCANNER_WINDOW = timedelta(seconds=10)


def _problem(request: HttpRequest, error: links.LinkError) -> HttpResponse:
    t = texts(request.headers.get("Accept-Language", "en")[:2])
    message = t["expired"] if error.expired else t["damaged"]
    return render(
        request,
        "surveys/message.html",
        {"t": t, "title": message, "message": message, "sender": ""},
        status=410 if error.expired else 400,
    )


def _mark_opened(survey_request: SurveyRequest) -> None:
    SurveyRequest.objects.filter(pk=survey_request.pk, opened_at__isnull=True).update(
        opened_at=timezone.now()
    )


def _client_key(request: HttpRequest) -> str:
    return hashlib.sha256(f"{settings.SECRET_KEY}:{client_address(request)}".encode()).hexdigest()


@require_http_methods(["GET", "HEAD"])
def answer(request: HttpRequest, value: str) -> HttpResponse:
    """A number clicked in the email: the page with it chosen, not yet saved (see above)."""
    try:
        opened = links.read(value, with_score=True)
    except links.LinkError as error:
        return _problem(request, error)
    survey_request = opened.request
    assert opened.score is not None
    ctx = _page_context(request, survey_request, links.page_url(survey_request))
    existing = Response.objects.filter(request=survey_request).order_by("pk").first()
    click = ""
    if request.method != "HEAD":  # what link checkers send; only a real visit counts
        _mark_opened(survey_request)
        hit = LinkHit.objects.create(
            kind=LinkHit.Kind.CLICK, request=survey_request, score=opened.score
        )
        click = signing.dumps(hit.pk, salt=_CLICK_SALT)
    if existing is not None and existing.score == opened.score:
        return _form(request, ctx, existing, saved=True)
    return _form(request, ctx, existing, pending=opened.score, click=click)


@csrf_exempt  # the signed link is the credential; there is no session to ride on
@require_http_methods(["GET", "HEAD", "POST"])
def page(request: HttpRequest, value: str) -> HttpResponse:
    """The hosted survey page of one emailed request."""
    try:
        opened = links.read(value, with_score=False)
    except links.LinkError as error:
        return _problem(request, error)
    survey_request = opened.request
    _mark_opened(survey_request)
    if request.method == "POST" and request.POST.get("auto") == "1":
        return _save_click(request, survey_request)  # the script: no page to render
    existing = Response.objects.filter(request=survey_request).order_by("pk").first()
    ctx = _page_context(request, survey_request, request.path)
    if request.method == "POST":
        score, comment, wrong = _read_form(request.POST, ctx["t"])
        if wrong is None:
            assert score is not None
            existing, _ = answer_request(survey_request, score, comment, Response.Source.EMAIL)
            return _form(request, ctx, existing, saved=True)
        return _form(request, ctx, existing, error=wrong, score=score, comment=comment)
    return _form(request, ctx, existing, saved=request.GET.get("saved") == "1" and existing)


def _page_context(
    request: HttpRequest, survey_request: SurveyRequest, action: str
) -> dict[str, Any]:
    options = survey_request.options or {}
    ctx = context(survey_request)
    ctx.update(
        survey_request=survey_request,
        action=urlsplit(action).path,
        unsubscribe_url=links.unsubscribe_url(survey_request),
        # Delighted's per-person thank-you message and link, when the API set them.
        thank_you=options.get("thank_you") or survey_request.survey.thank_you,
        thank_you_link_url=options.get("thank_you_link_url", ""),
        thank_you_link_text=options.get("thank_you_link_text", ""),
    )
    return ctx


def _save_click(request: HttpRequest, survey_request: SurveyRequest) -> HttpResponse:
    """The landing page's script saving the number clicked: refused (409) when several
    numbers of this email were opened within seconds of it, as a scanner does."""
    try:
        pk = signing.loads(request.POST.get("click", ""), salt=_CLICK_SALT, max_age=86400)
        hit = LinkHit.objects.get(pk=int(pk), request=survey_request, kind=LinkHit.Kind.CLICK)
    except (signing.BadSignature, LinkHit.DoesNotExist, TypeError, ValueError):
        return HttpResponse("click: not a click on this survey's links", status=400)
    assert hit.score is not None
    if LinkHit.scores_clicked_around(survey_request, hit.at - SCANNER_WINDOW) > 1:
        return HttpResponse(
            "not saved: several scores of this email were opened at once (a mail scanner)",
            status=409,
            content_type="text/plain",
        )
    answer_request(survey_request, hit.score, None, Response.Source.EMAIL)
    return HttpResponse("saved", content_type="text/plain")


def preview(request: HttpRequest, survey: Survey, locale: str) -> HttpResponse:
    """The hosted page as an example person would first see it, its links inert."""
    ctx = context(sample_request(survey, locale))
    ctx.update(action="#", unsubscribe_url="#", thank_you=survey.thank_you)
    return _form(request, ctx, None)


def _read_form(post: QueryDict, t: dict[str, str]) -> tuple[int | None, str, str | None]:
    """Score and comment from the page's form, or the error to show (naming the field)."""
    raw = post.get("score", "").strip()
    comment = post.get("comment", "").replace("\r\n", "\n").strip()
    score = int(raw) if raw.isdigit() and 0 <= int(raw) <= 10 else None
    if score is None:
        return None, comment, t["pick_required"]
    if len(comment) > MAX_COMMENT:
        return score, comment, f"comment: at most {MAX_COMMENT} characters"
    if has_nul(comment):
        return score, comment, "comment: must not contain the NUL character"
    return score, comment, None


def _form(
    request: HttpRequest,
    ctx: dict[str, Any],
    existing: Response | None,
    *,
    saved: Any = False,
    error: str | None = None,
    score: int | None = None,
    comment: str | None = None,
    pending: int | None = None,
    click: str = "",
) -> HttpResponse:
    survey_request = ctx.get("survey_request")
    link_days = ctx["survey"].link_days
    until = None
    if saved and existing is not None and survey_request is not None and survey_request.sent_at:
        until = survey_request.sent_at + timedelta(days=link_days)
    ctx.update(
        numbers=range(11),
        saved=bool(saved),
        error=error,
        answered=existing is not None,
        score=score if error else (existing.score if existing else None),
        comment=comment if error else (existing.comment if existing else ""),
        until_text=ctx["t"]["can_change"].format(date=f"{until:%Y-%m-%d}") if until else "",
        pending=pending,
        click=click,
    )
    if pending is not None:
        ctx["score"] = pending
        ctx["pending_text"] = ctx["t"]["pending"].format(score=pending)
    return render(request, "surveys/page.html", ctx, status=422 if error else 200)


def opened(request: HttpRequest, value: str) -> HttpResponse:
    """The open-tracking pixel: marks the request opened, always answers with the image."""
    try:
        _mark_opened(links.read(value, with_score=False).request)
    except links.LinkError:
        pass
    response = HttpResponse(_PIXEL, content_type="image/gif")
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt  # RFC 8058: mail providers POST "List-Unsubscribe=One-Click" with no cookies
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, value: str) -> HttpResponse:
    """Ask, then unsubscribe; a POST (the page's button or a one-click client) does it at once."""
    try:
        survey_request = links.read_unsubscribe(value)
    except links.LinkError as error:
        return _problem(request, error)
    person = survey_request.person
    t = texts(person.locale)
    base = {"t": t, "lang": person.locale, "sender": context(survey_request)["sender"]}
    if request.method == "POST":
        unsubscribe_person(person)
        message = t["unsubscribed"].format(email=person.email)
        done = {**base, "title": message, "message": message}
        return render(request, "surveys/message.html", done)
    message = t["unsubscribe_ask"].format(email=person.email)
    return render(
        request,
        "surveys/message.html",
        {**base, "title": message, "message": message, "confirm": t["unsubscribe"]},
    )


# --- link surveys (web page or in-app) -----------------------------------------------------


def person_token(person: Person) -> str:
    """A signed token naming a person, for `/l/<survey>/?t=…` links made by the API."""
    return signing.dumps({"p": person.pk}, salt=_PERSON_SALT, compress=True)


@csrf_exempt  # the link itself (signed token or anonymous) is the whole identity
@require_http_methods(["GET", "HEAD", "POST"])
def link_survey(request: HttpRequest, slug: str) -> HttpResponse:
    """A survey anyone with the link can answer: signed (`?t=`) or anonymous with properties."""
    survey = get_object_or_404(Survey, slug=slug)
    person: Person | None = None
    token = request.GET.get("t")
    if token:
        try:
            data = signing.loads(token, salt=_PERSON_SALT, max_age=survey.link_days * 86400)
            person = Person.objects.get(pk=int(data["p"]))
        except signing.SignatureExpired:
            return _problem(request, links.LinkError(expired=True))
        except (signing.BadSignature, KeyError, TypeError, ValueError, Person.DoesNotExist):
            return _problem(request, links.LinkError(expired=False))
    properties, problem = _link_properties(request.GET)
    locale = person.locale if person else request.GET.get("locale")
    t = texts(locale)
    question = survey.question_text()
    ctx: dict[str, Any] = {
        "t": t,
        "lang": locale or "en",
        "survey": survey,
        "question": question,
        "title": question,
        "intro": survey.intro,
        "sender": survey.product,
        "thank_you": survey.thank_you,
        "action": request.get_full_path(),
    }
    if problem:
        return render(
            request,
            "surveys/message.html",
            {**ctx, "title": problem, "message": problem},
            status=400,
        )
    existing = _linked_response(request.POST.get("r") or request.GET.get("r"))
    if request.method != "POST":
        score = request.GET.get("score", "")
        preset = int(score) if score.isdigit() and int(score) <= 10 else None
        return _link_form(request, ctx, existing, preset)
    score_given, comment, error = _read_form(request.POST, t)
    if error is not None:
        ctx.update(error=error, comment=comment)
        return _link_form(request, ctx, existing, score_given, status=422)
    assert score_given is not None
    client = _client_key(request)
    if person is None and _too_many_answers(survey, client):
        message = t["too_many"]
        ctx.update(title=message, message=message)
        reply = render(request, "surveys/message.html", ctx, status=429)
        reply["Retry-After"] = "60"
        return reply
    if person is None:
        LinkHit.objects.create(kind=LinkHit.Kind.ANSWER, survey=survey, client=client)
    if existing is not None:
        existing = change_response(
            existing, score=score_given, comment=comment, via=Response.Source.LINK
        )
    else:
        if person is None:
            who = PersonData(external_id=f"anonymous-{uuid.uuid4().hex}")
        else:
            who = PersonData.of(person)
        try:
            existing = record_responses(
                [
                    ResponseData(
                        person=who,
                        score=score_given,
                        comment=comment,
                        source=Response.Source.LINK,
                        survey=survey.slug,
                        properties=properties,
                    )
                ]
            )[0].response
        except FieldError as exc:
            ctx.update(error=str(exc), comment=comment)
            return _link_form(request, ctx, None, score_given, status=422)
    ctx["saved"] = True
    return _link_form(request, ctx, existing, existing.score)


def _too_many_answers(survey: Survey, client: str) -> bool:
    """Whether this client address has answered this link survey anonymously as often
    in the last minute as LINK_SURVEY_ANSWERS_PER_MINUTE allows."""
    limit = settings.LINK_SURVEY_ANSWERS_PER_MINUTE
    since = timezone.now() - timedelta(minutes=1)
    return bool(limit) and LinkHit.answers_from(survey, client, since) >= limit


def _link_properties(query: QueryDict) -> tuple[dict[str, str], str | None]:
    """Properties from a link's query string (all but t, r, score, locale), or what is wrong."""
    props = {k: query.get(k, "") for k in query if k not in {"t", "r", "score", "locale"}}
    if len(props) > MAX_LINK_PROPERTIES:
        return {}, f"too many properties: at most {MAX_LINK_PROPERTIES}"
    for key, value in props.items():
        if len(key) > 100 or len(value) > 500 or has_nul(key) or has_nul(value):
            return {}, f"{key[:100]}: property names are at most 100 characters, values 500"
        if key.startswith(ACCOUNT_PREFIX):
            return {}, f"{key}: account facts come from closeloop's accounts, not from a link"
    return props, None


def _linked_response(token: str | None) -> Response | None:
    """The answer a link-survey page gave before, so a second submit changes it."""
    if not token:
        return None
    try:
        pk = signing.loads(token, salt=_RESPONSE_SALT, max_age=86400)
    except signing.BadSignature:
        return None
    return Response.objects.filter(pk=pk).first()


def _link_form(
    request: HttpRequest,
    ctx: dict[str, Any],
    existing: Response | None,
    score: int | None,
    status: int = 200,
) -> HttpResponse:
    ctx.update(
        numbers=range(11),
        score=score,
        answered=existing is not None,
        comment=ctx.get("comment", existing.comment if existing else ""),
        hidden=[("r", signing.dumps(existing.pk, salt=_RESPONSE_SALT))] if existing else [],
    )
    return render(request, "surveys/page.html", ctx, status=status)
