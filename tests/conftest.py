"""Shared fixtures: named users of each role, accounts of each tier, API clients."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from closeloop.access.models import ApiKey
from closeloop.loop.models import FollowUpCase
from closeloop.surveys.models import Account
from closeloop.team.models import Role, User
from closeloop.worker import default_steps

pytest_plugins = ["tests.browser", "tests.loopback"]

# The suite never tunes the sentiment model in the background, in this process or in the
# workers it starts: comments are read by the interim model unless the tuned model was built.
os.environ["SENTIMENT_TUNING"] = "off"
settings.SENTIMENT_TUNING = False
# The suite's Slack and webhook receivers listen on loopback, which calls may not reach
# unless it is listed (closeloop/delivery/outbound.py); tests of that rule unset it.
os.environ["OUTBOUND_ALLOW_HOSTS"] = "127.0.0.1"
settings.OUTBOUND_ALLOW_HOSTS = "127.0.0.1"
# Django's test Client.login authenticates without a request, which django-axes refuses;
# the login throttle's own tests turn it on (tests/test_logins.py), and the running
# stack has it on (tests/test_e2e_stack.py).
settings.AXES_ENABLED = False


@pytest.fixture
def manager(db: Any) -> User:
    return User.objects.create_user(
        "maria", "maria@example.com", "pw-maria-123", first_name="Maria", role=Role.MANAGER
    )


@pytest.fixture
def agent(manager: User) -> User:
    return User.objects.create_user(
        "alex",
        "alex@example.com",
        "pw-alex-123",
        first_name="Alex",
        role=Role.AGENT,
        manager=manager,
    )


@pytest.fixture
def viewer(db: Any) -> User:
    return User.objects.create_user("vic", "vic@example.com", "pw-vic-123", role=Role.VIEWER)


@pytest.fixture
def admin_user(db: Any) -> User:
    return User.objects.create_superuser("admin", "admin@example.com", "pw-admin-123")


@pytest.fixture
def enterprise(agent: User) -> Account:
    return Account.objects.create(
        name="Globex",
        external_id="acc-globex",
        tier="enterprise",
        arr_cents=12_000_000,
        owner=agent,
    )


@pytest.fixture
def smb(agent: User) -> Account:
    return Account.objects.create(
        name="Initech", external_id="acc-initech", tier="smb", arr_cents=600_000, owner=agent
    )


class ApiClient(Client):
    """A test client that sends JSON and an API key."""

    def __init__(self, key: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.key = key

    def _auth(self, extra: dict[str, Any]) -> dict[str, Any]:
        if self.key is not None:
            extra.setdefault("HTTP_AUTHORIZATION", f"Bearer {self.key}")
        return extra

    def get_json(self, path: str, data: Any = None, **extra: Any) -> Any:
        return self.get(path, data, **self._auth(extra))

    def client_put(self, path: str, data: Any, **extra: Any) -> Any:
        body = data if isinstance(data, (str, bytes)) else json.dumps(data)
        return self.put(path, body, content_type="application/json", **self._auth(extra))

    def patch_json(self, path: str, data: Any, **extra: Any) -> Any:
        body = data if isinstance(data, (str, bytes)) else json.dumps(data)
        return self.patch(path, body, content_type="application/json", **self._auth(extra))

    def post_json(self, path: str, data: Any, **extra: Any) -> Any:
        body = data if isinstance(data, (str, bytes)) else json.dumps(data)
        return self.post(path, body, content_type="application/json", **self._auth(extra))


@pytest.fixture
def api(db: Any) -> ApiClient:
    """An admin key: the suite sets up channels, policies and themes as an admin would."""
    _, plain = ApiKey.issue("tests", admin=True)
    return ApiClient(plain)


@pytest.fixture
def writer_api(db: Any) -> ApiClient:
    """A read-write key: answers, people, accounts and cases, but no settings."""
    _, plain = ApiKey.issue("writer")
    return ApiClient(plain)


@pytest.fixture
def read_only_api(db: Any) -> ApiClient:
    _, plain = ApiKey.issue("reader", read_only=True)
    return ApiClient(plain)


def answer(email: str = "pat@example.com", score: int = 3, **extra: Any) -> dict[str, Any]:
    """A valid POST /api/v1/responses body."""
    body: dict[str, Any] = {"person": {"email": email}, "score": score}
    body.update(extra)
    return body


def answer_at(
    account: Account,
    score: int,
    email: str = "pat@example.com",
    name: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An answer body from a person of `account`."""
    person: dict[str, Any] = {"email": email, "account": {"external_id": account.external_id}}
    if name is not None:
        person["name"] = name
    return answer(score=score, person=person, **extra)


def open_case(
    api: ApiClient, account: Account, score: int, email: str = "pat@example.com", **extra: Any
) -> FollowUpCase:
    """Post a fresh answer from a person of `account` and return the case it opened."""
    body = answer_at(account, score, email, **extra)
    assert api.post_json("/api/v1/responses", body).status_code == 201
    return FollowUpCase.objects.get(person__email=email)


def drain(rounds: int = 50) -> int:
    """Run the worker's steps until none has anything to do; returns how many rounds did work."""
    steps = default_steps()
    for done in range(rounds):
        if not any([step() for step in steps]):
            return done
    raise AssertionError(f"the worker still had work after {rounds} rounds")


def click_score(client: Client, path: str) -> Any:
    """Do what a person's browser does with a number in a survey email: open the link
    (which saves nothing), then send the POST the landing page's script sends."""
    import re

    landed = client.get(path)
    assert landed.status_code == 200, landed.content[:300]
    html = landed.content.decode()
    form = re.search(
        r'<form method="post" action="([^"]+)"[^>]*data-auto-score="(\d+)" '
        r'data-click="([^"]+)"',
        html,
    )
    if form is None:  # the answer already had this number: nothing to save
        return landed
    action, score, click = form.groups()
    return client.post(action, {"score": score, "click": click, "auto": "1"})
