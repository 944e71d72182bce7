"""How a delivery leaves the building: SMTP through Django's mail backend, or an HTTP POST.

Each transport returns normally on success or raises TransportError, which
says whether trying again can help (`permanent`), so the caller never guesses.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import http.client
import json
import re
import secrets
import smtplib
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr

from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import sanitize_address

from . import outbound
from .models import Delivery

USER_AGENT = "closeloop-webhooks/1"


class TransportError(Exception):
    """A send failed, saying what that means for the delivery and for the recipient.

    - `permanent`: retrying this message cannot help (a refused address, an HTTP 4xx).
    - `bounce`: the recipient's address itself is refused for good; the person bounced.
      Only a refusal of RCPT TO, or a refusal after DATA that names the mailbox, is one.
    - `setup`: our own mail set-up is at fault, not the message or the recipient: the
      server cannot be reached or refuses our login ("smtp"), or it refuses the sender
      ("sender:<address>"). Such a delivery waits, without using up its attempts, until
      the set-up works again (an Outage, shown to admins); it never bounces anyone.
    """

    def __init__(
        self,
        message: str,
        permanent: bool = False,
        retry_after: float | None = None,
        bounce: bool = False,
        setup: str = "",
    ):
        super().__init__(message)
        self.permanent = permanent and not setup
        self.retry_after = retry_after
        self.bounce = bounce
        self.setup = setup


# --- email ------------------------------------------------------------------------------


def _headers(delivery: Delivery) -> dict[str, str]:
    """The headers every email delivery carries besides From, To and Subject."""
    headers = {
        **delivery.headers,
        "Message-ID": delivery.message_id,
        "Date": formatdate(localtime=False),
    }
    if delivery.purpose not in Delivery.TO_CUSTOMERS:
        # Alerts to our own users are machine mail; auto-responders should stay quiet.
        headers["Auto-Submitted"] = "auto-generated"
    return headers


def build_email(delivery: Delivery, connection: BaseEmailBackend | None = None) -> EmailMessage:
    """The message for an email delivery, with a stable Message-ID and the case's Reply-To,
    for mail backends other than SMTP (the console in development).

    A delivery with `html` becomes multipart/alternative (text first, as RFC 2046 asks).
    """
    # Without an alternative this is a plain single-part message, as EmailMessage would be.
    message = EmailMultiAlternatives(
        subject=delivery.subject,
        body=delivery.body,
        from_email=delivery.from_email or None,
        to=[delivery.to],
        reply_to=[delivery.reply_to] if delivery.reply_to else None,
        headers=_headers(delivery),
        connection=connection,
    )
    if delivery.html:
        message.attach_alternative(delivery.html, "text/html")
    return message


# --- the message as bytes, for SMTP ----------------------------------------------------------
# The standard library's email package spends milliseconds per message folding headers and
# choosing boundaries; a survey wave sends thousands. These few rules are all our mail needs.


def _header(name: str, value: str) -> str:
    if "\n" in value or "\r" in value:
        # Django refuses these too (BadHeaderError): a line break would inject headers.
        raise TransportError(f"header {name} holds a line break", permanent=True)
    if value.isascii() and len(name) + len(value) < 996:
        return value
    return Header(value, "utf-8", header_name=name).encode(linesep="\r\n")


_BARE_ADDRESS = re.compile(r"[^\s<>\"(),;:@\\\[\]]+@[A-Za-z0-9.\-]+")


def _address(name: str, value: str) -> str:
    if _BARE_ADDRESS.fullmatch(value):
        return value  # the common case, name@example.com, needs no parsing
    if "\n" in value or "\r" in value:
        raise TransportError(f"header {name} holds a line break", permanent=True)
    if value.isascii():
        return formataddr(parseaddr(value))
    return sanitize_address(value, "utf-8")


def _part(content_type: str, text: str) -> list[str]:
    """Headers and body of one text part: 7bit when it is short-lined ASCII, else
    quoted-printable (which any server takes, with or without 8BITMIME)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.isascii() and max(map(len, text.split("\n"))) <= 998:
        encoding, body = "7bit", text
    else:
        encoding = "quoted-printable"
        body = binascii.b2a_qp(text.encode(), istext=True).decode("ascii")
    return [
        f'Content-Type: {content_type}; charset="utf-8"',
        f"Content-Transfer-Encoding: {encoding}",
        "",
        body.replace("\n", "\r\n"),
    ]


