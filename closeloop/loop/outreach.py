"""Outreach templates: the shipped defaults, filling in {variables}, and the linter.

The linter applies the rules of docs/domain.md §5 for a first outreach email. Saving an
automated template that breaks one is refused; a personal template (a human
reads it before sending) gets the same findings as warnings.
"""

from __future__ import annotations

import functools
import re
import string
from dataclasses import dataclass
from email.utils import parseaddr
from typing import TYPE_CHECKING

from django.conf import settings

from closeloop.core.errors import FieldError

from . import batch
from .models.settings import OutreachTemplate
from .policy import Action

if TYPE_CHECKING:
    from .models.cases import FollowUpCase

VARIABLES = {
    "first_name": "the customer's first name (or 'there')",
    "name": "the customer's full name",
    "score": "the score they gave, 0–10",
    "owner_name": "the owner's full name (the sender)",
    "owner_first_name": "the owner's first name",
    "comment_excerpt": "the start of their comment (up to 200 characters)",
    "account": "the customer's company",
    "product": "your product's name (PRODUCT_NAME)",
    "conversation_url": "the link to the case's follow-up conversation (added on its own "
    "line when the template does not place it)",
}

MAX_WORDS = 100
MAX_MESSAGE_WORDS = 60  # one message of the follow-up conversation


@dataclass(frozen=True)
class Draft:
    subject: str
    body: str


