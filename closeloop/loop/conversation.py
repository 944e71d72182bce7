"""The follow-up conversation's engine (docs/domain.md §5): what closeloop asks next,
what it has understood, and who must hear of it now.

One answer is one turn (`answer`): the customer's words are read for themes and
sentiment (the theme engine's models) and for signals (`signals`: churn intent, a
competitor, a call wanted, a legal or security matter, a request to stop); the summary is
rebuilt from every answer so far; a signal that cannot wait alerts the owner at once;
then the next step is chosen:

1. thank, name the score, quote the comment; ask the open question unless the comment
   already answered it;
2. the probe of the theme found (the theme's own probes, Settings → Themes);
3. impact, and alternatives when the answer hints at them;
4. what would fix it; then read the understanding back and let the customer correct it;
5. offer a call with the owner (their booking link when set); close with what happens
   next and by when (recorded as a commitment on the case).

At most six questions; a question already answered is never asked; two very short
answers end it early and politely, a request to stop ends it at once. Every message
passes `outreach.lint_message`. The owner can take over at any moment: the engine then
stops asking, and the customer's words still reach the owner.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any

from django.db import transaction
from django.utils import timezone

from closeloop.core.errors import FieldError
from closeloop.core.schemas import has_nul
from closeloop.delivery.models import Delivery
from closeloop.team.models import User
from closeloop.themes import analysis
from closeloop.themes.models import Theme

from . import batch, llm, notify, outreach, signals
from . import conversation_texts as words
from .messages import summary_text
from .models import Activity, Conversation, FollowUpCase, InboundMessage, Message
from .sla import compute_priority

log = logging.getLogger("closeloop.conversation")

MAX_QUESTIONS = 6
SHORT_WORDS = 3  # an answer this short to an open question says little
SHORT_ANSWERS_TO_END = 2
MAX_TEXT = 5_000
ANSWERS_PER_MINUTE = 10
QUOTE_WORDS = 16
OPEN_STEPS = ("open", "probe", "impact", "alternatives", "fix")
WHY_KNOWN_WORDS = 5  # a comment this long with a theme found already says why


@dataclass
class Turn:
    """What one answer produced: closeloop's new messages, and whether it has ended."""

    messages: list[Message]
    done: bool


@dataclass
class Answer:
    step: str
    text: str
    themes: list[tuple[str, float]]
    said: signals.Signals


@dataclass
class Facts:
    """Everything understood so far, from the comment and every answer."""

    comment: str
    comment_themes: list[tuple[str, float]]
    answers: list[Answer] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        return [t for t in [self.comment, *(a.text for a in self.answers)] if t.strip()]

    @cached_property
    def said(self) -> signals.Signals:
        """The signals of the comment and of every answer, first finding kept (read once:
        a turn asks for them several times, and the answers are all in when it does)."""
        merged = signals.read(self.comment)
        for answer in self.answers:
            for key, value in vars(answer.said).items():
                if value and not getattr(merged, key):
                    setattr(merged, key, value)
        return merged

    def answered(self, step: str) -> Answer | None:
        return next((a for a in self.answers if a.step == step), None)

    @property
    def problem(self) -> list[str]:
        """The customer's substantial answers about the problem (to "why" and the probe)."""
        return [
            a.text
            for a in self.answers
            if a.step in ("open", "probe") and signals.words(a.text) > SHORT_WORDS
        ]

    def themes(self) -> list[str]:
        """The themes of the comment and of the answers that describe the problem."""
        best: dict[str, float] = {}
        # What describes the problem: the comment, the answers to "why" and the probe,
        # and a correction of the read-back (not impact, alternatives, fix or the call).
        sources = [self.comment_themes] + [
            a.themes
            for a in self.answers
            if a.step in ("open", "probe")
            or (a.step == "confirm" and signals.says_yes(a.text) is not True)
        ]
        for found in sources:
            for slug, confidence in found:
                best[slug] = max(best.get(slug, 0.0), confidence)
        ranked = sorted(best.items(), key=lambda pair: -pair[1])
        return [slug for slug, _ in ranked[:3]]

    @property
    def why_known(self) -> bool:
        """The comment already says what shaped the score."""
        return signals.words(self.comment) >= WHY_KNOWN_WORDS and bool(self.comment_themes)

    @property
    def shorts(self) -> int:
        return sum(
            1 for a in self.answers if a.step in OPEN_STEPS and signals.words(a.text) <= SHORT_WORDS
        )


