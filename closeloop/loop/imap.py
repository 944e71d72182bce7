"""The IMAP poller: a worker step that reads unseen mail from a mailbox and lands it.

Point IMAP_URL (imaps://user:password@host:993/INBOX) at the mailbox that
receives REPLY_ADDRESS. Each message is stored (and matched) before it is
flagged \\Seen, so a crash in between means it is read again next time and
deduplicated by its Message-ID, never lost.
"""

from __future__ import annotations

import imaplib
import logging
import re
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from django.conf import settings
from imap_tools import AND, BaseMailBox, MailBox, MailBoxUnencrypted, MailMessageFlags
from imap_tools.errors import MailboxLoginError

from .inbound import quarantine, receive

log = logging.getLogger("closeloop.imap")

BATCH = 50


@dataclass(frozen=True)
class ImapTarget:
    host: str
    port: int
    user: str
    password: str
    folder: str
    tls: bool

    @classmethod
    def parse(cls, url: str) -> ImapTarget:
        """imap://… (plain, for a local server) or imaps://… (TLS)."""
        parts = urlsplit(url)
        if parts.scheme not in ("imap", "imaps"):
            raise ValueError(f"IMAP_URL: scheme must be imap or imaps, not {parts.scheme!r}")
        tls = parts.scheme == "imaps"
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or (993 if tls else 143),
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            folder=unquote(parts.path.lstrip("/")) or "INBOX",
            tls=tls,
        )

    def connect(self) -> BaseMailBox:
        box: BaseMailBox = (
            MailBox(self.host, self.port, timeout=30)
            if self.tls
            else MailBoxUnencrypted(self.host, self.port, timeout=30)
        )
        return box.login(self.user, self.password, initial_folder=self.folder)


class Poller:
    """Polls at most every IMAP_POLL_SECONDS; returns True when it landed something."""

    def __init__(self) -> None:
        self.last_poll = 0.0

    def __call__(self) -> bool:
        if not settings.IMAP_URL:
            return False
        if time.monotonic() - self.last_poll < settings.IMAP_POLL_SECONDS:
            return False
        self.last_poll = time.monotonic()
        try:
            return poll(ImapTarget.parse(settings.IMAP_URL)) > 0
        except (OSError, imaplib.IMAP4.error, MailboxLoginError) as exc:
            log.warning("IMAP poll failed, will retry: %s", exc)
            return False


def poll(target: ImapTarget) -> int:
    """Land up to BATCH unseen messages; returns how many were read."""
    count = 0
    with target.connect() as box:
        for message in box.fetch(AND(seen=False), mark_seen=False, limit=BATCH, bulk=True):
            raw = message.obj.as_bytes()
            if len(raw) > settings.INBOUND_EMAIL_MAX_BYTES:
                # The same limit as POST /inbound/email: kept in quarantine, headers only.
                head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0][:65536]
                quarantine(head, "imap", f"larger than {settings.INBOUND_EMAIL_MAX_BYTES} bytes")
            else:
                receive(raw, "imap")
            if message.uid:
                box.flag(message.uid, MailMessageFlags.SEEN, True)
            count += 1
    return count


handle_imap_poll = Poller()