# Shipped defaults, keyed by (action, language). They pass the linter (a test checks it).
DEFAULTS: dict[tuple[Action, str], Draft] = {
    (Action.CALL, "en"): Draft(
        "Your {score}/10 for {product}",
        "Hi {first_name},\n\n"
        "Thank you for your honest score of {score} out of 10. I'm {owner_name}, and I look "
        "after {account} here. I'd rather hear what happened from you than guess.\n\n"
        "When would suit you for a 15-minute call this week?\n\n"
        "If email is easier, just reply here; it comes straight to me.\n\n"
        "{owner_name}",
    ),
    (Action.PERSONAL_EMAIL_CALL, "en"): Draft(
        "Your {score}/10 for {product}",
        "Hi {first_name},\n\n"
        "Thank you for rating {product} {score} out of 10 and for being straight with us. "
        "I'm {owner_name}, and I'd like to understand what is behind that score.\n\n"
        "When would be a good time for a short call?\n\n"
        "If you prefer to write, a reply to this email reaches me directly.\n\n"
        "{owner_name}",
    ),
    (Action.PERSONAL_EMAIL_QUESTIONS, "en"): Draft(
        "Your {score}/10 for {product}",
        "Hi {first_name},\n\n"
        "Thank you for your score of {score} out of 10. I read your answer myself"
        " and want to get this right for {account}.\n\n"
        "What was the primary experience that influenced your score?\n\n"
        "Any detail helps: what you were trying to do, and what got in the way. "
        "A reply to this email comes straight to me.\n\n"
        "{owner_name}",
    ),
    (Action.AUTOMATED_EMAIL_SURVEY, "en"): Draft(
        "Your {score}/10 for {product}",
        "Hi {first_name},\n\n"
        "Thanks for your score of {score} out of 10 and for taking the time to answer. "
        "I'm {owner_first_name}, and I look after your account.\n\n"
        "What was the main experience behind your score?\n\n"
        "A couple of lines in reply are plenty; I read every one and will tell you what we "
        "do about it. We will check in again in a few weeks with a short survey.\n\n"
        "{owner_name}",
    ),
    (Action.AUTOMATED_BRIEF_QUESTION, "en"): Draft(
        "Your {score}/10 for {product}",
        "Hi {first_name},\n\n"
        "Thank you for rating {product} {score} out of 10. I read every answer myself, and "
        "I'd like to understand yours.\n\n"
        "What would have made your experience better?\n\n"
        "Just reply to this email; it comes straight to me.\n\n"
        "{owner_name}",
    ),
    (Action.AUTOMATED_ONE_QUESTION, "en"): Draft(
        "Your {score}/10 for {product}",
        "Hi {first_name},\n\n"
        "Thank you for giving {product} a {score} out of 10. You are close to recommending "
        "us, and I'd like to know what stands in the way.\n\n"
        "What one change would make {product} more useful to you?\n\n"
        "Reply here and it comes straight to me.\n\n"
        "{owner_name}",
    ),
    (Action.AUTOMATED_THANKS_REVIEW, "en"): Draft(
        "Thank you for the {score}/10",
        "Hi {first_name},\n\n"
        "Thank you for the {score} out of 10! It means a lot to the team behind {product}.\n\n"
        "What has {product} helped you achieve that you would tell a colleague about?\n\n"
        "If you'd be open to sharing it in a short public review or a case study, reply and "
        "I'll send the details.\n\n"
        "{owner_name}",
    ),
    (Action.AUTOMATED_EMAIL_SURVEY, "de"): Draft(
        "Ihre {score}/10 für {product}",
        "Hallo {first_name},\n\n"
        "danke für Ihre Bewertung mit {score} von 10 und dafür, dass Sie sich die Zeit "
        "genommen haben. Ich bin {owner_first_name} und betreue Ihr Konto.\n\n"
        "Welche Erfahrung war für Ihre Bewertung ausschlaggebend?\n\n"
        "Ein paar Zeilen als Antwort genügen; ich lese jede selbst und sage Ihnen, was wir "
        "daraus machen. In einigen Wochen fragen wir noch einmal kurz nach.\n\n"
        "{owner_name}",
    ),
    (Action.AUTOMATED_BRIEF_QUESTION, "de"): Draft(
        "Ihre {score}/10 für {product}",
        "Hallo {first_name},\n\n"
        "danke, dass Sie {product} mit {score} von 10 bewertet haben. Ich lese jede Antwort "
        "selbst und möchte Ihre verstehen.\n\n"
        "Was hätte Ihre Erfahrung besser gemacht?\n\n"
        "Antworten Sie einfach auf diese E-Mail; sie kommt direkt bei mir an.\n\n"
        "{owner_name}",
    ),
    (Action.AUTOMATED_EMAIL_SURVEY, "fr"): Draft(
        "Votre note de {score}/10 pour {product}",
        "Bonjour {first_name},\n\n"
        "Merci pour votre note de {score} sur 10 et pour le temps que vous y avez consacré. "
        "Je suis {owner_first_name} et je m'occupe de votre compte.\n\n"
        "Quelle expérience a le plus compté dans votre note ?\n\n"
        "Quelques lignes en réponse suffisent ; je les lis toutes et vous dirai ce que nous "
        "en faisons. Nous reviendrons vers vous dans quelques semaines.\n\n"
        "{owner_name}",
    ),
    (Action.AUTOMATED_BRIEF_QUESTION, "fr"): Draft(
        "Votre note de {score}/10 pour {product}",
        "Bonjour {first_name},\n\n"
        "Merci d'avoir donné {score} sur 10 à {product}. Je lis chaque réponse moi-même et "
        "j'aimerais comprendre la vôtre.\n\n"
        "Qu'est-ce qui aurait rendu votre expérience meilleure ?\n\n"
        "Répondez simplement à cet e-mail ; il m'arrive directement.\n\n"
        "{owner_name}",
    ),
}


def variables_in(text: str, field: str = "body", allowed: dict[str, str] = VARIABLES) -> set[str]:
    """The {names} a template uses; refuses unknown names, attribute access and bad braces."""
    names: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise FieldError(field, f"{exc} (write {{{{ and }}}} for literal braces)") from exc
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in allowed or spec or conversion:
            raise FieldError(
                field,
                f"unknown variable {{{name}}}; use one of "
                + ", ".join(f"{{{v}}}" for v in allowed),
            )
        names.add(name)
    return names


