"""Delighted-format webhooks: receivers built for Delighted keep working unchanged."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from django.test import Client

from closeloop.access.models import ApiKey
from closeloop.delivery.models import Channel
from closeloop.loop.intake import change_response
from closeloop.surveys.models import Response

from .conftest import ApiClient, answer, drain
from .loopback import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def hook(receiver: Receiver) -> Channel:
    return Channel.objects.create(kind="webhook", format="delighted", url=receiver.url)


def verified(receiver: Receiver, hook: Channel) -> list[dict[str, object]]:
    """The bodies received, each checked against its signature as a Delighted receiver would."""
    bodies = []
    for request in receiver.requests:
        expected = hmac.new(hook.secret.encode(), request.body, hashlib.sha256).hexdigest()
        assert request.headers["X-Delighted-Webhook-Signature"] == f"sha256={expected}"
        bodies.append(request.json())
    return bodies


def test_it_sends_survey_response_created_and_updated_in_delighteds_shape(
    api: ApiClient, receiver: Receiver, hook: Channel
) -> None:
    api.post_json("/api/v1/responses", answer("dana@example.com", 9, comment="Great"))
    change_response(Response.objects.get(), score=4, via="api")
    drain()
    # Webhooks are posted side by side, so they may arrive in either order.
    created, updated = sorted(verified(receiver, hook), key=lambda e: str(e["event_type"]))
    assert created["event_type"] == "survey_response.created"
    assert updated["event_type"] == "survey_response.updated"
    data = updated["event_data"]
    assert isinstance(data, dict)
    assert (data["score"], data["comment"], data["survey_type"]) == (4, "Great", "nps")
    assert data["person"]["email"] == "dana@example.com"  # type: ignore[index]
    assert isinstance(created["event_creation_time"], int)


def test_it_sends_unsubscribe_created(api: ApiClient, receiver: Receiver, hook: Channel) -> None:
    key = ApiKey.issue("dl")[1]
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    Client().post("/v1/unsubscribes", {"person_email": "bye@example.com"}, HTTP_AUTHORIZATION=auth)
    drain()
    (event,) = verified(receiver, hook)
    assert event["event_type"] == "unsubscribe.created"
    assert event["event_data"]["person"]["email"] == "bye@example.com"  # type: ignore[index]


def test_it_keeps_closeloop_events_off_a_delighted_channel(
    api: ApiClient, receiver: Receiver, hook: Channel
) -> None:
    hook.events = ["survey_response.updated"]
    hook.save()
    api.post_json("/api/v1/responses", answer("quiet@example.com", 2))
    drain()
    assert receiver.requests == []  # no case.created, and created is not subscribed


def test_it_names_a_closeloop_event_asked_of_a_delighted_channel(api: ApiClient) -> None:
    reply = api.post_json(
        "/api/v1/channels",
        {
            "kind": "webhook",
            "format": "delighted",
            "url": "http://127.0.0.1:9/x",
            "events": ["case.created"],
        },
    )
    assert reply.status_code == 422 and "events" in str(reply.json())
    slack = api.post_json(
        "/api/v1/channels", {"kind": "slack", "format": "delighted", "url": "http://127.0.0.1:9/x"}
    )
    assert slack.status_code == 422 and "format" in str(slack.json())