# --- reading ------------------------------------------------------------------------------


def read_themes(text: str) -> tuple[list[tuple[str, float]], dict[str, Any]]:
    """Themes (slug, confidence) and sentiment of one text; nothing when the models are
    not ready or fail (the engine then asks the general questions)."""
    if not text.strip() or not analysis.ready():
        return [], {}
    try:
        found = analysis.analyse([text])
    except Exception:  # a model failure must never lose the customer's answer
        log.exception("reading a conversation answer failed")
        return [], {}
    result = found.results[0]
    feeling = result.sentiment
    return result.themes, {
        "themes": found.named(result.themes),
        "sentiment": getattr(feeling, "label", None),
        "themes_version": found.themes_version,
    }


def _comment_themes(conversation: Conversation) -> list[tuple[str, float]]:
    """The comment's themes: as tagged (by the worker or a person), else read once by the
    models and kept on the conversation (`comment_themes`), not again on every turn."""
    response = conversation.case.response
    if response is None:  # only detractor cases, opened by an answer, hold a conversation
        return []
    tags = [
        (t.theme.slug, t.confidence or 1.0) for t in response.theme_tags.select_related("theme")
    ]
    if tags or not response.comment.strip():
        return tags
    if conversation.comment_themes is None:
        found, reading = read_themes(response.comment)
        if not reading:  # the models are not ready or failed: read again next turn
            return found
        conversation.comment_themes = [[slug, confidence] for slug, confidence in found]
        if conversation.pk is not None:
            Conversation.objects.filter(pk=conversation.pk).update(
                comment_themes=conversation.comment_themes
            )
    return [(str(slug), float(confidence)) for slug, confidence in conversation.comment_themes]


def facts_of(conversation: Conversation) -> Facts:
    facts = Facts(conversation.case.comment_text, _comment_themes(conversation))
    for m in conversation.messages.filter(sender=Message.Sender.CUSTOMER).order_by(
        "created_at", "id"
    ):
        themes = [(t["slug"], float(t["confidence"])) for t in m.reading.get("themes", [])]
        facts.answers.append(Answer(m.step, m.text, themes, signals.read(m.text)))
    return facts


# --- what comes next ------------------------------------------------------------------------


def next_step(conversation: Conversation, facts: Facts) -> str | None:
    """The next question's step, or None when it is time to close."""
    asked = list(conversation.asked)
    if len(asked) >= MAX_QUESTIONS:
        return None
    said = facts.said
    reserved = [s for s in ("confirm", "call") if s not in asked and _needs(s, facts, said)]
    wanted = []
    if "open" not in asked and not facts.why_known and not facts.answers:
        wanted.append("open")
    if "probe" not in asked and not _specific_already(facts):
        wanted.append("probe")
    # Someone who has decided to leave is asked what would have fixed it, not how much
    # it hurts or what they compare us with.
    if "impact" not in asked and not said.impact and not said.churn:
        wanted.append("impact")
    if "alternatives" not in asked and said.alternatives and not said.competitor and not said.churn:
        wanted.append("alternatives")
    if "fix" not in asked and not said.fix:
        wanted.append("fix")
    budget = MAX_QUESTIONS - len(asked) - len(reserved)
    for optional in ("impact", "alternatives"):
        if len(wanted) > budget and optional in wanted:
            wanted.remove(optional)
    wanted = wanted[: max(0, budget)]
    steps = wanted + reserved
    return steps[0] if steps else None


SPECIFIC = re.compile(
    r"\d|\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|yesterday|today"
    r"|last (?:week|month|time)|every (?:time|day|week|morning)|again|hours?|days?|weeks?"
    r"|minutes?|seconds?)\b",
    re.I,
)
SPECIFIC_WORDS = 12


