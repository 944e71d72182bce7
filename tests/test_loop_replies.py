"""Customer replies by email: the signed HTTP endpoint, IMAP polling, quoting, quarantine."""

from __future__ import annotations

import imaplib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from closeloop.delivery.models import Delivery
from closeloop.delivery.transports import sign
from closeloop.loop import actions
from closeloop.loop.imap import handle_imap_poll
from closeloop.loop.inbound import strip_reply
from closeloop.loop.models import Activity, FollowUpCase, InboundMessage
from closeloop.surveys.models import Account

from .conftest import ApiClient, open_case
from .loopback import free_port

pytestmark = pytest.mark.django_db

SECRET = "inbound-test-secret"


@pytest.fixture(autouse=True)
def inbound_secret(settings: Any) -> None:
    settings.INBOUND_EMAIL_SECRET = SECRET


@pytest.fixture
def case(api: ApiClient, smb: Account) -> FollowUpCase:
    return open_case(api, smb, 4, name="Pat Lee")


def mime(
    to: str,
    body: str = "The export to CSV fails every Monday.",
    message_id: str = "<r1@mail.example.com>",
    **headers: str,
) -> bytes:
    lines = [
        "From: Pat Lee <pat@example.com>",
        f"To: {to}",
        "Subject: Re: Your 4/10",
        f"Message-ID: {message_id}",
        *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items()),
        "Content-Type: text/plain; charset=utf-8",
        "",
        body,
    ]
    return "\r\n".join(lines).encode()


def post(raw: bytes, secret: str = SECRET, stamp: int | None = None, **extra: Any) -> Any:
    ts = int(time.time()) if stamp is None else stamp
    return Client().post(
        "/inbound/email",
        raw,
        content_type="message/rfc822",
        HTTP_X_CLOSELOOP_TIMESTAMP=str(ts),
        HTTP_X_CLOSELOOP_SIGNATURE="sha256=" + sign(secret, ts, raw),
        **extra,
    )


QUOTED = """Honestly the export is the problem.

We lose an hour every week.

On Mon, 23 Nov 2026 at 10:00, Alex <alex@example.com> wrote:
> Hi Pat,
> What was the main experience behind your score?

--
Pat Lee | Initech"""


def test_it_lands_a_reply_on_its_case_and_tells_the_owner(case: FollowUpCase) -> None:
    r = post(mime(case.reply_address, QUOTED))
    assert r.status_code == 202 and r.json()["status"] == "matched" and r.json()["case"] == case.pk
    case.refresh_from_db()
    assert case.status == "in_conversation" and case.first_touch_at is not None
    assert case.next_escalation_at is None
    reply = case.activities.get(kind=Activity.Kind.REPLY_RECEIVED)
    assert reply.text == "Honestly the export is the problem.\n\nWe lose an hour every week."
    alert = Delivery.objects.filter(case=case, purpose="owner_alert").last()
    assert alert is not None and "lose an hour" in alert.body and alert.to == "alex@example.com"


def test_it_reopens_a_closed_case_when_the_customer_replies(case: FollowUpCase) -> None:
    actions.close(case, "no_response", "no answer in 2 weeks", "closing", None)
    post(mime(case.reply_address))
    case.refresh_from_db()
    assert case.status == "in_conversation" and case.resolution == ""
    assert case.activities.filter(kind=Activity.Kind.REOPENED).exists()


def test_it_matches_a_reply_by_the_message_it_answers(case: FollowUpCase) -> None:
    outreach = Delivery.objects.get(case=case, purpose="outreach")
    raw = mime("support@example.com", In_Reply_To=outreach.message_id)
    assert post(raw).json()["case"] == case.pk


def test_it_quarantines_mail_with_an_unknown_or_forged_token(case: FollowUpCase) -> None:
    r = post(mime("replies+AAAAAAAAAAAAAAAAAAAAAAAA@127.0.0.1"))
    assert r.status_code == 202 and r.json()["status"] == "quarantined"
    held = InboundMessage.objects.get()
    assert "unknown or forged" in held.reason and held.case is None and held.raw
    case.refresh_from_db()
    assert case.status == "open"


