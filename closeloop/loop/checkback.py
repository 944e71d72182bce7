"""Checking back after a fix (docs/closed-loop.md §10): a resolved case's owner asks, a
couple of weeks later, whether it got better, with the 0–10 scale.

The question goes as a survey request of purpose `check_back`, sent by the worker with
the survey email (from the owner's name and address, replies to the case). Its answer
comes back to the case, not to a new one: it is the post-resolution score; a low one
reopens the case and tells the owner's manager, since the fix did not hold.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from closeloop.core import nps
from closeloop.surveys.models import Response, SurveyRequest
from closeloop.surveys.sending import blocked_reasons
from closeloop.team.models import User

from . import conversation_texts, notify
from .models import Activity, CheckBack, FollowUpCase

TEXTS = {
    "en": (
        "Has it got better since your {score}/10?",
        "A few weeks ago you gave us a {score} out of 10, and we worked on what you told us. "
        "Where do things stand now?",
    ),
    "de": (
        "Ist es besser geworden seit Ihrer {score}/10?",
        "Vor einigen Wochen haben Sie uns mit {score} von 10 bewertet, und wir haben an Ihrem "
        "Anliegen gearbeitet. Wie sieht es jetzt aus?",
    ),
    "fr": (
        "Est-ce mieux depuis votre {score}/10 ?",
        "Il y a quelques semaines, vous nous avez donné {score} sur 10 et nous avons travaillé "
        "sur ce que vous nous avez dit. Où en êtes-vous aujourd'hui ?",
    ),
    "es": (
        "¿Ha mejorado desde su {score}/10?",
        "Hace unas semanas nos dio un {score} de 10 y trabajamos en lo que nos contó. "
        "¿Cómo están las cosas ahora?",
    ),
    "nl": (
        "Is het beter geworden sinds uw {score}/10?",
        "Een paar weken geleden gaf u ons een {score} van 10 en we hebben gewerkt aan wat u "
        "ons vertelde. Hoe staat het er nu voor?",
    ),
    "pt": (
        "Melhorou desde o seu {score}/10?",
        "Há algumas semanas deu-nos {score} em 10 e trabalhámos no que nos disse. "
        "Como estão as coisas agora?",
    ),
}


def schedule(case: FollowUpCase, actor: User | None) -> CheckBack | None:
    """After a resolved detractor case: the check-back, when the policy asks for one and
    the customer can be asked (else the case says why)."""
    if case.loop != FollowUpCase.Loop.DETRACTOR or case.response is None:
        return None
    days = case.policy.rules.check_back_after(case.action_enum)
    if days <= 0:
        return None
    now = timezone.now()
    person = case.person
    survey = case.response.survey
    why = blocked_reasons([person], survey, SurveyRequest.Purpose.CHECK_BACK, now)
    sender = notify.sender_for(case, actor)
    if person.pk in why or sender is None:
        reason = why.get(person.pk) or "no real sender: assign an owner"
        case.log(Activity.Kind.NOTE, f"no check-back: the customer {reason}", actor)
        return None
    subject, intro = TEXTS[conversation_texts.language(person.locale)]
    owner = case.owner or actor
    request = SurveyRequest.objects.create(
        person=person,
        survey=survey,
        purpose=SurveyRequest.Purpose.CHECK_BACK,
        scheduled_at=now + timedelta(days=days),
        status_reason=f"check-back on case {case.pk}",
        options={
            "subject": subject.format(score=case.score),
            "intro": intro.format(score=case.score),
            "from_email": sender,
            "sender": owner.display_name if owner else "",
            "reply_to": case.reply_address,
        },
    )
    check = CheckBack.objects.create(case=case, request=request)
    case.log(
        Activity.Kind.NOTE,
        f"check-back scheduled for {request.scheduled_at:%Y-%m-%d}: "
        "the customer is asked whether it got better",
        actor,
        check_back=check.pk,
    )
    return check


def answered(check: CheckBack, response: Response) -> FollowUpCase:
    """The customer answered the check-back: on the case, and a low score reopens it."""
    case = check.case
    check.response = response
    check.save(update_fields=["response"])
    FollowUpCase.responses.through.objects.get_or_create(followupcase=case, response=response)
    quoted = f": “{response.comment.strip()}”" if response.comment.strip() else ""
    low = response.category == nps.Category.DETRACTOR
    case.log(
        Activity.Kind.ANSWER_JOINED,
        f"check-back answered {response.score}/10 (was {case.score}){quoted}",
        response=response.pk,
        check_back=check.pk,
    )
    if not low:
        return case
    if case.is_closed:
        case.reopen(f"the check-back answer was {response.score}/10: the fix did not hold", None)
    case.previous_score, case.score, case.response = case.score, response.score, response
    case.save_changes("previous_score", "score", "response")
    notify.check_back_alert(case, response)
    notify.case_event(case, "case.updated")
    return case
