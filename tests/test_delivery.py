"""Deliveries: email through a real SMTP server, Slack and webhooks to a real HTTP receiver."""

from __future__ import annotations

import hashlib
import hmac
import socket
import threading
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from aiosmtpd.controller import Controller
from django.utils import timezone

from closeloop.delivery.models import MAX_ATTEMPTS, Attempt, Channel, Delivery
from closeloop.delivery.sending import SMTP_SESSIONS
from closeloop.delivery.transports import kept_mailer
from closeloop.loop.models import Activity, FollowUpCase
from closeloop.loop.outcomes import LISTENERS
from closeloop.surveys.models import Account, Person
from closeloop.team.models import User

from .conftest import ApiClient, drain, open_case
from .loopback import Receiver, SmtpServer

pytestmark = pytest.mark.django_db


def detractor(
    api: ApiClient, account: Account, score: int = 4, email: str = "pat@example.com"
) -> FollowUpCase:
    return open_case(api, account, score, email, name="Pat Lee", comment="Exports time out")


def test_it_sends_the_first_outreach_from_the_owner_and_marks_the_case_contacted(
    api: ApiClient, smb: Account, agent: User, smtp: SmtpServer
) -> None:
    case = detractor(api, smb)
    drain()
    (outreach,) = smtp.inbox.to("pat@example.com")
    assert outreach["From"] == f"Alex <{agent.email}>"
    assert outreach["Reply-To"] == case.reply_address
    assert outreach["Message-ID"].startswith("<delivery-")
    assert "4 out of 10" in outreach.get_content()
    (alert,) = smtp.inbox.to(agent.email)
    assert "Exports time out" in alert.get_content() and f"/cases/{case.pk}/" in alert.get_content()
    case.refresh_from_db()
    assert case.status == "contacted" and case.first_touch_at is not None
    assert case.next_escalation_at is None
    sent = case.activities.get(kind=Activity.Kind.EMAIL_SENT)
    assert "4 out of 10" in sent.text


def test_it_stops_at_once_when_the_server_refuses_the_recipient(
    api: ApiClient, smb: Account, smtp: SmtpServer
) -> None:
    smtp.inbox.refuse.add("pat@example.com")
    case = detractor(api, smb)
    drain()
    delivery = Delivery.objects.get(case=case, purpose="outreach")
    assert delivery.status == "failed" and delivery.permanent_failure and delivery.attempts == 1
    assert "550" in delivery.last_error
    assert Person.objects.get(email="pat@example.com").bounced_at is not None
    failed = case.activities.get(kind=Activity.Kind.DELIVERY_FAILED)
    assert "550" in failed.text
    case.refresh_from_db()
    assert case.status == "open" and case.first_touch_at is None


def test_it_retries_with_backoff_after_a_temporary_refusal_and_sends_once(
    api: ApiClient, smb: Account, smtp: SmtpServer
) -> None:
    smtp.inbox.answer["rcpt"] = "451 4.2.0 mailbox busy, try again later"
    case = detractor(api, smb)
    drain()
    delivery = Delivery.objects.get(case=case, purpose="outreach")
    assert delivery.status == "pending" and delivery.attempts == 1
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=25)
    assert "451" in Attempt.objects.get(delivery=delivery).error
    del smtp.inbox.answer["rcpt"]
    with time_machine.travel(timezone.now() + timedelta(seconds=31), tick=False):
        drain()
    delivery.refresh_from_db()
    assert delivery.status == "sent" and delivery.attempts == 2
    assert len(smtp.inbox.to("pat@example.com")) == 1


def test_it_gives_up_after_the_last_attempt_and_says_so_on_the_case(
    api: ApiClient, smb: Account, smtp: SmtpServer
) -> None:
    smtp.inbox.answer["rcpt"] = "451 4.2.0 mailbox busy, try again later"
    case = detractor(api, smb)
    now = timezone.now()
    for _ in range(MAX_ATTEMPTS):
        now += timedelta(hours=2)
        with time_machine.travel(now, tick=False):
            drain()
    delivery = Delivery.objects.get(case=case, purpose="outreach")
    assert delivery.status == "failed" and not delivery.permanent_failure
    assert delivery.attempts == MAX_ATTEMPTS and "gave up" in delivery.last_error
    assert case.activities.filter(kind=Activity.Kind.DELIVERY_FAILED).exists()
    assert Person.objects.get(email="pat@example.com").bounced_at is None