def fill(text: str, values: dict[str, str], field: str = "body") -> str:
    variables_in(text, field, values)
    return text.format_map(values)


SAMPLE = {
    "first_name": "Pat",
    "name": "Pat Lee",
    "score": "4",
    "owner_name": "Alex Morgan",
    "owner_first_name": "Alex",
    "comment_excerpt": "setup took far too long",
    "account": "Globex",
    "product": "Acme",
    "conversation_url": "https://closeloop.example/c/abc/",
}


def values_for(case: FollowUpCase) -> dict[str, str]:
    person = case.person
    full = person.name.strip()
    owner = case.owner
    # A health case's reasons are the team's, never quoted to the customer.
    comment = " ".join(case.response.comment.split()) if case.response is not None else ""
    return {
        "first_name": full.split()[0] if full else "there",
        "name": full or (person.email or ""),
        "score": str(case.score) if case.score is not None else "",
        "owner_name": owner.display_name if owner else _default_sender_name(),
        "owner_first_name": (owner.first_name or owner.display_name)
        if owner
        else _default_sender_name(),
        "comment_excerpt": comment[:200] + ("…" if len(comment) > 200 else ""),
        "account": case.account.name if case.account else "your team",
        "product": settings.PRODUCT_NAME,
        "conversation_url": "",
    }


def _default_sender_name() -> str:
    name, address = parsed_address(settings.DEFAULT_FROM_EMAIL)
    return name or address


@functools.lru_cache(maxsize=8)
def parsed_address(value: str) -> tuple[str, str]:
    """(name, address) of a From value such as the default sender, parsed once: triage
    asks for it several times per answer."""
    return parseaddr(value)


def template_for(action: Action, locale: str) -> Draft:
    """The saved template for the locale or its language, else the shipped one, else English."""
    language = locale.split("-")[0].split("_")[0].lower()
    saved = {
        t.locale.lower(): t
        for t in OutreachTemplate.objects.filter(action=action, locale__in={locale, language, "en"})
    }
    for key in (locale.lower(), language):
        if key in saved:
            return Draft(saved[key].subject, saved[key].body)
        if (action, key) in DEFAULTS:
            return DEFAULTS[(action, key)]
    if "en" in saved:
        return Draft(saved["en"].subject, saved["en"].body)
    return DEFAULTS[(action, "en")]


# A health case's first email: a check-in, since the customer told us nothing; the
# reasons its health fell are the team's and are never quoted.
HEALTH_CHECK_IN = Draft(
    "Checking in on {account}",
    "Hi {first_name},\n\n"
    "I'm {owner_name}, and I look after {account} here. I'd like to hear how {product} "
    "is working for your team at the moment, and what we could do better.\n\n"
    "When would suit you for a 15-minute call this week?\n\n"
    "If email is easier, just reply here; it comes straight to me.\n\n"
    "{owner_name}",
)


def draft_for(case: FollowUpCase) -> Draft:
    """The template of the case's action in the customer's language (once per batch);
    a health case's check-in."""
    if case.response is None:
        return HEALTH_CHECK_IN
    locale = case.person.locale or "en"
    return batch.cached(
        f"template:{case.action}:{locale}", lambda: template_for(case.action_enum, locale)
    )


def render_for(
    case: FollowUpCase, draft: Draft | None = None, conversation_url: str = ""
) -> tuple[str, str]:
    """Subject and body of the case's first email, from `draft` or the case's template.

    With a conversation link, a template that does not place {conversation_url} gets the
    offer on its own line before the signature (the customer's language)."""
    draft = draft or draft_for(case)
    values = {**values_for(case), "conversation_url": conversation_url}
    body = fill(draft.body, values, "body")
    if conversation_url and "conversation_url" not in variables_in(draft.body):
        body = _with_offer(body, case.person.locale, conversation_url)
    return fill(draft.subject, values, "subject"), body