def _specific_already(facts: Facts) -> bool:
    """The customer's answer to the open question already gives the detail a probe asks
    for (long, with a time, a number or a "when"): the probe would ask it again."""
    opened = facts.answered("open")
    return (
        opened is not None
        and signals.words(opened.text) >= SPECIFIC_WORDS
        and bool(SPECIFIC.search(opened.text))
    )


def _needs(step: str, facts: Facts, said: signals.Signals) -> bool:
    if step == "confirm":
        return any(signals.words(a.text) > SHORT_WORDS for a in facts.answers) or facts.why_known
    return not said.call


def _quote(text: str, limit: int = QUOTE_WORDS) -> str:
    """A customer's words fit to quote in one of our sentences: first sentence, no
    question marks (each message asks exactly one question), at most `limit` words."""
    found = signals.sentences(text) if text.strip() else []
    # The first sentence that says something ("Hmm." does not), else all of it.
    first = next((x for x in found if signals.words(x) >= 3), " ".join(found))
    cleaned = re.sub(r"[?¿“”„«»\"]", "", first).strip().rstrip(".!;:")
    parts = cleaned.split()
    return " ".join(parts[:limit]) + ("…" if len(parts) > limit else "")


def _probe(conversation: Conversation, facts: Facts) -> str:
    locale = conversation.locale
    themes = facts.themes()
    if themes:
        theme = Theme.objects.filter(slug=themes[0]).first()
        if theme is not None and theme.probes:
            return words.probe(theme.probes[0], locale)
    return words.text(locale, "general_probe")


def _values(conversation: Conversation) -> dict[str, str]:
    values = outreach.values_for(conversation.case)
    return {k: values[k] for k in ("first_name", "owner_name", "owner_first_name", "score")}


def _question(conversation: Conversation, step: str, facts: Facts) -> str:
    locale = conversation.locale
    values = _values(conversation)
    if step == "probe":
        return _probe(conversation, facts)
    if step == "confirm":
        return words.text(locale, "confirm", understanding=understanding(conversation, facts))
    if step == "call":
        owner = conversation.case.owner
        if owner is not None and owner.booking_url:
            return words.text(
                locale,
                "call_booking",
                owner_first_name=values["owner_first_name"],
                booking=owner.booking_url,
            )
        return words.text(locale, "call", owner_first_name=values["owner_first_name"])
    return words.text(locale, step)


def understanding(conversation: Conversation, facts: Facts) -> str:
    """One sentence of what closeloop understood, in the customer's own words."""
    summary = summarise(conversation, facts)
    # The customer's most specific words: a correction, their answer about the problem,
    # else their comment.
    problem = facts.problem
    source = problem[0] if problem and facts.answered("confirm") is None else summary["root_cause"]
    said = f"“{_quote(source)}”" if source else ""
    if summary["desired_fix"]:
        fix = words.text(conversation.locale, "and_fix", fix=_quote(summary["desired_fix"], 12))
        said = f"{said}, {fix}" if said else fix
    return said or f"“{_quote(facts.comment)}”"


def opening(conversation: Conversation) -> tuple[str, str]:
    """The first message (thanks, the score, the comment quoted, the first question) and
    its step; nothing is stored until the customer answers."""
    facts = facts_of(conversation)
    step = next_step(conversation, facts) or "open"
    values = _values(conversation)
    locale = conversation.locale
    if facts.comment:
        thanks = words.text(
            locale,
            "thanks_comment",
            score=values["score"],
            first_name=values["first_name"],
            quote=_quote(facts.comment),
        )
    else:
        thanks = words.text(
            locale, "thanks", score=values["score"], first_name=values["first_name"]
        )
    return f"{thanks} {_question(conversation, step, facts)}", step


def _ack(conversation: Conversation, facts: Facts) -> str:
    said = facts.answers[-1] if facts.answers else None
    if said is not None and said.step == "confirm" and signals.says_yes(said.text) is not True:
        return words.text(conversation.locale, "ack_correction")
    acks = words.texts(conversation.locale)["ack"]
    assert isinstance(acks, list)
    return str(acks[len(facts.answers) % len(acks)])


