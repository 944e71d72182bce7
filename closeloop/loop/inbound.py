"""Customer replies by email: find the case, keep only what the customer wrote, land it.

Mail arrives two ways (the IMAP poller and the signed HTTP endpoint) and all of it
comes through `receive`. A server's bounce report is not a reply: it is read as one
(bounces.py) and bounces the person when it names their mailbox. Every message is stored raw
first; one that matches no case goes to the quarantine, never to the floor.
The same message arriving twice (a retried forward, two pollers) is stored once.
"""

from __future__ import annotations

import hashlib
import logging
import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser

from django.db import DatabaseError, IntegrityError, transaction

from closeloop.delivery.models import DELIVERY_ID, Delivery

from . import actions, bounces
from .models import FollowUpCase, InboundMessage

log = logging.getLogger("closeloop.inbound")

TOKEN = re.compile(r"\+([A-Za-z0-9_-]{16,40})@")
RECIPIENT_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")

# Where quoted history starts, in the mail clients people use (English, German, French).
QUOTE_STARTS = [
    re.compile(p, re.I)
    for p in (
        r"^On .{5,200}wrote:\s*$",
        r"^Am .{5,200}schrieb .{0,200}:\s*$",
        r"^Le .{5,200}a écrit\s*:\s*$",
        r"^-{2,}\s*(Original Message|Ursprüngliche Nachricht|Message d'origine)\s*-{2,}",
        r"^_{10,}\s*$",
        r"^(From|Von|De)\s*:.+",
        r"^Sent from my ",
        r"^Get Outlook for ",
        r"^-- ?$",
    )
]
WROTE_CONTINUATION = re.compile(r"^.{0,200}(wrote|schrieb|a écrit)\s*:\s*$", re.I)


class _Text(HTMLParser):
    """Visible text of an HTML part, without quoted blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("blockquote", "style", "script", "head"):
            self.skip += 1
        elif tag in ("br", "p", "div", "tr", "li"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("blockquote", "style", "script", "head") and self.skip:
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def body_text(message: EmailMessage) -> str:
    """The message's text: the plain part, else the HTML part's visible text."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    if part.get_content_type() == "text/html":
        parser = _Text()
        parser.feed(content)
        content = "".join(parser.parts)
    return content


def strip_reply(text: str) -> str:
    """Keep what the customer wrote: drop quoted history, signatures and mobile footers."""
    lines = text.replace("\r\n", "\n").split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(">"):
            continue
        if any(p.match(stripped) for p in QUOTE_STARTS):
            break
        # "On Mon, 3 Nov 2026 at 10:00, Alex <a@b.c>" + newline + "wrote:"
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if re.match(r"^(On|Am|Le) .{5,200}", stripped) and WROTE_CONTINUATION.match(nxt):
            break
        kept.append(line.rstrip())
    reply = "\n".join(kept).strip()
    return re.sub(r"\n{3,}", "\n\n", reply)


