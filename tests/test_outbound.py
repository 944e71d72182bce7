"""Slack and webhook calls go only where they may (no internal addresses unless listed in
OUTBOUND_ALLOW_HOSTS), within one deadline, and never show a receiver's answer."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest

from closeloop.delivery.models import Channel, Delivery
from closeloop.surveys.models import Account

from .conftest import ApiClient, drain, open_case
from .loopback import Receiver

pytestmark = pytest.mark.django_db


def detractor(api: ApiClient, account: Account, email: str = "pat@example.com") -> None:
    open_case(api, account, 3, email, name="Pat Lee", comment="Exports time out")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5432/",
        "http://localhost:8000/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/hook",
        "http://[::1]:6379/",
        "http://0.0.0.0:8000/",
        "http://[::ffff:127.0.0.1]/",
    ],
)
def test_it_refuses_a_channel_pointing_inside_the_network(
    api: ApiClient, settings: Any, url: str
) -> None:
    settings.OUTBOUND_ALLOW_HOSTS = ""
    reply = api.post_json("/api/v1/channels", {"kind": "webhook", "url": url})
    assert reply.status_code == 422, reply.content
    detail = reply.json()["detail"][0]
    assert detail["loc"][-1] == "url" and "OUTBOUND_ALLOW_HOSTS" in detail["msg"]
    assert not Channel.objects.exists()


def test_it_takes_an_internal_receiver_listed_in_the_allow_list(
    api: ApiClient, settings: Any, receiver: Receiver
) -> None:
    settings.OUTBOUND_ALLOW_HOSTS = f"intranet.example, 127.0.0.1:{receiver.server.server_port}"
    reply = api.post_json("/api/v1/channels", {"kind": "webhook", "url": receiver.url})
    assert reply.status_code == 201, reply.content
    other_port = {"kind": "webhook", "url": "http://127.0.0.1:1/hook"}
    assert api.post_json("/api/v1/channels", other_port).status_code == 422


def test_it_refuses_at_send_time_a_destination_that_became_internal(
    api: ApiClient, enterprise: Account, receiver: Receiver, settings: Any
) -> None:
    Channel.objects.create(kind="slack", url=receiver.url)  # saved while it was allowed
    settings.OUTBOUND_ALLOW_HOSTS = ""
    detractor(api, enterprise)
    drain()
    delivery = Delivery.objects.get(kind="slack")
    assert delivery.status == "failed" and delivery.permanent_failure
    assert "inside the network" in delivery.last_error
    assert receiver.requests == []


def test_it_never_shows_a_receivers_answer_or_the_urls_secret_path(
    api: ApiClient, enterprise: Account, receiver: Receiver
) -> None:
    secret_path = receiver.url + "/T000/B000/XXXXsecretXXXX"
    Channel.objects.create(kind="slack", url=secret_path)
    receiver.status = 500  # its body reads "receiver error"
    detractor(api, enterprise)
    drain()
    delivery = Delivery.objects.get(kind="slack")
    assert "HTTP 500" in delivery.last_error
    assert "receiver error" not in delivery.last_error
    assert "secret" not in delivery.last_error
    case_text = " ".join(a.text for a in delivery.case.activities.all())  # type: ignore[union-attr]
    assert "secret" not in case_text and "receiver error" not in case_text


def trickler() -> tuple[socket.socket, list[float]]:
    """A receiver that answers a byte every half second, for ever."""
    listener = socket.create_server(("127.0.0.1", 0))
    started: list[float] = []

    def serve(conn: socket.socket) -> None:
        started.append(time.monotonic())
        conn.recv(65536)
        try:
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000:
                conn.sendall(bytes([byte]))
                time.sleep(0.5)
        except OSError:
            pass
        finally:
            conn.close()

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener, started


def test_it_gives_a_trickling_receiver_one_deadline_and_posts_the_rest(
    api: ApiClient, enterprise: Account, receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOK_TIMEOUT_SECONDS = 2
    listener, _ = trickler()
    try:
        port = listener.getsockname()[1]
        Channel.objects.create(kind="webhook", url=f"http://127.0.0.1:{port}/slow")
        Channel.objects.create(kind="slack", url=receiver.url)
        detractor(api, enterprise)
        began = time.monotonic()
        drain()
        took = time.monotonic() - began
    finally:
        listener.close()
    slow = Delivery.objects.get(kind="webhook", event="case.created")
    assert slow.status == "pending" and "no full answer within 2 s" in slow.last_error
    assert slow.attempt_log.get().duration_ms < 3500  # not the minutes the trickle would last
    assert Delivery.objects.get(kind="slack").status == "sent"
    assert took < 15