# --- the acknowledgement of a personal action ---------------------------------------------

ACK_VARIABLES = {
    **VARIABLES,
    "when": "the personal action's deadline in the customer's words, e.g. Thursday 3 December",
}
ACK_SAMPLE_WHEN = "Thursday 3 December"

# Sent at once when a detractor's action waits for a person (a call, a personal email):
# keyed by (what the owner will do, language). They pass the linter (a test checks it).
ACKNOWLEDGEMENTS: dict[tuple[str, str], Draft] = {
    ("call", "en"): Draft(
        "Your {score}/10: I'll call you by {when}",
        "Hi {first_name},\n\n"
        "I saw your score of {score} out of 10 and I want to hear what happened. I'm "
        "{owner_name}, and I will call you by {when}.\n\n"
        "What time of day is best to reach you?\n\n"
        "Just reply to this email; it comes straight to me.\n\n"
        "{owner_name}",
    ),
    ("email", "en"): Draft(
        "Your {score}/10: I'll write to you by {when}",
        "Hi {first_name},\n\n"
        "I saw your score of {score} out of 10. I'm {owner_name}, and I will write to you "
        "personally by {when}, once I have looked at your account.\n\n"
        "What is the one thing you want me to look at first?\n\n"
        "A reply to this email comes straight to me.\n\n"
        "{owner_name}",
    ),
    ("call", "de"): Draft(
        "Ihre {score}/10: Ich rufe Sie bis {when} an",
        "Hallo {first_name},\n\n"
        "ich habe Ihre Bewertung mit {score} von 10 gesehen und möchte hören, was passiert "
        "ist. Ich bin {owner_name} und rufe Sie bis {when} an.\n\n"
        "Zu welcher Tageszeit erreiche ich Sie am besten?\n\n"
        "Antworten Sie einfach auf diese E-Mail; sie kommt direkt bei mir an.\n\n"
        "{owner_name}",
    ),
    ("email", "de"): Draft(
        "Ihre {score}/10: Ich schreibe Ihnen bis {when}",
        "Hallo {first_name},\n\n"
        "ich habe Ihre Bewertung mit {score} von 10 gesehen. Ich bin {owner_name} und "
        "schreibe Ihnen bis {when} persönlich, sobald ich mir Ihr Konto angesehen habe.\n\n"
        "Was soll ich mir als Erstes ansehen?\n\n"
        "Eine Antwort auf diese E-Mail kommt direkt bei mir an.\n\n"
        "{owner_name}",
    ),
    ("call", "fr"): Draft(
        "Votre {score}/10 : je vous appelle d'ici le {when}",
        "Bonjour {first_name},\n\n"
        "J'ai vu votre note de {score} sur 10 et je veux comprendre ce qui s'est passé. Je "
        "suis {owner_name} et je vous appellerai d'ici le {when}.\n\n"
        "À quel moment de la journée puis-je vous joindre ?\n\n"
        "Répondez simplement à cet e-mail ; il m'arrive directement.\n\n"
        "{owner_name}",
    ),
    ("email", "fr"): Draft(
        "Votre {score}/10 : je vous écris d'ici le {when}",
        "Bonjour {first_name},\n\n"
        "J'ai vu votre note de {score} sur 10. Je suis {owner_name} et je vous écrirai "
        "personnellement d'ici le {when}, après avoir regardé votre compte.\n\n"
        "Que voulez-vous que je regarde en premier ?\n\n"
        "Une réponse à cet e-mail m'arrive directement.\n\n"
        "{owner_name}",
    ),
    ("call", "es"): Draft(
        "Su {score}/10: le llamaré antes del {when}",
        "Hola {first_name}:\n\n"
        "He visto su puntuación de {score} sobre 10 y quiero saber qué pasó. Soy "
        "{owner_name} y le llamaré antes del {when}.\n\n"
        "¿A qué hora del día es mejor llamarle?\n\n"
        "Responda a este correo; me llega directamente.\n\n"
        "{owner_name}",
    ),
    ("email", "es"): Draft(
        "Su {score}/10: le escribiré antes del {when}",
        "Hola {first_name}:\n\n"
        "He visto su puntuación de {score} sobre 10. Soy {owner_name} y le escribiré "
        "personalmente antes del {when}, cuando haya revisado su cuenta.\n\n"
        "¿Qué quiere que revise primero?\n\n"
        "Una respuesta a este correo me llega directamente.\n\n"
        "{owner_name}",
    ),
    ("call", "nl"): Draft(
        "Uw {score}/10: ik bel u uiterlijk {when}",
        "Hallo {first_name},\n\n"
        "Ik zag uw score van {score} van 10 en ik wil horen wat er gebeurd is. Ik ben "
        "{owner_name} en ik bel u uiterlijk {when}.\n\n"
        "Op welk moment van de dag bent u het best bereikbaar?\n\n"
        "Antwoord gewoon op deze e-mail; die komt direct bij mij.\n\n"
        "{owner_name}",
    ),
    ("email", "nl"): Draft(
        "Uw {score}/10: ik schrijf u uiterlijk {when}",
        "Hallo {first_name},\n\n"
        "Ik zag uw score van {score} van 10. Ik ben {owner_name} en ik schrijf u uiterlijk "
        "{when} persoonlijk, zodra ik uw account heb bekeken.\n\n"
        "Waar moet ik als eerste naar kijken?\n\n"
        "Een antwoord op deze e-mail komt direct bij mij.\n\n"
        "{owner_name}",
    ),
    ("call", "pt"): Draft(
        "A sua {score}/10: ligo-lhe até {when}",
        "Olá {first_name},\n\n"
        "Vi a sua nota de {score} em 10 e quero saber o que aconteceu. Sou {owner_name} e "
        "vou ligar-lhe até {when}.\n\n"
        "A que hora do dia é melhor contactá-lo?\n\n"
        "Basta responder a este e-mail; chega diretamente a mim.\n\n"
        "{owner_name}",
    ),
    ("email", "pt"): Draft(
        "A sua {score}/10: escrevo-lhe até {when}",
        "Olá {first_name},\n\n"
        "Vi a sua nota de {score} em 10. Sou {owner_name} e vou escrever-lhe pessoalmente "
        "até {when}, depois de ver a sua conta.\n\n"
        "O que quer que eu veja primeiro?\n\n"
        "Uma resposta a este e-mail chega diretamente a mim.\n\n"
        "{owner_name}",
    ),
}