def _is_auto_reply(message: EmailMessage) -> bool:
    auto = str(message.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(message.get("Precedence", "")).strip().lower()
    subject = str(message.get("Subject", "")).lower()
    return (
        auto != "no"
        or precedence in ("auto_reply", "bulk", "junk")
        or "X-Autoreply" in message
        or subject.startswith(("out of office", "automatic reply", "abwesenheitsnotiz"))
    )


def _find_case(message: EmailMessage) -> tuple[FollowUpCase | None, str]:
    """The case a reply belongs to, by its Reply-To token, else by the message it answers."""
    addresses = getaddresses([str(v) for h in RECIPIENT_HEADERS for v in message.get_all(h, [])])
    tokens = [m.group(1) for _, addr in addresses if (m := TOKEN.search(addr))]
    for token in tokens:
        case = FollowUpCase.objects.filter(reply_token=token).first()
        if case is not None:
            return case, ""
    refs = f"{message.get('In-Reply-To', '')} {message.get('References', '')}"
    for delivery_id in DELIVERY_ID.findall(refs):
        delivery = Delivery.objects.filter(event_id=delivery_id, case__isnull=False).first()
        if delivery is not None and delivery.case is not None:
            return delivery.case, ""
    if tokens:
        return None, f"no case has the reply token {tokens[0]!r} (unknown or forged)"
    return None, "no case reply address and no reference to a message we sent"


def dedupe_key(raw: bytes, message_id: str) -> str:
    source = message_id.strip().encode() if message_id.strip() else raw
    return hashlib.sha256(source).hexdigest()


def receive(raw: bytes, via: str) -> tuple[InboundMessage, bool]:
    """Store a raw message and land it on its case (or in quarantine); (message, is_new)."""
    try:
        parsed = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(parsed, EmailMessage)
        message: EmailMessage | None = parsed
        message_id = str(parsed.get("Message-ID", "") or "")
    except Exception:  # any parser failure means "malformed": kept in quarantine
        message, message_id = None, ""
    key = dedupe_key(raw, message_id)
    existing = InboundMessage.objects.filter(dedupe_key=key).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            return _land(raw, via, key, message_id, message), True
    except IntegrityError:
        # The same message landed concurrently (two pollers, a retried forward).
        found = InboundMessage.objects.filter(dedupe_key=key).first()
        if found is not None:
            return found, False
        return _quarantine_raw(raw, via, key, "could not be stored: a constraint refused it"), True
    except DatabaseError as exc:
        # Whatever in it the database refused, the raw message is kept for a person to
        # look at, and the mailbox moves on to the next one.
        log.exception("inbound message could not be stored; quarantined")
        return _quarantine_raw(raw, via, key, f"could not be stored: {type(exc).__name__}"), True


def quarantine(raw: bytes, via: str, reason: str) -> InboundMessage:
    """Keep a message that will not be landed (too large, say) for a person to look at."""
    key = dedupe_key(raw, "")
    return InboundMessage.objects.filter(dedupe_key=key).first() or _quarantine_raw(
        raw, via, key, reason
    )


def _quarantine_raw(raw: bytes, via: str, key: str, reason: str) -> InboundMessage:
    with transaction.atomic():
        return InboundMessage.objects.create(
            raw=raw,
            via=via,
            dedupe_key=key,
            status=InboundMessage.Status.QUARANTINED,
            reason=reason,
        )


def _text(value: str, limit: int) -> str:
    """A header or body as the database keeps text: NUL characters (which PostgreSQL
    refuses in text) shown as U+FFFD, cut to the column."""
    return value.replace("\x00", "\ufffd")[:limit]


def _land(
    raw: bytes, via: str, key: str, message_id: str, message: EmailMessage | None
) -> InboundMessage:
    inbound = InboundMessage(raw=raw, via=via, dedupe_key=key, message_id=_text(message_id, 998))
    if message is None or not message.get("From"):
        inbound.status = InboundMessage.Status.QUARANTINED
        inbound.reason = "malformed message: no From header could be read"
        inbound.save()
        return inbound
    inbound.from_address = _text(parseaddr(str(message.get("From", "")))[1], 254)
    inbound.subject = _text(str(message.get("Subject", "")), 300)
    try:
        inbound.text = _text(strip_reply(body_text(message)), 20_000)
    except Exception:  # a broken body still keeps the raw message
        inbound.text = ""
    report = bounces.read(message)
    if report is not None:
        # A server's report that an email of ours could not be delivered, not a reply.
        outcome = bounces.apply(report)
        inbound.status = InboundMessage.Status.BOUNCE
        inbound.reason = _text(outcome.note, 300)
        inbound.case = outcome.delivery.case if outcome.delivery else None
        if outcome.delivery is None:
            inbound.status = InboundMessage.Status.QUARANTINED
        inbound.save()
        return inbound
    case, why = _find_case(message)
    if case is None:
        inbound.status = InboundMessage.Status.QUARANTINED
        inbound.reason = why
        inbound.save()
        return inbound
    inbound.case = case
    auto = _is_auto_reply(message)
    inbound.status = InboundMessage.Status.AUTO_REPLY if auto else InboundMessage.Status.MATCHED
    inbound.save()
    actions.receive_reply(case, inbound, automatic=auto)
    return inbound