def _closing(conversation: Conversation, facts: Facts, key: str) -> str:
    values = _values(conversation)
    return words.text(
        conversation.locale,
        key,
        first_name=values["first_name"],
        owner_name=values["owner_name"],
        date=words.day(promised_by(conversation).date(), conversation.locale),
    )


def promised_by(conversation: Conversation) -> Any:
    """When the owner comes back with what happens next: a day, or two for a normal case."""
    hours = 24 if conversation.summary.get("urgency") == "high" else 48
    return (conversation.ended_at or timezone.now()) + timedelta(hours=hours)


# --- the summary --------------------------------------------------------------------------


def summarise(conversation: Conversation, facts: Facts) -> dict[str, Any]:
    """The structured answer to "why" (issue shape in docs/conversation.md)."""
    said = facts.said
    problem = facts.problem
    correction = facts.answered("confirm")
    corrected = ""
    if correction is not None and signals.says_yes(correction.text) is not True:
        corrected = re.sub(
            r"^\s*(no|not quite|not really|nope)[,.!:;\s-]*", "", correction.text, flags=re.I
        )
    root = corrected if signals.words(corrected) > SHORT_WORDS else ""
    if not root:
        root = _joined(
            [_first_sentences(t) for t in ([facts.comment] if facts.comment else []) + problem[:1]]
        )
    fix = facts.answered("fix")
    desired = fix.text if fix is not None and signals.words(fix.text) > 1 else said.fix
    impact = facts.answered("impact")
    impact_text = (
        impact.text if impact is not None and signals.words(impact.text) > 1 else said.impact
    )
    call_answer = facts.answered("call")
    wants_call = bool(said.call) or (
        call_answer is not None and signals.says_yes(call_answer.text) is True
    )
    kind = detractor_type(said, facts)
    urgent = bool(said.churn or said.legal or (said.competitor and conversation.case.high_value))
    urgency = "high" if urgent or (wants_call and conversation.case.band == "severe") else "normal"
    if urgency == "normal" and kind == "loyal" and (conversation.case.score or 0) >= 5:
        urgency = "low"
    quotes = []
    for quote in [
        said.churn,
        said.competitor_quote,
        said.legal,
        said.call,
        root,
        desired,
        impact_text,
    ]:
        for sentence in signals.sentences(quote or "")[:2]:
            if sentence not in quotes:
                quotes.append(sentence)
    return {
        "themes": facts.themes(),
        "root_cause": root.strip()[:1000],
        "desired_fix": (desired or "").strip()[:1000],
        "impact": (impact_text or "").strip()[:1000],
        "detractor_type": kind,
        "churn_intent": bool(said.churn),
        "competitor": said.competitor,
        "wants_call": wants_call,
        "urgency": urgency,
        "quotes": quotes[:6],
    }


def _joined(texts: list[str]) -> str:
    """Texts as one paragraph, each ending as a sentence ends."""
    return " ".join(t if t.rstrip()[-1:] in ".!?…" else f"{t.rstrip()}." for t in texts if t)


def _first_sentences(text: str, limit: int = 2) -> str:
    return " ".join(signals.sentences(text)[:limit])


def detractor_type(said: signals.Signals, facts: Facts) -> str:
    """docs/domain.md's four kinds of detractor, from what they said."""
    if said.churn:
        return FollowUpCase.DetractorType.LEAVING.value
    if said.competitor or said.alternatives:
        return FollowUpCase.DetractorType.EVALUATING.value
    if said.loyal:
        return FollowUpCase.DetractorType.LOYAL.value
    substance = sum(signals.words(t) for t in facts.texts)
    if said.invested or said.fix or (facts.answers and substance >= 25):
        return FollowUpCase.DetractorType.INVESTED.value
    return "unknown"


# --- turns --------------------------------------------------------------------------------


def offer(case: FollowUpCase) -> Conversation:
    """Every detractor's case gets a conversation; its link goes in the first outreach."""
    return batch.add(Conversation(case=case, locale=case.person.locale or "en"))


