"""The survey email: the question with a clickable 0–10 scale, as HTML and plain text."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from closeloop.delivery.models import Delivery

from . import links
from .models import SurveyRequest
from .texts import texts


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
    sender = settings.SURVEY_SENDER_NAME or product
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


def invitation(request: SurveyRequest, reminder: bool = False) -> Delivery:
    """The outbox row for a survey email (or its one reminder), ready to insert."""
    ctx = context(request, reminder)
    ctx.update(
        scale=[(n, links.score_url(request, n)) for n in range(11)],
        page_url=links.page_url(request),
        unsubscribe_url=links.unsubscribe_url(request),
        open_url=links.open_url(request),
    )
    unsubscribe = ctx["unsubscribe_url"]
    return Delivery(
        kind=Delivery.Kind.EMAIL,
        purpose=Delivery.Purpose.REMINDER if reminder else Delivery.Purpose.SURVEY,
        survey_request=request,
        to=request.person.email or "",
        from_email=settings.SURVEY_FROM_EMAIL,
        subject=ctx["subject"],
        body=render_to_string("surveys/email.txt", ctx).strip() + "\n",
        html=render_to_string("surveys/email.html", ctx),
        headers={
            # RFC 2369 and RFC 8058: mail clients show an unsubscribe button that POSTs here.
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        created_at=timezone.now(),
    )