def mime_bytes(delivery: Delivery, sender: str, to: str) -> bytes:
    """The delivery as an RFC 5322 message from and to the (header-safe) addresses given."""
    lines = [f"From: {sender}", f"To: {to}"]
    if delivery.reply_to:
        lines.append(f"Reply-To: {_address('Reply-To', delivery.reply_to)}")
    lines.append(f"Subject: {_header('Subject', delivery.subject)}")
    lines += [f"{name}: {_header(name, value)}" for name, value in _headers(delivery).items()]
    lines.append("MIME-Version: 1.0")
    if not delivery.html:
        lines += _part("text/plain", delivery.body)
    else:
        boundary = f"=_closeloop_{secrets.token_hex(16)}"
        lines += [f'Content-Type: multipart/alternative; boundary="{boundary}"', ""]
        for content_type, text in (("text/plain", delivery.body), ("text/html", delivery.html)):
            lines += [f"--{boundary}", *_part(content_type, text)]
        lines.append(f"--{boundary}--")
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _transmit(backend: BaseEmailBackend, delivery: Delivery) -> None:
    smtp = getattr(backend, "connection", None)
    if isinstance(smtp, smtplib.SMTP):
        sender = _address("From", delivery.from_email or settings.DEFAULT_FROM_EMAIL)
        to = _address("To", delivery.to)
        envelope = settings.BOUNCE_ADDRESS or parseaddr(sender)[1]
        smtp.sendmail(envelope, [to], mime_bytes(delivery, sender, to))
    else:
        backend.send_messages([build_email(delivery, backend)])


SERVER = "smtp"  # the outage scope of the mail server itself (connection, login)
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
# Replies to RCPT TO that refuse us, not the recipient: relaying denied, log in first.
_REFUSES_US = re.compile(
    r"relay|rcpthosts|authenticat|log ?in first|not permitted to send|starttls", re.I
)
# Replies after DATA that refuse the sender's identity (SES's unverified address,
# Office 365's SendAsDenied), not the message or the recipient.
_REFUSES_SENDER = re.compile(
    r"not verified|send ?as|sendasdenied|sender address|not (allowed|authorized|permitted)"
    r" to send|5\.7\.60\b|5\.2\.252\b",
    re.I,
)


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def names_the_mailbox(text: str) -> bool:
    """An enhanced status (RFC 3463) about the address or the mailbox: 5.1.x (no such
    user, no such domain), 5.2.1 (disabled). Without one, a plain 550/551/553 refusal of
    a single-recipient message is taken as the mailbox's."""
    status = _STATUS.search(text)
    if status is None:
        return True
    subject, detail = status.group(2), status.group(3)
    return subject == "1" or (subject == "2" and detail == "1")


def sender_scope(delivery: Delivery) -> str:
    """The outage scope of the address an email goes out from: what a server refusing
    the sender holds back, and what an email going through clears."""
    return "sender:" + parseaddr(delivery.from_email or settings.DEFAULT_FROM_EMAIL)[1].lower()


