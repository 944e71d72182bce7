"""The survey email: the question with a clickable 0–10 scale, as HTML and plain text."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import escape

from closeloop.delivery.models import Delivery

from . import links
from .models import Person, Survey, SurveyRequest
from .texts import texts

SUBJECT_CHARS: int = Delivery._meta.get_field("subject").max_length  # type: ignore[assignment]


def context(request: SurveyRequest, reminder: bool = False) -> dict[str, Any]:
    """What the email and the hosted page show for one request, in the person's language."""
    survey, person = request.survey, request.person
    t = texts(person.locale)
    options = request.options or {}
    product = str(options.get("product") or survey.product)
    question = survey.question_text(product)
    subject = str(options.get("subject") or survey.subject or question)
    if reminder:
        subject = f"{t['reminder']}: {subject}"
    if len(subject) > SUBJECT_CHARS:  # a long question: the outbox's column, never a failed batch
        subject = subject[: SUBJECT_CHARS - 1].rstrip() + "…"
    sender = str(options.get("sender") or settings.SURVEY_SENDER_NAME or product)
    return {
        "t": t,
        "lang": person.locale or "en",
        "survey": survey,
        "person": person,
        "product": product,
        "question": question,
        "subject": subject,
        "intro": str(options.get("intro") or survey.intro),
        "sender": sender,
        "footer": t["footer"].format(sender=sender),
        "title": question,
    }


# Stand-ins for the links while the templates render; each email gets its own in their place.
_SLOTS = [
    f"https://slot.invalid/{name}.x" for name in [*map(str, range(11)), "page", "unsub", "open"]
]


def _email_context(request: SurveyRequest, reminder: bool, urls: list[str]) -> dict[str, Any]:
    ctx = context(request, reminder)
    ctx.update(
        scale=list(enumerate(urls[:11])),
        page_url=urls[11],
        unsubscribe_url=urls[12],
        open_url=urls[13],
    )
    return ctx


def sample_request(survey: Survey, locale: str = "en") -> SurveyRequest:
    """An unsaved request to an example person, to preview a survey's email and page."""
    person = Person(name="Alex Example", email="alex@customer.example", locale=locale)
    return SurveyRequest(survey=survey, person=person, sent_at=timezone.now())


def preview(survey: Survey, locale: str = "en", reminder: bool = False) -> Rendered:
    """The survey email as a person would get it (subject, text, HTML), with inert links."""
    return _render(sample_request(survey, locale), reminder, ["#"] * 13 + [""])


@dataclass
class Rendered:
    """A survey email's subject, plain text and HTML."""

    subject: str
    text: str
    html: str


def _render(request: SurveyRequest, reminder: bool, urls: list[str]) -> Rendered:
    ctx = _email_context(request, reminder, urls)
    return Rendered(
        ctx["subject"],
        render_to_string("surveys/email.txt", ctx).strip() + "\n",
        render_to_string("surveys/email.html", ctx),
    )


class Invitations:
    """Builds survey emails for a batch of requests.

    The email differs between two people only in its links, unless survey,
    language or wording differ: so the templates are rendered once per
    (survey, locale, wording) with stand-ins for the links, and each email is
    that render with its own signed links put in.
    """

    def __init__(self, reminder: bool = False) -> None:
        self.reminder = reminder
        self.links = links.LinkMaker()
        self.shells: dict[tuple[Any, ...], Rendered] = {}

    def _shell(self, request: SurveyRequest) -> Rendered:
        key = (
            request.survey_id,
            request.person.locale,
            json.dumps(request.options or {}, sort_keys=True),
        )
        shell = self.shells.get(key)
        if shell is None:
            shell = self.shells[key] = _render(request, self.reminder, _SLOTS)
        return shell

    def __call__(self, request: SurveyRequest) -> Delivery:
        """The outbox row for one request's email, ready to insert."""
        shell = self._shell(request)
        make = self.links
        urls = [make.score(request, n) for n in range(11)]
        urls += [make.page(request), make.unsubscribe(request), make.opened(request)]
        text, html = shell.text, shell.html
        for slot, url in zip(_SLOTS, urls, strict=True):
            text = text.replace(slot, url)
            html = html.replace(slot, escape(url))
        unsubscribe = urls[12]
        options = request.options or {}
        return Delivery(
            kind=Delivery.Kind.EMAIL,
            purpose=Delivery.Purpose.REMINDER if self.reminder else Delivery.Purpose.SURVEY,
            survey_request=request,
            to=request.person.email or "",
            # A check-back comes from the case's owner, and replies go back to the case.
            from_email=str(options.get("from_email") or settings.SURVEY_FROM_EMAIL),
            reply_to=str(options.get("reply_to") or ""),
            subject=shell.subject,
            body=text,
            html=html,
            headers={
                # RFC 2369 and RFC 8058: mail clients show an unsubscribe button that POSTs here.
                "List-Unsubscribe": f"<{unsubscribe}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
            created_at=timezone.now(),
        )


def invitation(request: SurveyRequest, reminder: bool = False) -> Delivery:
    """The outbox row for one survey email (or its one reminder), ready to insert."""
    return Invitations(reminder)(request)