def test_it_keeps_malformed_mime_in_quarantine(case: FollowUpCase) -> None:
    r = post(b"\x00\xff not an email at all \xfe")
    assert r.status_code == 202 and r.json()["status"] == "quarantined"
    assert InboundMessage.objects.get().raw == b"\x00\xff not an email at all \xfe"


def test_it_stores_a_message_delivered_twice_once(case: FollowUpCase) -> None:
    raw = mime(case.reply_address)
    assert post(raw).json()["duplicate"] is False
    assert post(raw).json()["duplicate"] is True
    assert InboundMessage.objects.count() == 1
    assert case.activities.filter(kind=Activity.Kind.REPLY_RECEIVED).count() == 1


def test_it_notes_an_out_of_office_without_counting_it_as_a_reply(case: FollowUpCase) -> None:
    post(mime(case.reply_address, "I am away until Monday.", Auto_Submitted="auto-replied"))
    case.refresh_from_db()
    assert case.status == "open" and case.first_touch_at is None
    assert "automatic reply" in case.activities.get(kind=Activity.Kind.REPLY_RECEIVED).text


@pytest.mark.parametrize(
    ("change", "status", "where"),
    [
        ({"secret": "wrong"}, 401, "X-Closeloop-Signature"),
        ({"stamp": int(time.time()) - 3600}, 401, "X-Closeloop-Timestamp"),
    ],
)
def test_it_refuses_unsigned_forged_or_replayed_requests(
    case: FollowUpCase, change: dict[str, Any], status: int, where: str
) -> None:
    r = post(mime(case.reply_address), **change)
    assert r.status_code == status and where in str(r.json())
    assert not InboundMessage.objects.exists()


def test_it_refuses_a_request_without_a_signature_or_body(case: FollowUpCase) -> None:
    r = Client().post("/inbound/email", b"x", content_type="message/rfc822")
    assert r.status_code == 401 and "X-Closeloop-Timestamp" in str(r.json())
    assert post(b"   ").status_code == 400


def test_it_is_off_until_a_secret_is_set(settings: Any) -> None:
    settings.INBOUND_EMAIL_SECRET = ""
    assert post(b"From: a@b.c\r\n\r\nhi").status_code == 503


def test_it_reads_an_html_only_reply_without_the_quoted_block(case: FollowUpCase) -> None:
    raw = (
        f"From: pat@example.com\r\nTo: {case.reply_address}\r\nSubject: Re\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n"
        "<div>Exports fail.<br>Every week.</div>"
        "<blockquote>What was the main experience?</blockquote>"
    ).encode()
    post(raw)
    text = case.activities.get(kind=Activity.Kind.REPLY_RECEIVED).text
    assert text == "Exports fail.\nEvery week."


@pytest.mark.parametrize(
    "quoted",
    [
        "Am 23.11.2026 um 10:00 schrieb Alex <alex@example.com>:\n> Hallo",
        "-----Original Message-----\nFrom: Alex\nSent: Monday",
        "________________________________\nFrom: Alex <alex@example.com>\nSent: Monday",
        "On Mon, 23 Nov 2026 at 10:00, Alex Morgan <alex@example.com>\nwrote:\n> Hi",
        "Sent from my iPhone",
    ],
)
def test_it_strips_quoted_history_from_common_mail_clients(quoted: str) -> None:
    assert strip_reply(f"Exports fail.\n\n{quoted}") == "Exports fail."


