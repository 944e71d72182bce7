"""POST /api/v1/people and /api/v1/accounts: upserts by email or external id."""

from __future__ import annotations

import pytest

from closeloop.surveys.models import Account, Person

from .conftest import ApiClient

pytestmark = pytest.mark.django_db


def test_it_creates_then_updates_a_person_by_email(api: ApiClient) -> None:
    r = api.post_json(
        "/api/v1/people", {"email": "Kim@X.io", "name": "Kim", "properties": {"plan": "pro"}}
    )
    assert r.status_code == 201
    r = api.post_json(
        "/api/v1/people",
        {"email": "kim@x.io", "phone": "+4412345", "account": {"external_id": "a1", "name": "A1"}},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "Kim" and body["phone"] == "+4412345"
    assert body["properties"] == {"plan": "pro"} and body["account"]["external_id"] == "a1"
    assert Person.objects.count() == 1
    assert api.get_json(f"/api/v1/people/{body['id']}").json()["email"] == "kim@x.io"


def test_it_creates_a_person_known_only_by_external_id(api: ApiClient) -> None:
    r = api.post_json("/api/v1/people", {"external_id": "u-42", "name": "Sam"})
    assert r.status_code == 201 and r.json()["email"] is None


def test_it_upserts_an_account_by_external_id_and_by_name(api: ApiClient) -> None:
    assert (
        api.post_json(
            "/api/v1/accounts", {"external_id": "e1", "name": "E1", "arr": "1234.56"}
        ).status_code
        == 201
    )
    r = api.post_json("/api/v1/accounts", {"external_id": "e1", "tier": "enterprise"})
    assert r.status_code == 200 and r.json()["arr"] == 1234.56
    assert api.post_json("/api/v1/accounts", {"name": "No Id Co"}).status_code == 201
    assert api.post_json("/api/v1/accounts", {"name": "No Id Co"}).status_code == 200
    assert Account.objects.count() == 2
    assert Account.objects.get(external_id="e1").tier == "enterprise"


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/api/v1/people", {"name": "x"}, ["body", "payload"]),
        (
            "/api/v1/people",
            {"email": "x@x.io", "locale": "not a locale"},
            ["body", "payload", "locale"],
        ),
        (
            "/api/v1/people",
            {"email": "x@x.io", "properties": {"k": [1, 2]}},
            ["body", "payload", "properties", "k"],
        ),
        ("/api/v1/accounts", {"name": "A", "currency": "usd"}, ["body", "payload", "currency"]),
        ("/api/v1/accounts", {"name": "A", "arr": "lots"}, ["body", "payload", "arr"]),
        (
            "/api/v1/accounts",
            {"name": "A", "customer_since": "2026-02-30"},
            ["body", "payload", "customer_since"],
        ),
    ],
)
def test_it_names_bad_fields(
    api: ApiClient, path: str, body: dict[str, object], loc: list[str]
) -> None:
    r = api.post_json(path, body)
    assert r.status_code == 422, r.content
    assert r.json()["detail"][0]["loc"][: len(loc)] == loc
    assert Person.objects.count() == 0 and Account.objects.count() == 0


def test_it_404s_unknown_ids(api: ApiClient) -> None:
    assert api.get_json("/api/v1/people/12345").status_code == 404
    assert api.get_json("/api/v1/accounts/12345").status_code == 404


def test_it_refuses_a_locale_longer_than_the_column(api: ApiClient) -> None:
    r = api.post_json("/api/v1/people", {"email": "x@x.io", "locale": "xql_00_00_00_00_00"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "payload", "locale"]


def test_it_refuses_an_external_id_held_by_another_person(api: ApiClient) -> None:
    api.post_json("/api/v1/people", {"email": "a@x.io", "external_id": "u-1"})
    r = api.post_json(
        "/api/v1/responses", {"person": {"email": "b@x.io", "external_id": "u-1"}, "score": 5}
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "person", "external_id"]
    assert Person.objects.count() == 1


@pytest.mark.parametrize(
    ("properties", "refused"),
    [
        ({"k": "x\x00"}, True),
        ({"k\x00": 1}, True),
        ({"k\\": "\x00"}, True),
        ({"k": "typed \\u0000 as text"}, False),
        ({"k": "backslash then NUL \\\\\x00"}, True),
    ],
)
def test_it_tells_a_nul_character_from_text_that_spells_one(
    api: ApiClient, properties: dict[str, object], refused: bool
) -> None:
    r = api.post_json("/api/v1/people", {"email": "p@x.io", "properties": properties})
    assert (r.status_code == 422) is refused, r.content