def render_acknowledgement(case: FollowUpCase, conversation_url: str = "") -> tuple[str, str]:
    """Subject and body of the acknowledgement of a case whose action waits for a person,
    in the customer's language, with its deadline in the owner's calendar."""
    from zoneinfo import ZoneInfo

    from . import conversation_texts

    assert case.due_at is not None
    locale = case.person.locale or "en"
    language = conversation_texts.language(locale)
    kind = "call" if case.action_enum == Action.CALL else "email"
    draft = ACKNOWLEDGEMENTS.get((kind, language), ACKNOWLEDGEMENTS[(kind, "en")])
    zone = ZoneInfo(case.owner.time_zone) if case.owner is not None else ZoneInfo("UTC")
    when = conversation_texts.weekday_day(case.due_at.astimezone(zone).date(), locale)
    values = {**values_for(case), "when": when, "conversation_url": conversation_url}
    body = fill(draft.body, values, "body")
    if conversation_url:
        body = _with_offer(body, case.person.locale, conversation_url)
    return fill(draft.subject, values, "subject"), body


def _with_offer(body: str, locale: str | None, url: str) -> str:
    """The conversation's offer on its own line before the signature."""
    from . import conversation_texts

    offer = conversation_texts.text(locale, "offer", url=url)
    head, sep, signature = body.rpartition("\n\n")
    return f"{head}\n\n{offer}{sep}{signature}" if sep else f"{body}\n\n{offer}"