def test_it_posts_a_block_kit_message_to_slack(
    api: ApiClient, enterprise: Account, receiver: Receiver
) -> None:
    Channel.objects.create(kind="slack", url=receiver.url)
    case = detractor(api, enterprise, score=2)
    drain()
    (post,) = receiver.requests
    message = post.json()
    assert "2/10" in message["text"]
    header, facts, comment, actions = message["blocks"]
    assert "Detractor 2/10" in header["text"]["text"]
    text = " ".join(f["text"] for f in facts["fields"])
    for fact in ("Globex", "USD 120,000", "Alex", "Due", "Phone/video call"):
        assert fact in text
    assert "Exports time out" in comment["text"]["text"]
    assert actions["elements"][0]["url"].endswith(f"/cases/{case.pk}/")
    assert case.activities.filter(kind=Activity.Kind.NOTIFIED, text__contains="Slack").exists()


def test_it_retries_slack_after_a_500_and_sends_once(
    api: ApiClient, enterprise: Account, receiver: Receiver
) -> None:
    Channel.objects.create(kind="slack", url=receiver.url)
    receiver.status = 500
    detractor(api, enterprise)
    drain()
    delivery = Delivery.objects.get(kind="slack")
    assert delivery.status == "pending" and "HTTP 500" in delivery.last_error
    receiver.status = 200
    with time_machine.travel(timezone.now() + timedelta(seconds=31), tick=False):
        drain()
    delivery.refresh_from_db()
    assert delivery.status == "sent" and len(receiver.requests) == 2
    assert receiver.requests[0].body == receiver.requests[1].body


