"""Failed logins are throttled per user and address (django-axes): a locked-out attempt
answers 429, even with the right password, while others can still log in."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from closeloop.team.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def throttled(settings: Any) -> None:
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3


def attempt(password: str, address: str = "203.0.113.5", username: str = "maria") -> Any:
    return Client(REMOTE_ADDR=address).post("/login/", {"username": username, "password": password})


def test_it_locks_a_user_out_from_an_address_after_repeated_failures(manager: User) -> None:
    for _ in range(2):
        assert attempt("wrong").status_code == 200  # the form again, with its error
    locked = attempt("wrong")
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    # Locked out means locked out: the right password does not get in either.
    right = attempt("pw-maria-123")
    assert right.status_code == 429 and "_auth_user_id" not in right.client.session
    # The same user from another address, and others from this one, still get in.
    assert attempt("pw-maria-123", address="198.51.100.7").status_code == 302
    assert attempt("wrong", username="someone").status_code == 200


def test_it_forgets_failures_after_a_success(manager: User) -> None:
    for _ in range(2):
        attempt("wrong")
    assert attempt("pw-maria-123").status_code == 302
    for _ in range(2):
        assert attempt("wrong").status_code == 200


def test_it_does_not_trust_a_forwarded_address_without_a_proxy(manager: User) -> None:
    # Without WEB_PROXY_COUNT a client could name any address in X-Forwarded-For.
    for n in range(3):
        Client(REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").post(
            "/login/", {"username": "maria", "password": "wrong"}
        )
    assert attempt("pw-maria-123").status_code == 429


def test_it_counts_failures_per_client_behind_a_counted_proxy(manager: User, settings: Any) -> None:
    # Behind one proxy every request comes from the proxy's address; the client is the
    # address the proxy appended. One client's failures must not lock out another.
    settings.WEB_PROXY_COUNT = 1

    def via_proxy(password: str, client: str) -> Any:
        return Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=client).post(
            "/login/", {"username": "maria", "password": password}
        )

    for _ in range(2):
        via_proxy("wrong", "203.0.113.5")
    assert via_proxy("wrong", "203.0.113.5").status_code == 429
    assert via_proxy("pw-maria-123", "198.51.100.7").status_code == 302
