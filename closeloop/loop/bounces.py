"""Bounce reports that arrive after an email was accepted (delivery status notifications,
RFC 3464): a receiving server took the message, then could not deliver it.

A report names the message it is about (the returned headers carry our Message-ID,
`<delivery-…@…>`, which nobody outside can guess) and, per recipient, what happened
(`Action: failed`, `Status: 5.1.1`). Only a failure naming the recipient's mailbox, for
the very address the message went to, bounces the person; a delay or a failure for
another reason is kept with the message and changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage, Message

from closeloop.delivery import sending
from closeloop.delivery.models import DELIVERY_ID, Delivery
from closeloop.delivery.transports import names_the_mailbox
from closeloop.loop.outcomes import LISTENERS

_MESSAGE_ID = re.compile(r"^Message-ID:\s*(<[^>\r\n]+>)", re.I | re.M)


@dataclass
class Recipient:
    """One per-recipient block of a report."""

    address: str
    action: str
    status: str
    diagnostic: str

    @property
    def mailbox_failed(self) -> bool:
        """Failed for good, for a reason about the address or the mailbox (RFC 3463)."""
        return (
            self.action == "failed"
            and self.status.startswith("5.")
            and names_the_mailbox(self.status)
        )


@dataclass
class Report:
    """What a bounce report says: about which of our messages, and per recipient."""

    event_id: str | None
    recipients: list[Recipient]


def read(message: EmailMessage) -> Report | None:
    """The delivery status report in `message`, or None when it is not one."""
    if message.get_content_type() != "multipart/report":
        return None
    if str(message.get_param("report-type", "")).lower() != "delivery-status":
        return None
    recipients: list[Recipient] = []
    event_id = None
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            recipients += _recipients(part)
        elif kind in ("message/rfc822", "text/rfc822-headers") and event_id is None:
            event_id = _event_id(part)
    return Report(event_id, recipients)


def _field(block: Message, name: str) -> str:
    return str(block.get(name, "") or "").strip()


def _recipients(part: Message) -> list[Recipient]:
    blocks = part.get_payload()
    if not isinstance(blocks, list):
        return []
    found = []
    for block in blocks[1:]:  # the first block is about the message, the rest per recipient
        if not isinstance(block, Message):
            continue
        recipient = _field(block, "Final-Recipient") or _field(block, "Original-Recipient")
        address = recipient.partition(";")[2].strip() or recipient
        if not address:
            continue
        found.append(
            Recipient(
                address=address.strip("<>").lower(),
                action=_field(block, "Action").lower(),
                status=_field(block, "Status"),
                diagnostic=_field(block, "Diagnostic-Code")[:500],
            )
        )
    return found


def _event_id(part: Message) -> str | None:
    """Our delivery's id from the returned message or its headers."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        headers = f"Message-ID: {payload[0].get('Message-ID', '')}"
    else:
        raw = part.get_payload(decode=True)
        headers = raw.decode(errors="replace") if isinstance(raw, bytes) else str(payload)
    found = _MESSAGE_ID.search(headers)
    match = DELIVERY_ID.search(found.group(1)) if found else None
    return match.group(1).lower() if match else None


@dataclass
class Outcome:
    """What landing a report did: the delivery it was about, and a line saying what."""

    delivery: Delivery | None
    note: str


def apply(report: Report) -> Outcome:
    """Act on a report: a mailbox failure for the address a delivery went to fails that
    delivery and bounces the person; anything else is only noted."""
    delivery = None
    if report.event_id is not None:
        delivery = Delivery.objects.filter(event_id=report.event_id, kind="email").first()
    if delivery is None:
        return Outcome(None, "a bounce report about no message we sent")
    about = [r for r in report.recipients if r.address == delivery.to.lower()]
    failed = [r for r in about if r.mailbox_failed]
    if not failed:
        said = ", ".join(f"{r.action or '?'} {r.status}".strip() for r in about) or "nothing"
        return Outcome(delivery, f"a bounce report that bounces nobody ({said})")
    first = failed[0]
    reason = f"bounced after it was sent: {first.status} {first.diagnostic}".strip()
    sending.bounced_later(delivery, reason, LISTENERS)
    return Outcome(delivery, reason)