def test_it_retries_slack_after_a_timeout(
    api: ApiClient, enterprise: Account, receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    receiver.delay = 1.0
    Channel.objects.create(kind="slack", url=receiver.url)
    detractor(api, enterprise)
    drain()
    delivery = Delivery.objects.get(kind="slack")
    assert delivery.status == "pending" and "no full answer within 0.3 s" in delivery.last_error


def test_it_fails_for_good_on_a_4xx_and_shows_it_on_the_case(
    api: ApiClient, enterprise: Account, receiver: Receiver
) -> None:
    Channel.objects.create(kind="slack", url=receiver.url)
    receiver.status = 404
    case = detractor(api, enterprise)
    drain()
    delivery = Delivery.objects.get(kind="slack")
    assert delivery.status == "failed" and delivery.permanent_failure and delivery.attempts == 1
    assert case.activities.filter(kind="delivery_failed", text__contains="HTTP 404").exists()


def test_it_waits_as_long_as_retry_after_asks(
    api: ApiClient, enterprise: Account, receiver: Receiver
) -> None:
    Channel.objects.create(kind="slack", url=receiver.url)
    receiver.status, receiver.headers = 429, {"Retry-After": "120"}
    detractor(api, enterprise)
    drain()
    delivery = Delivery.objects.get(kind="slack")
    assert delivery.status == "pending"
    assert delivery.next_attempt_at >= timezone.now() + timedelta(seconds=115)


def test_it_signs_webhooks_so_receivers_can_verify_and_deduplicate(
    api: ApiClient, enterprise: Account, receiver: Receiver
) -> None:
    channel = Channel.objects.create(kind="webhook", url=receiver.url)
    case = detractor(api, enterprise)
    drain()
    by_event = {r.headers["X-Closeloop-Event"]: r for r in receiver.requests}
    assert set(by_event) == {"response.created", "case.created"}
    hook = by_event["case.created"]
    timestamp = hook.headers["X-Closeloop-Timestamp"]
    expected = hmac.new(
        channel.secret.encode(), f"{timestamp}.".encode() + hook.body, hashlib.sha256
    ).hexdigest()
    assert hook.headers["X-Closeloop-Signature"] == f"sha256={expected}"
    payload = hook.json()
    assert payload["id"] == hook.headers["X-Closeloop-Event-Id"]
    assert payload["type"] == "case.created"
    assert payload["data"]["case"]["id"] == case.pk
    assert payload["data"]["case"]["owner"]["email"] == "alex@example.com"
    assert by_event["response.created"].json()["data"]["response"]["score"] == 4


def test_it_sends_channels_only_the_cases_their_filters_match(
    api: ApiClient, enterprise: Account, smb: Account, receiver: Receiver
) -> None:
    Channel.objects.create(kind="slack", url=receiver.url, bands=["severe"], tiers=["enterprise"])
    detractor(api, enterprise, score=4, email="moderate@example.com")
    detractor(api, smb, score=1, email="smb@example.com")
    detractor(api, enterprise, score=0, email="match@example.com")
    drain()
    (post,) = receiver.requests
    assert post.json()["text"].startswith("Detractor 0/10")


def test_it_refuses_a_non_http_url_for_good(api: ApiClient, enterprise: Account) -> None:
    Channel.objects.create(kind="slack", url="file:///etc/passwd")
    detractor(api, enterprise)
    drain()
    delivery = Delivery.objects.get(kind="slack")
    assert delivery.status == "failed" and "not an http(s) URL" in delivery.last_error


def test_it_emails_a_channel_address_about_new_cases(
    api: ApiClient, enterprise: Account, smtp: SmtpServer
) -> None:
    Channel.objects.create(kind="email", email="cs-team@example.com")
    case = detractor(api, enterprise, score=2)
    drain()
    (mail,) = smtp.inbox.to("cs-team@example.com")
    assert str(mail["Subject"]).strip().startswith("Detractor 2/10")
    assert f"/cases/{case.pk}/" in mail.get_content()
    assert Delivery.objects.get(to="cs-team@example.com").event == "case.created"


def test_it_fails_a_webhook_for_good_when_its_channel_was_deleted(
    api: ApiClient, enterprise: Account, receiver: Receiver
) -> None:
    channel = Channel.objects.create(kind="webhook", url=receiver.url)
    case = detractor(api, enterprise)
    channel.delete()
    drain()
    assert receiver.requests == []
    delivery = Delivery.objects.get(case=case, kind="webhook", event="case.created")
    assert delivery.status == "failed" and delivery.permanent_failure
    assert "channel was deleted" in delivery.last_error


def test_it_gives_up_on_the_rest_of_a_batch_when_the_mail_server_is_down(
    api: ApiClient, smb: Account, agent: User, settings: Any
) -> None:
    # A server that accepts connections and hangs up at once: each connect is counted.
    listener = socket.create_server(("127.0.0.1", 0))
    connects = []

    def hang_up() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            connects.append(1)
            conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", listener.getsockname()[1]
    try:
        for n in range(10):
            detractor(api, smb, email=f"down{n}@example.com")
        drain()
    finally:
        listener.close()
    emails = Delivery.objects.filter(kind="email")
    assert emails.count() == 20
    assert all(d.status == "pending" and d.attempts == 0 for d in emails)  # the server's fault
    assert Attempt.objects.filter(ok=False).count() == 20
    assert len(connects) <= SMTP_SESSIONS  # one try per session, not one per message


def test_it_keeps_smtp_sessions_between_batches_and_replaces_one_the_server_dropped(
    api: ApiClient, smb: Account, smtp: SmtpServer
) -> None:
    kept_mailer().close()  # start from no session in this thread
    for n in range(3):
        detractor(api, smb, email=f"first{n}@example.com")
        drain()
    assert len(smtp.inbox.messages) == 6
    assert smtp.inbox.sessions <= SMTP_SESSIONS  # not one per batch
    # The server drops every session (as after its idle timeout); the next email still goes.
    smtp.controller.stop()
    smtp.controller = Controller(smtp.inbox, hostname="127.0.0.1", port=smtp.port)
    smtp.controller.start()
    detractor(api, smb, email="after@example.com")
    drain()
    assert len(smtp.inbox.to("after@example.com")) == 1
    assert Delivery.objects.filter(status="sent").count() == 8


def test_it_records_a_sent_batch_again_when_the_database_refused_it_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.db import OperationalError

    from closeloop.delivery import sending

    calls: list[int] = []

    def flaky(outcomes: list[sending.Outcome], listeners: sending.Listeners) -> None:
        calls.append(len(outcomes))
        if len(calls) == 1:  # as PostgreSQL answers a deadlock: the transaction is gone
            raise OperationalError("deadlock detected")

    monkeypatch.setattr(sending, "_record", flaky)
    monkeypatch.setattr(sending.time, "sleep", lambda seconds: None)
    outcome = sending.Outcome(delivery=object(), error=None, ms=1)  # type: ignore[arg-type]
    sending.record([outcome], LISTENERS)
    assert calls == [1, 1]  # recorded on the second try, not left to the lease


class _Garbage:
    """A TCP server on loopback that answers every request with a line that is not HTTP."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"SSH-2.0-OpenSSH_9.6 not http at all\r\n\r\n")


def test_it_fails_only_the_bad_deliveries_of_a_batch_and_sends_the_rest(
    api: ApiClient, enterprise: Account, receiver: Receiver
) -> None:
    garbage = _Garbage()
    try:
        # Channels stored before URLs were checked at entry, and a receiver speaking no HTTP.
        Channel.objects.create(kind="slack", url=garbage.url)
        Channel.objects.create(kind="webhook", url="http://127.0.0.1:9/ho\x01ok")
        Channel.objects.create(kind="webhook", url="http://127.0.0.1:9/crème")
        Channel.objects.create(kind="slack", url=receiver.url)
        detractor(api, enterprise)
        drain()
    finally:
        garbage.sock.close()
    rows = {d.to: d for d in Delivery.objects.filter(kind__in=["slack", "webhook"])}
    assert rows[receiver.url].status == "sent" and len(receiver.requests) == 1
    no_http = rows[garbage.url]
    assert no_http.status == "pending" and no_http.attempts == 1  # retried later, with backoff
    assert "no valid HTTP" in no_http.last_error and no_http.claim_token == ""
    for url in ("http://127.0.0.1:9/ho\x01ok", "http://127.0.0.1:9/crème"):
        assert rows[url].status == "failed" and rows[url].permanent_failure, rows[url].last_error


@pytest.mark.parametrize(
    "url", ["http://hooks.example/a b", "http://hooks.example/\x01", "https://hooks.example/crème"]
)
def test_it_refuses_a_channel_url_that_cannot_be_sent(api: ApiClient, url: str) -> None:
    r = api.post_json("/api/v1/channels", {"kind": "webhook", "url": url})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "url", r.content
    assert not Channel.objects.exists()


def test_it_never_lets_a_customer_comment_ping_a_slack_channel(
    api: ApiClient, enterprise: Account, receiver: Receiver
) -> None:
    Channel.objects.create(kind="slack", url=receiver.url)
    enterprise.name = "Globex <!here>"
    enterprise.save()
    comment = "Fix it <!channel> & <@U024BE7LH> <https://evil.example|click>"
    assert (
        api.post_json(
            "/api/v1/responses",
            {
                "person": {"email": "pat@example.com", "account": {"external_id": "acc-globex"}},
                "score": 2,
                "comment": comment,
            },
        ).status_code
        == 201
    )
    drain()
    message = receiver.requests[0].json()
    # Every text Slack parses (the notification text and mrkdwn) is escaped; the header is
    # plain_text, which Slack shows as it is and never reads for mentions or links.
    parsed = [message["text"]] + [
        part["text"]
        for block in message["blocks"]
        for part in [block.get("text") or {}, *block.get("fields", [])]
        if part.get("type") == "mrkdwn"
    ]
    for text in parsed:
        assert "<!" not in text and "<@" not in text and "<https" not in text, text
    assert "&lt;!channel&gt; &amp; &lt;@U024BE7LH&gt;" in message["text"]
    assert "*Account*\nGlobex &lt;!here&gt;" in parsed
