"""SMTP failures are told apart by stage and reply: only a refused recipient bounces a
person; our own set-up's faults (login, sender, an unreachable server) hold email back
without using up its attempts, tell the admins, and clear when email goes through."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from django.test import Client
from django.utils import timezone

from closeloop.delivery.models import Attempt, Delivery, Outage
from closeloop.delivery.sending import handle_email_batch
from closeloop.delivery.transports import kept_mailer
from closeloop.loop.models import FollowUpCase, Notification
from closeloop.loop.outcomes import LISTENERS
from closeloop.surveys.models import Account, Person
from closeloop.team.models import User

from .conftest import ApiClient, drain, open_case
from .loopback import Inbox, SmtpServer, free_port

pytestmark = pytest.mark.django_db


def detractor(api: ApiClient, account: Account, email: str = "pat@example.com") -> FollowUpCase:
    return open_case(api, account, 3, email, name="Pat Lee", comment="Exports time out")


def later(seconds: float) -> time_machine.travel:
    return time_machine.travel(timezone.now() + timedelta(seconds=seconds), tick=False)


@pytest.fixture
def login_smtp(settings: Any) -> Iterator[tuple[SmtpServer, dict[str, str]]]:
    """A live SMTP server that wants a login; the test may change the password it takes."""
    inbox = Inbox()
    accepted = {"password": "right-password"}

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and data.password.decode() == accepted["password"]
        return AuthResult(success=ok, handled=False)

    port = free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=authenticate, auth_require_tls=False
    )
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "closeloop", "right-password"
    settings.EMAIL_TIMEOUT = 5
    kept_mailer().close()
    try:
        yield SmtpServer(inbox, port, controller), accepted
    finally:
        kept_mailer().close()
        controller.stop()


def test_it_holds_email_without_bouncing_anyone_when_the_server_refuses_our_login(
    api: ApiClient,
    smb: Account,
    admin_user: User,
    login_smtp: tuple[SmtpServer, dict[str, str]],
    settings: Any,
) -> None:
    server, accepted = login_smtp
    accepted["password"] = "rotated"  # the provider's password changed under us
    for n in range(3):
        detractor(api, smb, email=f"pat{n}@example.com")
    drain()
    emails = Delivery.objects.filter(kind="email")
    assert emails.count() == 6
    assert all(d.status == "pending" and d.attempts == 0 for d in emails)
    assert all("535" in d.last_error for d in emails), [d.last_error for d in emails]
    assert not Person.objects.filter(bounced_at__isnull=False).exists()
    (outage,) = Outage.objects.filter(resolved_at=None)
    assert outage.scope == "smtp" and "535" in outage.error and outage.held == 6
    (notice,) = Notification.objects.filter(user=admin_user)
    assert "535" in notice.text
    # While the outage waits, the queue is not touched: no new attempts, no new sessions.
    tried = Attempt.objects.count()
    assert handle_email_batch(LISTENERS) is False and Attempt.objects.count() == tried
    # The admin fixes the password; the next try sends everything once.
    accepted["password"] = "right-password"
    with later(31):
        drain()
    emails = Delivery.objects.filter(kind="email")
    assert all(d.status == "sent" and d.attempts == 1 for d in emails)
    assert len(server.inbox.messages) == 6
    outage.refresh_from_db()
    assert outage.resolved_at is not None
    assert Notification.objects.filter(user=admin_user, text__startswith="Email goes out").exists()


def test_it_holds_only_the_refused_senders_email(
    api: ApiClient, smb: Account, agent: User, smtp: SmtpServer
) -> None:
    # An owner address the provider has not verified (as SES or Office 365 answer).
    smtp.inbox.senders_refused[agent.email] = "553 5.7.1 Sender address rejected: not owned"
    case = detractor(api, smb)
    drain()
    outreach = Delivery.objects.get(case=case, purpose="outreach")
    assert outreach.status == "pending" and outreach.attempts == 0 and not outreach.bounced
    assert Delivery.objects.get(case=case, purpose="owner_alert").status == "sent"
    assert Person.objects.get(email="pat@example.com").bounced_at is None
    (outage,) = Outage.objects.filter(resolved_at=None)
    assert outage.scope == f"sender:{agent.email}"
    del smtp.inbox.senders_refused[agent.email]
    with later(31):
        drain()
    outreach.refresh_from_db()
    assert outreach.status == "sent"
    assert Outage.objects.filter(resolved_at=None).count() == 0


@pytest.mark.parametrize(
    ("stage", "reply"),
    [
        ("rcpt", "554 5.7.1 <pat@example.com>: Relay access denied"),
        ("data", "554 Message rejected: Email address is not verified."),
        ("mail", "530 5.7.0 Authentication required"),
    ],
)
def test_it_never_bounces_a_customer_for_our_own_set_up(
    api: ApiClient, smb: Account, smtp: SmtpServer, stage: str, reply: str
) -> None:
    smtp.inbox.answer[stage] = reply
    case = detractor(api, smb)
    drain()
    outreach = Delivery.objects.get(case=case, purpose="outreach")
    assert outreach.status == "pending" and outreach.attempts == 0
    assert Person.objects.get(email="pat@example.com").bounced_at is None
    assert Outage.objects.filter(resolved_at=None).exists()


def test_it_fails_a_message_refused_for_its_content_without_bouncing_the_person(
    api: ApiClient, smb: Account, smtp: SmtpServer
) -> None:
    smtp.inbox.answer["data"] = "554 5.7.1 Message rejected as spam"
    case = detractor(api, smb)
    drain()
    outreach = Delivery.objects.get(case=case, purpose="outreach")
    assert outreach.status == "failed" and outreach.permanent_failure and not outreach.bounced
    assert Person.objects.get(email="pat@example.com").bounced_at is None
    assert not Outage.objects.exists()


def test_it_bounces_a_mailbox_refused_after_data(
    api: ApiClient, smb: Account, smtp: SmtpServer
) -> None:
    smtp.inbox.answer["data"] = "550 5.1.1 The email account that you tried to reach does not exist"
    case = detractor(api, smb)
    drain()
    outreach = Delivery.objects.get(case=case, purpose="outreach")
    assert outreach.status == "failed" and outreach.bounced
    assert Person.objects.get(email="pat@example.com").bounced_at is not None


@pytest.mark.parametrize("purpose", ["survey", "reminder", "outreach", "fix_shipped"])
def test_it_marks_a_bounce_alike_for_every_kind_of_customer_email(
    smtp: SmtpServer, purpose: str
) -> None:
    Person.objects.create(email="Gone@Example.com")
    smtp.inbox.refuse.add("gone@example.com")
    refused = Delivery.objects.create(kind="email", purpose=purpose, to="gone@example.com")
    queued_later = Delivery.objects.create(
        kind="email",
        purpose="survey",
        to="gone@example.com",
        next_attempt_at=timezone.now() + timedelta(days=1),
    )
    drain()
    refused.refresh_from_db()
    assert refused.status == "failed" and refused.bounced
    assert Person.objects.get(email="Gone@Example.com").bounced_at is not None
    queued_later.refresh_from_db()
    assert queued_later.status == "failed" and "bounced" in queued_later.last_error


def test_it_never_marks_our_own_users_bounced_for_an_alert(smtp: SmtpServer) -> None:
    Person.objects.create(email="owner@example.com")
    smtp.inbox.refuse.add("owner@example.com")
    alert = Delivery.objects.create(kind="email", purpose="owner_alert", to="owner@example.com")
    drain()
    alert.refresh_from_db()
    assert alert.status == "failed" and not alert.bounced
    assert Person.objects.get(email="owner@example.com").bounced_at is None


def test_it_holds_email_while_the_server_is_down_and_sends_it_all_once_back(
    api: ApiClient, smb: Account, smtp: SmtpServer, settings: Any
) -> None:
    settings.EMAIL_PORT = free_port()  # nothing listens there
    detractor(api, smb)
    now = timezone.now()
    for _ in range(12):  # longer than eight retries would have lasted
        now += timedelta(hours=1)
        with time_machine.travel(now, tick=False):
            drain()
    emails = Delivery.objects.filter(kind="email")
    assert all(d.status == "pending" and d.attempts == 0 for d in emails)
    (outage,) = Outage.objects.all()
    assert outage.tries == 12 and outage.retry_at - outage.last_seen_at == timedelta(minutes=15)
    settings.EMAIL_PORT = smtp.port
    with time_machine.travel(now + timedelta(minutes=16), tick=False):
        drain()
    emails = Delivery.objects.filter(kind="email")
    assert all(d.status == "sent" and d.attempts == 1 for d in emails)
    assert len(smtp.inbox.messages) == 2


def test_it_shows_managers_what_holds_email_back_and_not_agents(
    api: ApiClient, smb: Account, manager: User, agent: User, smtp: SmtpServer
) -> None:
    smtp.inbox.answer["mail"] = "535 5.7.8 Authentication credentials invalid"
    detractor(api, smb)
    drain()
    client = Client()
    client.force_login(manager)
    page = client.get("/").content.decode()
    assert "Email is held back" in page and "535" in page
    quarantine = client.get("/settings/quarantine/").content.decode()
    assert "The mail server cannot be used" in quarantine and "next try" in quarantine
    client.force_login(agent)
    assert "Email is held back" not in client.get("/").content.decode()