def clean_text(text: object) -> str:
    """A message's text as given by a customer or an owner, or a FieldError naming
    `text`: a string with words, at most MAX_TEXT characters, no NUL."""
    if not isinstance(text, str):
        raise FieldError("text", "must be a string")
    cleaned = text.strip()
    if not cleaned:
        raise FieldError("text", "write something first")
    if len(cleaned) > MAX_TEXT:
        raise FieldError("text", f"at most {MAX_TEXT} characters")
    if has_nul(cleaned):
        raise FieldError("text", "must not contain NUL characters")
    return cleaned


class TooMany(Exception):
    """The customer sent more answers in the last minute than a person types."""


def answer(conversation: Conversation, text: str, via: str = Message.Via.PAGE) -> Turn:
    """Record the customer's answer and say what comes next (see the module's docstring)."""
    with transaction.atomic():
        conversation = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("case__person", "case__owner", "case__account", "case__response")
            .get(pk=conversation.pk)
        )
        since = timezone.now() - timedelta(minutes=1)
        recent = conversation.messages.filter(
            sender=Message.Sender.CUSTOMER, created_at__gte=since
        ).count()
        if recent >= ANSWERS_PER_MINUTE:
            raise TooMany()
        _record(conversation, text, via)
        if not conversation.is_open:
            if via == Message.Via.PAGE:
                case = conversation.case
                notify.conversation_alert(
                    case, f"Conversation: {case.person.email or case.person} wrote", text
                )
            return Turn([], True)
        created = _respond(conversation, via)
        return Turn(created, not conversation.is_open)


def _record(conversation: Conversation, text: str, via: str) -> None:
    """Store the answer (after the opening it answers, the first time) and put it on the
    case: a reply on the timeline for the worker to read, the case in conversation."""
    case = conversation.case
    if not conversation.messages.exists():
        first, first_step = opening(conversation)
        _say(conversation, first, first_step, via)  # already shown: not among the new
        conversation.asked = [first_step]
    last_asked = conversation.asked[-1] if conversation.asked else ""
    _, reading = read_themes(text) if conversation.is_open else ([], {})
    Message.objects.create(
        conversation=conversation,
        sender=Message.Sender.CUSTOMER,
        text=text,
        step=last_asked if conversation.is_open else "",
        via=via,
        reading=reading,
    )
    if via != Message.Via.PAGE:
        return  # an email reply is on the case already (actions.receive_reply)
    case.log(
        Activity.Kind.REPLY_RECEIVED,
        text,
        via="conversation",
        conversation=conversation.pk,
        step=last_asked,
    )
    if case.is_closed:  # as a reply by email does
        case.reopen("the customer wrote in the follow-up conversation", None)
        notify.case_event(case, "case.updated")
    case.touch(None, FollowUpCase.Status.IN_CONVERSATION)


def _respond(conversation: Conversation, via: str) -> list[Message]:
    """Read everything said so far, alert what cannot wait, and ask the next question or
    close; returns closeloop's new message."""
    fields = ["asked", "summary"]
    if conversation.status == Conversation.Status.NOT_STARTED:
        conversation.status = Conversation.Status.ACTIVE
        conversation.started_at = timezone.now()
        fields += ["status", "started_at"]
        conversation.case.log(
            Activity.Kind.CONVERSATION, "the customer started the follow-up conversation"
        )
    facts = facts_of(conversation)
    conversation.summary = summarise(conversation, facts)
    _urgent(conversation, facts)
    said = facts.said
    step = None if said.stop else next_step(conversation, facts)
    if said.stop:
        message = _end(conversation, facts, "close_stop", Conversation.Status.STOPPED, via)
    elif facts.shorts >= SHORT_ANSWERS_TO_END:
        message = _end(conversation, facts, "close_short", Conversation.Status.COMPLETED, via)
    elif step is None:
        key = "close_call" if conversation.summary["wants_call"] else "close"
        message = _end(conversation, facts, key, Conversation.Status.COMPLETED, via)
    else:
        question = _question(conversation, step, facts)
        worded = _phrased(conversation, step, question, facts)
        worded = worded or f"{_ack(conversation, facts)} {question}"
        message = _say(conversation, worded, step, via)
        conversation.asked = [*conversation.asked, step]
    if not conversation.is_open:
        _written(conversation, facts)
    conversation.save_changes(*fields, "status", "ended_at")
    if not conversation.is_open:
        _ended(conversation)
    return [message]


