"""The hosted follow-up conversation, `/c/<token>/`: the customer's page and its JSON
interface (for the page's own script, tests and the bench).

No login: the signed token in the link is the credential. A damaged or unknown token
is 404; an expired one (30 days) is 410 with a line telling the customer how to reach
the owner. The page works without JavaScript (a form that posts and redirects back);
htmx, when it loads, swaps the transcript in place. Answers are limited per token
(`conversation.ANSWERS_PER_MINUTE`), beyond which the answer is refused with 429.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from closeloop.core.errors import FieldError
from closeloop.loop import conversation as engine
from closeloop.loop import conversation_texts as words
from closeloop.loop.models import Conversation, Message
from closeloop.loop.outreach import values_for

PAGE_TEXTS = (
    "title",
    "intro",
    "answer_label",
    "send",
    "ended",
    "taken_over",
    "expired",
    "too_long",
    "empty",
    "too_many",
    "you",
)


def _find(value: str) -> Conversation | None:
    return Conversation.by_signed_token(value)


def _texts(talk: Conversation) -> dict[str, str]:
    values = values_for(talk.case)
    owner = talk.case.owner
    fill = {
        "owner_name": values["owner_name"],
        "owner_email": owner.email if owner and owner.email else settings.DEFAULT_FROM_EMAIL,
        "score": values["score"],
        "product": values["product"],
        "limit": f"{engine.MAX_TEXT:,}",
    }
    found = words.texts(talk.locale)
    return {k: str(found[k]).format(**fill) for k in PAGE_TEXTS}


def _messages(talk: Conversation) -> list[dict[str, Any]]:
    """The transcript; before the first answer, the opening question (not yet stored)."""
    found = engine.transcript(talk)
    if not found and talk.is_open:
        text, step = engine.opening(talk)
        found = [
            {"from": "closeloop", "text": text, "at": timezone.now().isoformat(), "step": step}
        ]
    return found


def _gone(request: HttpRequest, talk: Conversation | None, wants_json: bool) -> HttpResponse:
    if talk is None:
        if wants_json:
            return JsonResponse(
                {"detail": [{"loc": ["path", "token"], "msg": "no such conversation"}]}, status=404
            )
        t = words.texts("en")
        return render(
            request,
            "web/conversation_gone.html",
            {
                "title": "Not found",
                "message": "This link is damaged or unknown. "
                "Please use the link from your email as it is.",
                "t": t,
            },
            status=404,
        )
    message = _texts(talk)["expired"]
    if wants_json:
        return JsonResponse({"detail": [{"loc": ["path", "token"], "msg": message}]}, status=410)
    return render(
        request,
        "web/conversation_gone.html",
        {"title": message, "message": message, "lang": words.language(talk.locale)},
        status=410,
    )


@csrf_exempt  # the signed link is the credential; there is no session to ride on
@require_http_methods(["GET", "HEAD", "POST"])
def page(request: HttpRequest, value: str) -> HttpResponse:
    """The conversation page: the transcript and a box for the next answer."""
    talk = _find(value)
    if talk is None or talk.is_expired:
        return _gone(request, talk, wants_json=False)
    error, status, draft = "", 200, ""
    if request.method == "POST":
        draft = request.POST.get("text", "")
        try:
            engine.answer(talk, engine.clean_text(draft))
        except FieldError as exc:
            error, status = _error_text(talk, exc), 422
        except engine.TooMany:
            error, status = _texts(talk)["too_many"], 429
        else:
            if not request.headers.get("HX-Request"):
                return redirect(request.path)  # post, redirect, get: a reload never resends
            draft = ""
        talk.refresh_from_db()
    return render(request, "web/conversation.html", _context(talk, error, draft), status=status)


def _error_text(talk: Conversation, exc: FieldError) -> str:
    t = _texts(talk)
    return t["too_long"] if "at most" in exc.reason else t["empty"]


def _context(talk: Conversation, error: str, draft: str) -> dict[str, Any]:
    t = _texts(talk)
    status = talk.status
    note = ""
    if status == Conversation.Status.TAKEN_OVER:
        note = t["taken_over"]
    elif not talk.is_open:
        note = t["ended"]
    return {
        "t": t,
        "lang": words.language(talk.locale),
        "title": t["title"],
        "messages": _messages(talk),
        "note": note,
        "error": error,
        "draft": draft,
        "owner": values_for(talk.case)["owner_name"],
        "max_text": engine.MAX_TEXT,
    }


@csrf_exempt
@require_http_methods(["GET", "POST"])
def messages(request: HttpRequest, value: str) -> HttpResponse:
    """GET: the transcript. POST {"text": "..."}: the answer recorded, and closeloop's
    new message(s) with whether the conversation has ended."""
    talk = _find(value)
    if talk is None or talk.is_expired:
        return _gone(request, talk, wants_json=True)
    if request.method == "GET":
        return JsonResponse(
            {"status": talk.status, "messages": _messages(talk), "done": not talk.is_open}
        )
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        return _problem("body", "must be a JSON object", 422)
    if not isinstance(body, dict):
        return _problem("body", "must be a JSON object", 422)
    try:
        turn = engine.answer(talk, engine.clean_text(body.get("text")))
    except FieldError as exc:
        return _problem(exc.field, exc.reason, 422)
    except engine.TooMany:
        response = _problem("text", _texts(talk)["too_many"], 429)
        response["Retry-After"] = "60"
        return response
    return JsonResponse(
        {
            "messages": [
                m.as_json() for m in turn.messages if m.sender == Message.Sender.CLOSELOOP
            ],
            "done": turn.done,
        }
    )


def _problem(field: str, message: str, status: int) -> JsonResponse:
    loc = ["body"] if field == "body" else ["body", field]
    return JsonResponse({"detail": [{"loc": loc, "msg": message}]}, status=status)