# --- the linter ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    rule: str
    message: str


APOLOGY = re.compile(
    r"\b(sorry|apolog\w*|regret\w*|entschuldig\w*|bedauer\w*|désolé\w*|excuse\w*)", re.I
)
DISCOUNT = re.compile(
    r"(\bdiscount\w*|\bcoupon\w*|\bvoucher\w*|\brefund\w*|\bfree (month|upgrade)|\d+\s*% off"
    r"|\bcredit note|\bservice credit|\brabatt\w*|\bgutschein\w*|\bremise\b|\bréduction\w*)",
    re.I,
)
SCORE_BEGGING = re.compile(
    r"(\b9 or 10\b|\b(9|10) out of 10\b|\bnine or ten\b|\bhigher score\b|\bperfect score\b"
    r"|\ba 10\b|\braise your (score|rating)\b|\b(9|10)/10\b)",
    re.I,
)
# Openings of yes/no questions, per language (German "Was …?" is "What …?", so never shared).
CLOSED_STARTERS = {
    "en": r"is|are|was|were|do|does|did|can|could|would|will|should|have|has|had|may|might",
    "de": r"ist|sind|war|waren|haben|hat|hatten|können|könnten|würden|wäre|gibt",
    "fr": r"est-ce|êtes|avez|était|pourriez|seriez|voulez|y a-t-il",
}
VAGUE = re.compile(
    r"(how (can|could) we (improve|do better)|any (other )?feedback|anything else)", re.I
)


def _questions(text: str) -> list[str]:
    """The sentences ending in a question mark."""
    sentences = re.split(r"(?<=[.!?])\s+|\n+", text)
    return [s.strip() for s in sentences if s.strip().endswith("?")]


def lint(
    subject: str,
    body: str,
    locale: str = "en",
    allowed: dict[str, str] = VARIABLES,
    sample: dict[str, str] = SAMPLE,
    answered: bool = True,
) -> list[Finding]:
    """Check a template against the first-outreach rules; an empty list means it passes.
    `answered`: the customer gave a score to name (not so for a health case)."""
    findings: list[Finding] = []
    language = locale.split("-")[0].split("_")[0].lower()
    closed = re.compile(rf"^({CLOSED_STARTERS.get(language, CLOSED_STARTERS['en'])})\b", re.I)
    try:
        variables_in(subject, "subject", allowed)
        used = variables_in(body, "body", allowed)
        text = fill(body, sample)
    except FieldError as exc:
        return [Finding("variables", str(exc))]
    words = len(re.findall(r"\w+", text))
    if words >= MAX_WORDS:
        findings.append(Finding("length", f"{words} words; keep it under {MAX_WORDS}"))
    if answered and "score" not in used:
        findings.append(Finding("score", "reference the score they gave with {score} in the body"))
    questions = _questions(text)
    if len(questions) != 1:
        findings.append(
            Finding("one-question", f"ask exactly one question; this has {len(questions)}")
        )
    for q in questions:
        if closed.match(q):
            findings.append(Finding("open-question", f"ask an open question, not yes/no: {q!r}"))
        elif VAGUE.search(q):
            findings.append(Finding("open-question", f"too vague to answer well: {q!r}"))
    if not used & {"owner_name", "owner_first_name"}:
        findings.append(
            Finding("sender", "sign it as a real person with {owner_name} or {owner_first_name}")
        )
    if APOLOGY.search(text):
        findings.append(Finding("apology", "no apology before you understand the problem"))
    if DISCOUNT.search(text):
        findings.append(
            Finding("discount", "no discount or credit before you understand the problem")
        )
    if SCORE_BEGGING.search(fill(subject, sample) + "\n" + text):
        findings.append(Finding("score-begging", "never ask for a 9 or 10"))
    return findings