def _smtp_error(exc: Exception, sender: str = "") -> TransportError:
    """Classify an SMTP failure by the stage it happened at and the server's reply;
    `sender` is the sending address's outage scope (`sender_scope`).

    The address is only blamed (a bounce) when the server refused the recipient; a
    refused login, a refused sender or an unreachable server is our set-up's fault.
    """
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = [(code, _text(m)) for code, m in exc.recipients.values()]
        detail = "; ".join(f"{r}: {c} {_text(m)}" for r, (c, m) in exc.recipients.items())
        message = f"recipient refused: {detail}"
        if any(code == 530 or _REFUSES_US.search(text) for code, text in replies):
            return TransportError(f"{message} (the server will not relay for us)", setup=SERVER)
        refused = all(code >= 500 for code, _ in replies)
        return TransportError(
            message,
            permanent=refused,
            bounce=refused and all(names_the_mailbox(text) for _, text in replies),
        )
    if isinstance(exc, smtplib.SMTPSenderRefused):
        text = _text(exc.smtp_error)
        message = f"sender {exc.sender!r} refused: {exc.smtp_code} {text}"
        if exc.smtp_code < 500:
            return TransportError(message)
        scope = SERVER if exc.smtp_code == 530 or _REFUSES_US.search(text) else ""
        return TransportError(message, setup=scope or sender)
    if isinstance(exc, (smtplib.SMTPAuthenticationError, smtplib.SMTPHeloError)):
        message = f"the mail server refused our login: {exc.smtp_code} {_text(exc.smtp_error)}"
        return TransportError(message, setup=SERVER)
    if isinstance(exc, smtplib.SMTPDataError):
        text = _text(exc.smtp_error)
        message = f"message refused: {exc.smtp_code} {text}"
        if exc.smtp_code < 500:
            return TransportError(message)
        if _REFUSES_SENDER.search(text):
            return TransportError(message, setup=sender)
        status = _STATUS.search(text)
        return TransportError(
            message, permanent=True, bounce=status is not None and names_the_mailbox(text)
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return TransportError(f"SMTP {exc.smtp_code} {_text(exc.smtp_error)}")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return TransportError(f"the mail server lacks what we need: {exc}", setup=SERVER)
    return TransportError(f"SMTP server unreachable: {exc}", setup=SERVER)


class Mailer:
    """An SMTP session kept across batches; reconnects after the server drops it.

    A session idle for longer than KEEP_IDLE, or opened under other mail
    settings, is closed before use. A kept session the server has meanwhile
    dropped is replaced once, at once, without failing the message. If the
    server cannot be reached at all, the rest of the batch fails at once with
    the same (temporary) error instead of waiting out a timeout per message.
    """

    KEEP_IDLE = 30.0

    def __init__(self) -> None:
        self.connection: BaseEmailBackend | None = None
        self.unreachable: TransportError | None = None
        self.settings_key: tuple[object, ...] = ()
        self.last_used = 0.0

    def start_batch(self) -> None:
        """Forget the last batch's outage; drop a session too old or for other settings."""
        self.unreachable = None
        if self.connection is not None and (
            time.monotonic() - self.last_used > self.KEEP_IDLE
            or self.settings_key != _mail_settings()
        ):
            self.close()

    def send(self, delivery: Delivery) -> None:
        """Send one email delivery or raise TransportError."""
        sender = sender_scope(delivery)
        for again in (True, False):
            if self.unreachable is not None:
                # The server could not be reached for this batch; retry the rest later.
                raise self.unreachable
            kept = self.connection is not None
            connection = self.connection or self._open()
            try:
                _transmit(connection, delivery)
            except (OSError, smtplib.SMTPException) as exc:
                error = _smtp_error(exc, sender)
                if error.permanent or error.setup.startswith("sender:"):
                    raise error from exc  # the session itself is fine
                # The session may be broken; the next message starts a fresh one.
                self.close()
                if again and kept and isinstance(exc, smtplib.SMTPServerDisconnected):
                    continue  # a kept session the server had closed: once more, new session
                if error.setup == SERVER:
                    self.unreachable = error
                raise error from exc
            self.last_used = time.monotonic()
            return

    def _open(self) -> BaseEmailBackend:
        connection: BaseEmailBackend = get_connection(fail_silently=False)
        try:
            connection.open()
        except (OSError, smtplib.SMTPException) as exc:
            self.unreachable = _smtp_error(exc)
            raise self.unreachable from exc
        self.connection = connection
        self.settings_key = _mail_settings()
        return connection

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except (OSError, smtplib.SMTPException):
                pass
            self.connection = None


def _mail_settings() -> tuple[object, ...]:
    return (
        settings.EMAIL_BACKEND,
        getattr(settings, "EMAIL_HOST", ""),
        getattr(settings, "EMAIL_PORT", 0),
        getattr(settings, "EMAIL_HOST_USER", ""),
        getattr(settings, "EMAIL_USE_TLS", False),
        getattr(settings, "EMAIL_USE_SSL", False),
    )


_kept = threading.local()


def kept_mailer() -> Mailer:
    """This thread's SMTP session, kept between batches (see Mailer)."""
    mailer: Mailer | None = getattr(_kept, "mailer", None)
    if mailer is None:
        mailer = _kept.mailer = Mailer()
    mailer.start_batch()
    return mailer


# --- HTTP (Slack and webhooks) ---------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects, outbound.GuardedHTTP, outbound.GuardedHTTPS)


def _where(url: str) -> str:
    """The URL as errors may show it: scheme and host only. A Slack or webhook URL's path
    is often its secret, and errors land on case timelines that agents read."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}" + (
        f":{parts.port}" if _port_or_none(parts) else ""
    )


def _port_or_none(parts: urllib.parse.SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None


def post_json(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST a JSON body; return the status, or raise TransportError saying if a retry helps.

    The whole call (connecting, sending, the answer) must finish within
    WEBHOOK_TIMEOUT_SECONDS, and goes only where outbound.py allows. A receiver's
    answer is never shown (only its status): it may come from a service that the
    person reading the case could not otherwise see.
    """
    where = _where(url)
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise TransportError(f"not an http(s) URL: {where}", permanent=True)
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
    )
    seconds = settings.WEBHOOK_TIMEOUT_SECONDS
    with outbound.deadline(seconds) as call:
        try:
            with _opener.open(request, timeout=seconds) as reply:
                reply.read(64 * 1024)  # the answer is not used, but it is waited for
                status: int = reply.status
                return status
        except urllib.error.HTTPError as exc:
            message = f"HTTP {exc.code} from {where}"
            if exc.code == 429 or exc.code == 408:
                return _raise_retry(message, exc.headers.get("Retry-After"))
            if 300 <= exc.code < 400:
                raise TransportError(
                    f"{message} (redirects are not followed)", permanent=True
                ) from exc
            raise TransportError(message, permanent=400 <= exc.code < 500) from exc
        except (TimeoutError, urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, outbound.ForbiddenDestination):
                raise TransportError(f"refused to call {where}: {reason}", permanent=True) from exc
            if call.expired:
                raise TransportError(f"{where} gave no full answer within {seconds:g} s") from exc
            if isinstance(exc, http.client.InvalidURL):
                raise TransportError(f"not a valid URL: {where}", permanent=True) from exc
            if isinstance(exc, http.client.HTTPException):
                # The receiver answered something that is not HTTP (a bad status line, an
                # endless header): it may be fixed later, so retried with backoff.
                raise TransportError(
                    f"{where} answered with no valid HTTP: {type(exc).__name__}"
                ) from exc
            raise TransportError(f"could not reach {where}: {reason}") from exc
        except (UnicodeError, ValueError) as exc:
            raise TransportError(
                f"the URL of {where} cannot be sent: {exc}", permanent=True
            ) from exc


