"""Bounce reports (RFC 3464) arriving in the reply mailbox: a later failure naming the
recipient's mailbox bounces the person, as a refusal at once would; nothing else does."""

from __future__ import annotations

from typing import Any

import pytest

from closeloop.delivery.models import Attempt, Delivery
from closeloop.loop.inbound import receive
from closeloop.loop.models import Activity, FollowUpCase
from closeloop.surveys.models import Account, Person

from .conftest import ApiClient, drain, open_case
from .loopback import SmtpServer

pytestmark = pytest.mark.django_db


def sent_outreach(api: ApiClient, account: Account) -> tuple[FollowUpCase, Delivery]:
    case = open_case(api, account, 3, "pat@example.com", name="Pat Lee", comment="Slow")
    drain()
    outreach = Delivery.objects.get(case=case, purpose="outreach")
    assert outreach.status == "sent"
    return case, outreach


def report(
    message_id: str,
    recipient: str = "pat@example.com",
    action: str = "failed",
    status: str = "5.1.1",
    returned: str = "text/rfc822-headers",
) -> bytes:
    """A delivery status notification as Postfix writes one."""
    headers = f"From: Alex <alex@example.com>\r\nTo: {recipient}\r\nMessage-ID: {message_id}\r\n"
    returned_part = (
        f"Content-Type: text/rfc822-headers\r\n\r\n{headers}"
        if returned == "text/rfc822-headers"
        else f"Content-Type: message/rfc822\r\n\r\n{headers}Subject: Hi\r\n\r\nbody\r\n"
    )
    return (
        "From: MAILER-DAEMON@mx.example.com (Mail Delivery System)\r\n"
        "To: replies@closeloop.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "Message-ID: <bounce-1@mx.example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.com\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Action: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} <{recipient}>: Recipient address rejected\r\n"
        f"\r\n--B\r\n{returned_part}\r\n--B--\r\n"
    ).encode()


@pytest.mark.parametrize("returned", ["text/rfc822-headers", "message/rfc822"])
def test_it_bounces_the_person_a_later_report_names(
    api: ApiClient, smb: Account, smtp: SmtpServer, returned: str
) -> None:
    case, outreach = sent_outreach(api, smb)
    inbound, _ = receive(report(outreach.message_id, returned=returned), "imap")
    assert inbound.status == "bounce" and inbound.case == case
    outreach.refresh_from_db()
    assert outreach.status == "failed" and outreach.bounced and "5.1.1" in outreach.last_error
    assert Attempt.objects.filter(delivery=outreach, worker="bounce report").exists()
    assert Person.objects.get(email="pat@example.com").bounced_at is not None
    assert case.activities.filter(kind=Activity.Kind.DELIVERY_FAILED).exists()
    # The report is not the customer's reply: the case did not move to a conversation.
    case.refresh_from_db()
    assert case.status == "contacted"


@pytest.mark.parametrize(
    ("action", "status", "recipient"),
    [
        ("delayed", "4.4.7", "pat@example.com"),  # still trying
        ("failed", "5.7.1", "pat@example.com"),  # refused as spam: not the mailbox
        ("failed", "5.1.1", "someone.else@example.com"),  # not the address we wrote to
    ],
)
def test_it_bounces_nobody_for_a_report_about_something_else(
    api: ApiClient, smb: Account, smtp: SmtpServer, action: str, status: str, recipient: str
) -> None:
    _, outreach = sent_outreach(api, smb)
    inbound, _ = receive(report(outreach.message_id, recipient, action, status), "imap")
    assert inbound.status == "bounce" and "bounces nobody" in inbound.reason
    outreach.refresh_from_db()
    assert outreach.status == "sent" and not outreach.bounced
    assert Person.objects.get(email="pat@example.com").bounced_at is None


def test_it_quarantines_a_report_about_no_message_we_sent(
    api: ApiClient, smb: Account, smtp: SmtpServer
) -> None:
    sent_outreach(api, smb)
    forged = report("<delivery-00000000-0000-4000-8000-000000000000@closeloop.example>")
    inbound, _ = receive(forged, "imap")
    assert inbound.status == "quarantined" and "no message we sent" in inbound.reason
    assert Person.objects.get(email="pat@example.com").bounced_at is None


def test_it_sends_with_the_bounce_address_as_envelope_sender(
    api: ApiClient, smb: Account, smtp: SmtpServer, settings: Any
) -> None:
    settings.BOUNCE_ADDRESS = "replies@closeloop.example"
    sent_outreach(api, smb)
    assert set(smtp.inbox.envelope_senders) == {"replies@closeloop.example"}
    assert all("replies@" not in str(m["From"]) for m in smtp.inbox.messages)
