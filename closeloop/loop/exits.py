"""Exit interviews (docs/integrations.md): an account that churned, from any source (the
API, a CSV import, Stripe), has its champion asked why, once.

The champion is the account's person marked `champion` in their properties, else the
one who answered a survey most recently, else the newest with an address. The
question goes as a survey request of purpose `exit`: the 0–10 scale and a comment,
from the account's owner, in the person's language. The answer is not triaged (the
account has already left): it is tagged `exit`, so the theme engine reads it like any
comment and Insights → Themes shows the exit reasons with `tag=exit`.
"""

from __future__ import annotations

from datetime import timedelta
from email.utils import formataddr

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from closeloop.surveys.models import AccountChange, Person, Response, Survey, SurveyRequest
from closeloop.surveys.sending import blocked_reasons

from . import conversation_texts
from .models import ExitInterview

EXIT_TAG = "exit"
# A churn recorded long after it happened (a back-filled import) is history: not asked.
FRESH = timedelta(days=30)
BATCH = 50

TEXTS = {
    "en": (
        "Before you go: what made you leave?",
        "Your team has stopped using {product}. I'd be grateful to know why: how likely "
        "would you be to recommend us now, and what was the main reason you left?",
    ),
    "de": (
        "Bevor Sie gehen: Was war der Grund?",
        "Ihr Team nutzt {product} nicht mehr. Ich wüsste gern, warum: Wie wahrscheinlich "
        "würden Sie uns heute empfehlen, und was war der wichtigste Grund für Ihren Abschied?",
    ),
    "fr": (
        "Avant de partir : qu'est-ce qui vous a fait partir ?",
        "Votre équipe n'utilise plus {product}. J'aimerais comprendre pourquoi : quelle est "
        "la probabilité que vous nous recommandiez aujourd'hui, et quelle a été la raison "
        "principale de votre départ ?",
    ),
    "es": (
        "Antes de que se vaya: ¿por qué se fue?",
        "Su equipo ha dejado de usar {product}. Me gustaría saber por qué: ¿qué probabilidad "
        "hay de que nos recomiende hoy, y cuál fue la razón principal de su marcha?",
    ),
    "nl": (
        "Voordat u gaat: waarom vertrekt u?",
        "Uw team gebruikt {product} niet meer. Ik hoor graag waarom: hoe waarschijnlijk is "
        "het dat u ons nu aanbeveelt, en wat was de belangrijkste reden om te vertrekken?",
    ),
    "pt": (
        "Antes de partir: o que o levou a sair?",
        "A sua equipa deixou de usar o {product}. Gostaria de saber porquê: qual a "
        "probabilidade de nos recomendar hoje, e qual foi a principal razão da sua saída?",
    ),
}


def champion(change: AccountChange) -> Person | None:
    return champion_of(change.account_id)


def champion_of(account_id: int) -> Person | None:
    """Who speaks for the account: marked champion, else the latest to answer, else the
    newest with an address."""
    people = Person.objects.filter(account_id=account_id).exclude(email__isnull=True)
    people = people.exclude(email="")
    marked = people.filter(Q(properties__champion=True) | Q(properties__champion="true"))
    found = marked.order_by("-created_at").first()
    if found is None:
        found = (
            people.annotate(last=Max("responses__created_at"))
            .filter(last__isnull=False)
            .order_by("-last")
            .first()
        )
    return found or people.order_by("-created_at").first()


def _survey(change: AccountChange) -> Survey | None:
    """The survey the account's people answered last, else the first one."""
    last = (
        Response.objects.filter(account_id=change.account_id)
        .order_by("-created_at")
        .select_related("survey")
        .first()
    )
    return last.survey if last is not None else Survey.objects.order_by("pk").first()


def ask(change: AccountChange) -> ExitInterview:
    """The exit interview of one churn: the request, or why nobody was asked."""
    account = change.account
    person = champion(change)
    survey = _survey(change)
    interview = ExitInterview(change=change, account=account, person=person)
    why = None
    if person is None:
        why = "nobody at the account has an email address"
    elif survey is None:
        why = "no survey to ask with"
    else:
        why = blocked_reasons([person], survey, SurveyRequest.Purpose.EXIT, timezone.now()).get(
            person.pk
        )
    if why or person is None or survey is None:
        interview.skipped = (why or "")[:200]
        interview.save()
        return interview
    owner = account.owner
    product = settings.PRODUCT_NAME
    subject, intro = TEXTS[conversation_texts.language(person.locale)]
    from_email = (
        formataddr((owner.display_name, owner.email))
        if owner and owner.email
        else settings.SURVEY_FROM_EMAIL
    )
    interview.request = SurveyRequest.objects.create(
        person=person,
        survey=survey,
        purpose=SurveyRequest.Purpose.EXIT,
        scheduled_at=timezone.now(),
        status_reason=f"exit interview: {account.name} churned {change.at:%Y-%m-%d}",
        options={
            "subject": subject,
            "intro": intro.format(product=product),
            "from_email": from_email,
            "sender": owner.display_name if owner else "",
            "reply_to": owner.email if owner and owner.email else "",
        },
    )
    interview.save()
    return interview


def handle_exit_interviews() -> bool:
    """Worker step: ask after each recent churn that has no exit interview yet."""
    now = timezone.now()
    due = list(
        AccountChange.objects.filter(
            kind=AccountChange.Kind.CHURNED,
            at__gte=now - FRESH,
            exit_interview__isnull=True,
            account__churned_at__isnull=False,
        )
        .select_related("account__owner")
        .order_by("at", "id")[:BATCH]
    )
    for change in due:
        try:
            with transaction.atomic():
                ask(change)
        except IntegrityError:  # another worker asked first
            continue
    return bool(due)


def answered(interview: ExitInterview, response: Response) -> None:
    """The champion answered: kept on the interview and tagged `exit`, not triaged."""
    interview.response = response
    interview.save(update_fields=["response"])
    if EXIT_TAG not in (response.tags if isinstance(response.tags, list) else []):
        response.tags = [*(response.tags if isinstance(response.tags, list) else []), EXIT_TAG]
        response.save(update_fields=["tags"])