@pytest.fixture
def imap_server(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(  # noqa: S603 - our own venv's pymap
        [
            str(Path(sys.executable).with_name("pymap")),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-tls",
            "dict",
            "--demo-data",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            imaplib.IMAP4("127.0.0.1", port).logout()
            break
        except OSError:
            assert time.monotonic() < deadline, "pymap did not start"
            time.sleep(0.1)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_it_polls_an_imap_mailbox_and_flags_what_it_read(
    case: FollowUpCase, imap_server: int, settings: Any
) -> None:
    client = imaplib.IMAP4("127.0.0.1", imap_server)
    client.login("demouser", "demopass")
    client.append("INBOX", None, imaplib.Time2Internaldate(time.time()), mime(case.reply_address))
    client.logout()
    settings.IMAP_URL = f"imap://demouser:demopass@127.0.0.1:{imap_server}/INBOX"
    settings.IMAP_POLL_SECONDS = 0
    assert handle_imap_poll() is True
    case.refresh_from_db()
    assert case.status == "in_conversation"
    assert InboundMessage.objects.filter(via="imap", case=case).count() == 1
    # The demo mailbox's other messages are not replies: kept in quarantine, not dropped.
    assert InboundMessage.objects.filter(status="quarantined").count() >= 1
    assert handle_imap_poll() is False


def test_it_survives_an_unreachable_imap_server(settings: Any) -> None:
    settings.IMAP_URL = f"imap://u:p@127.0.0.1:{free_port()}/INBOX"
    settings.IMAP_POLL_SECONDS = 0
    assert handle_imap_poll() is False


def test_it_shows_a_reply_from_another_address_as_such_and_leaves_the_case_as_it_is(
    case: FollowUpCase,
) -> None:
    actions.close(case, "no_response", "no answer in 2 weeks", "closing", None)
    stranger = mime(case.reply_address).replace(
        b"From: Pat Lee <pat@example.com>", b"From: Someone <someone@elsewhere.example>"
    )
    r = post(stranger)
    assert r.status_code == 202 and r.json()["case"] == case.pk
    case.refresh_from_db()
    assert case.status == "closed" and case.resolution == "no_response"  # not reopened
    assert not case.activities.filter(kind=Activity.Kind.REOPENED).exists()
    reply = case.activities.get(kind=Activity.Kind.REPLY_RECEIVED)
    assert "someone@elsewhere.example" in reply.text and "not the customer" in reply.text
    # The owner still hears of it, marked as coming from someone else.
    alert = Delivery.objects.filter(case=case, purpose="owner_alert").last()
    assert alert is not None and "someone@elsewhere.example" in alert.body
    # The customer's own reply (any case of letters) still reopens it.
    post(
        mime(case.reply_address, message_id="<r2@mail.example.com>").replace(
            b"pat@example.com", b"Pat@Example.com"
        )
    )
    case.refresh_from_db()
    assert case.status == "in_conversation"


def test_it_stores_a_reply_holding_a_nul_and_reads_the_next_ones(
    case: FollowUpCase, imap_server: int, settings: Any
) -> None:
    client = imaplib.IMAP4("127.0.0.1", imap_server)
    client.login("demouser", "demopass")
    at = imaplib.Time2Internaldate(time.time())
    # A body with a NUL (PostgreSQL refuses it in text), an oversized one, then a plain reply.
    nul = mime(case.reply_address, "Exports fail\x00 again", message_id="<nul@mail.example.com>")
    big = mime(case.reply_address, "x" * 6000, message_id="<big@mail.example.com>")
    fine = mime(case.reply_address, "And slowly.", message_id="<ok@mail.example.com>")
    for raw in (nul, big, fine):
        client.append("INBOX", None, at, raw)
    client.logout()
    settings.IMAP_URL = f"imap://demouser:demopass@127.0.0.1:{imap_server}/INBOX"
    settings.IMAP_POLL_SECONDS = 0
    settings.INBOUND_EMAIL_MAX_BYTES = 4000
    while handle_imap_poll():
        pass
    texts = [a.text for a in case.activities.filter(kind=Activity.Kind.REPLY_RECEIVED)]
    assert "Exports fail\ufffd again" in texts and "And slowly." in texts
    large = InboundMessage.objects.get(status="quarantined", reason__startswith="larger than")
    assert b"big@mail.example.com" in bytes(large.raw) and len(bytes(large.raw)) < 4000


def test_it_refuses_an_unsigned_request_before_reading_its_body(settings: Any) -> None:
    settings.INBOUND_EMAIL_MAX_BYTES = 100
    r = Client().post("/inbound/email", b"x" * 50, content_type="message/rfc822")
    assert r.status_code == 401
    short = Client().post(
        "/inbound/email",
        b"x" * 50,
        content_type="message/rfc822",
        HTTP_X_CLOSELOOP_TIMESTAMP=str(int(time.time())),
        HTTP_X_CLOSELOOP_SIGNATURE="sha256=short",
    )
    assert short.status_code == 401 and short.json()["detail"][0]["loc"][-1] == (
        "X-Closeloop-Signature"
    )