QUOTED = re.compile(r"“[^”]*”|„[^“”]*[“”]|«[^»]*»|‘[^’]*’")


def lint_message(text: str, locale: str = "en", asks: bool = True) -> list[Finding]:
    """Check one message of the follow-up conversation: under 60 words, exactly one
    question (none in a closing message), no apology or discount before the problem is
    understood, no score-begging. The customer's own words quoted in it are theirs, not
    ours: only the length counts them."""
    findings: list[Finding] = []
    words = len(re.findall(r"\w+", text))
    if words >= MAX_MESSAGE_WORDS:
        findings.append(Finding("length", f"{words} words; keep it under {MAX_MESSAGE_WORDS}"))
    ours = QUOTED.sub("“”", text)
    questions = ours.count("?")
    if questions != (1 if asks else 0):
        findings.append(
            Finding(
                "one-question",
                f"ask {'exactly one question' if asks else 'nothing'}; this has {questions}",
            )
        )
    if APOLOGY.search(ours):
        findings.append(Finding("apology", "no apology before you understand the problem"))
    if DISCOUNT.search(ours):
        findings.append(
            Finding("discount", "no discount or credit before you understand the problem")
        )
    if SCORE_BEGGING.search(ours):
        findings.append(Finding("score-begging", "never ask for a 9 or 10"))
    return findings


MAX_ANSWER_WORDS = 150  # a pre-approved answer of a theme's protocol sheet


def lint_answer(body: str, field: str = "body") -> list[Finding]:
    """Check a pre-approved answer an owner inserts into a reply, once the problem is
    understood: known {variables}, under 150 words, at most one question, no
    score-begging. (It may apologise or offer a credit: by then the owner knows what
    went wrong.)"""
    try:
        variables_in(body, field)
        text = fill(body, SAMPLE, field)
    except FieldError as exc:
        return [Finding("variables", exc.reason)]
    findings = []
    words = len(re.findall(r"\w+", text))
    if words >= MAX_ANSWER_WORDS:
        findings.append(Finding("length", f"{words} words; keep it under {MAX_ANSWER_WORDS}"))
    if len(_questions(text)) > 1:
        findings.append(Finding("one-question", "ask one question at most"))
    if SCORE_BEGGING.search(text):
        findings.append(Finding("score-begging", "never ask for a 9 or 10"))
    return findings


# --- "you told us X; we shipped Y" -------------------------------------------------------------

FIX_VARIABLES = {
    **VARIABLES,
    "fix": "what shipped, in a line (the announcement's title)",
    "details": "a few words more about the change (may be empty)",
    "told_us": 'what they told us: told us "<their comment>" (or: gave us a <score> out of 10)',
}

FIX_SHIPPED = Draft(
    subject="You told us, we fixed it: {fix}",
    body=(
        "Hi {first_name},\n\n"
        "When you answered our survey, you {told_us}. You were right, and it stayed with us.\n\n"
        "We have just shipped a change: {fix}.\n{details}\n\n"
        "Thank you for telling us; it made {product} better. If anything still isn't right, "
        "reply to this email and it comes straight to me.\n\n"
        "{owner_name}"
    ),
)


def fix_values(case: FollowUpCase, fix: str, details: str, comment: str) -> dict[str, str]:
    """The outreach variables plus the fix; `comment` is the answer the customer wrote."""
    values = values_for(case)
    said = " ".join(comment.split())
    if said:
        excerpt = said[:200] + ("…" if len(said) > 200 else "")
        told = f'told us "{excerpt}"'
    else:
        told = f"gave us a {case.score} out of 10"
    return {**values, "fix": fix.strip().rstrip("."), "details": details.strip(), "told_us": told}


def check_fix_template(subject: str, body: str) -> None:
    """Refuse a fix-shipped template with unknown variables or bad braces."""
    variables_in(subject, "subject", FIX_VARIABLES)
    variables_in(body, "body", FIX_VARIABLES)