# The steps whose question the language model may word (the read-back, the call offer
# and the close carry names and promises, so they stay the engine's own).
PHRASED_STEPS = ("open", "probe", "impact", "alternatives", "fix")


def _phrased(conversation: Conversation, step: str, question: str, facts: Facts) -> str | None:
    """The language model's wording of the next question when one is set and its answer
    passes the linter; None otherwise (the built-in words are used)."""
    if step not in PHRASED_STEPS or not llm.enabled():
        return None
    text = llm.phrase(step, question, facts.texts, conversation.locale)
    if text is None:
        return None
    findings = outreach.lint_message(text, conversation.locale, asks=True)
    if findings:
        log.warning("language model question refused (%s): %r", findings[0].rule, text)
        return None
    return text


def _written(conversation: Conversation, facts: Facts) -> None:
    """At the end, the language model (when set) writes root cause, fix and impact in
    its words; the built-in summary stays where it says nothing."""
    if not llm.enabled():
        return
    found = llm.summary_fields(facts.texts, conversation.locale)
    if found is None:
        return
    summary = dict(conversation.summary)
    for key, value in found.items():
        if value:
            summary[key] = value
    conversation.summary = summary


def _say(conversation: Conversation, text: str, step: str, via: str) -> Message:
    findings = outreach.lint_message(text, conversation.locale, asks=step != "close")
    if findings:  # a bug in our own sentences: logged loudly, never shown to a customer as such
        log.error("conversation message breaks the linter: %s: %r", findings, text)
    return Message.objects.create(
        conversation=conversation, sender=Message.Sender.CLOSELOOP, text=text, step=step, via=via
    )


def _end(conversation: Conversation, facts: Facts, key: str, status: str, via: str) -> Message:
    conversation.status = status
    conversation.ended_at = timezone.now()
    return _say(conversation, _closing(conversation, facts, key), "close", via)


def _ended(conversation: Conversation) -> None:
    """The conversation's end (saved): the detractor type, the promise, the owner and the
    channels told."""
    case = conversation.case
    summary = conversation.summary
    if summary["detractor_type"] != "unknown":
        case.suggest_type(summary["detractor_type"], "conversation")
    owner = case.owner
    promise = f"Tell {case.person.name or case.person.email or 'the customer'} what happens next"
    if summary["wants_call"]:
        promise += " (they want a call)"
    case.commit(
        promise + " — promised in the follow-up conversation", promised_by(conversation), owner
    )
    case.log(
        Activity.Kind.CONVERSATION,
        f"follow-up conversation {conversation.get_status_display().lower()}: "
        + summary_line(summary),
        summary=summary,
    )
    notify.conversation_alert(
        case,
        f"Conversation {conversation.get_status_display().lower()}",
        summary_text(summary),
    )
    notify.case_event(case, "conversation.completed")


def summary_line(summary: dict[str, Any]) -> str:
    parts = []
    if summary["themes"]:
        parts.append(", ".join(summary["themes"]))
    if summary["detractor_type"] != "unknown":
        parts.append(summary["detractor_type"])
    if summary["churn_intent"]:
        parts.append("churn intent")
    if summary["competitor"]:
        parts.append(f"evaluating {summary['competitor']}")
    if summary["wants_call"]:
        parts.append("wants a call")
    return "; ".join(parts) or "nothing specific said"


def _urgent(conversation: Conversation, facts: Facts) -> None:
    """Alert the owner (and the sponsor of a top account) at once of what cannot wait;
    raise the case's urgency and priority; record the detractor type it implies."""
    said = facts.said
    new = [(kind, quote) for kind, quote in said.urgent if kind not in conversation.alerted]
    if not new:
        return
    conversation.alerted = [*conversation.alerted, *(kind for kind, _ in new)]
    conversation.save_changes("alerted")
    case = conversation.case
    case.urgency = FollowUpCase.Urgency.HIGH
    case.priority = compute_priority(case)
    case.save_changes("urgency", "priority")
    implied = detractor_type(said, facts)
    if implied in ("leaving", "evaluating"):
        case.suggest_type(implied, "conversation")
    for kind, quote in new:
        case.log(Activity.Kind.URGENT, f"{kind}: “{quote}”", signal=kind, quote=quote)
    notify.urgent_alert(case, new)