def _raise_retry(message: str, retry_after: str | None) -> int:
    seconds: float | None = None
    if retry_after and retry_after.strip().isdigit():
        seconds = float(retry_after.strip())
    raise TransportError(message, retry_after=seconds)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>", hex; receivers recompute and compare."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return mac.hexdigest()


def send_slack(delivery: Delivery) -> None:
    post_json(delivery.to, json.dumps(delivery.payload).encode(), {})


def send_webhook(delivery: Delivery, secret: str) -> None:
    """A signed webhook: the event id lets the receiver drop duplicates."""
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    channel = delivery.channel
    if channel is not None and channel.format == channel.Format.DELIGHTED:
        # As Delighted signed them: HMAC-SHA256 of the raw body with the channel's secret.
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        post_json(delivery.to, body, {"X-Delighted-Webhook-Signature": f"sha256={digest}"})
        return
    timestamp = int(time.time())
    post_json(
        delivery.to,
        body,
        {
            "X-Closeloop-Event": delivery.event,
            "X-Closeloop-Event-Id": str(delivery.event_id),
            "X-Closeloop-Timestamp": str(timestamp),
            "X-Closeloop-Signature": "sha256=" + sign(secret, timestamp, body),
        },
    )


def send_http(delivery: Delivery) -> None:
    """Post a Slack message or a signed webhook (with its channel's current secret)."""
    if delivery.kind == Delivery.Kind.SLACK:
        send_slack(delivery)
    elif delivery.channel is None:
        # Without its channel there is no secret to sign with; an unsigned call is worthless.
        raise TransportError("its webhook channel was deleted", permanent=True)
    else:
        send_webhook(delivery, delivery.channel.secret)