def take_over(conversation: Conversation, user: User | None) -> None:
    """The owner answers from now on; the engine stops asking."""
    if conversation.status == Conversation.Status.TAKEN_OVER:
        return
    was_open = conversation.is_open
    conversation.status = Conversation.Status.TAKEN_OVER
    conversation.taken_over_by = user
    conversation.ended_at = conversation.ended_at or timezone.now()
    conversation.save_changes("status", "taken_over_by", "ended_at")
    who = user.display_name if user else "the owner"
    conversation.case.log(
        Activity.Kind.CONVERSATION,
        f"{who} took over the follow-up conversation" + ("" if was_open else " after it ended"),
        user,
    )


def owner_says(conversation: Conversation, text: str, user: User) -> Message:
    """The owner writes into the conversation (taking it over); the customer sees it on
    the page and gets it by email."""
    take_over(conversation, user)
    message = Message.objects.create(
        conversation=conversation, sender=Message.Sender.OWNER, text=text
    )
    case = conversation.case
    subject = outreach.values_for(case)
    notify.customer_email(
        case,
        f"Re: your {subject['score']}/10 for {subject['product']}",
        f"{text}\n\n{conversation.url}",
        Delivery.Purpose.OUTREACH,
        user,
    )
    return message


# --- email --------------------------------------------------------------------------------


def email_reply(case: FollowUpCase, inbound: InboundMessage) -> bool:
    """A customer's email reply enters the conversation when the engine still asks on an
    automated case: the next question goes back by email, threaded, from the owner.
    False when the conversation is not the engine's to continue."""
    conversation = Conversation.objects.filter(case=case).first()
    if conversation is None or not conversation.is_open or not case.action_enum.automated:
        return False
    text = (inbound.text or "").strip()[:MAX_TEXT]
    if not text:
        return False
    if not conversation.messages.exists():
        _record_outreach(conversation)
    try:
        turn = answer(conversation, text, Message.Via.EMAIL)
    except TooMany:
        return False
    for message in turn.messages:
        if message.sender == Message.Sender.CLOSELOOP:
            _email(conversation, message, inbound)
    return True


def _record_outreach(conversation: Conversation) -> None:
    """The first email's question stands as the conversation's first message."""
    case = conversation.case
    sent = case.deliveries.filter(purpose=Delivery.Purpose.OUTREACH).order_by("created_at").first()
    body = sent.body if sent is not None else ""
    question = next(
        (s for s in signals.sentences(body) if s.endswith("?")),
        words.text(conversation.locale, "open"),
    )
    Message.objects.create(
        conversation=conversation,
        sender=Message.Sender.CLOSELOOP,
        text=question,
        step="open",
        via=Message.Via.EMAIL,
    )
    conversation.asked = ["open"]
    conversation.save_changes("asked")


def _email(conversation: Conversation, message: Message, inbound: InboundMessage) -> None:
    case = conversation.case
    subject = inbound.subject or f"Your {case.score}/10"
    if not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    signature = outreach.values_for(case)["owner_name"]
    headers = {}
    if inbound.message_id:
        first = (
            case.deliveries.filter(purpose=Delivery.Purpose.OUTREACH).order_by("created_at").first()
        )
        refs = " ".join(x for x in [first.message_id if first else "", inbound.message_id] if x)
        headers = {"In-Reply-To": inbound.message_id, "References": refs}
    notify.customer_email(
        case,
        subject[:300],
        f"{message.text}\n\n{signature}",
        Delivery.Purpose.OUTREACH,
        headers=headers,
    )


def transcript(conversation: Conversation) -> list[dict[str, Any]]:
    return [m.as_json() for m in conversation.messages.all()]
