"""POST/GET /api/v1/responses: storing one answer, reading answers back."""

from __future__ import annotations

from typing import Any

import pytest

from closeloop.surveys.models import Account, Person, Response

from .conftest import ApiClient, answer

pytestmark = pytest.mark.django_db


def test_it_stores_an_answer_with_person_account_and_snapshot(api: ApiClient) -> None:
    body = answer(
        score=2,
        comment="Exports keep timing out",
        person={
            "email": "Pat@Example.com",
            "name": "Pat Doe",
            "properties": {"role": "admin", "seats": 12},
            "account": {
                "external_id": "acc-1",
                "name": "Acme",
                "tier": "enterprise",
                "arr": 120000.50,
            },
        },
    )
    r = api.post_json("/api/v1/responses", body)
    assert r.status_code == 201, r.content
    data = r.json()
    assert data["category"] == "detractor" and data["band"] == "severe"
    assert data["person"]["email"] == "pat@example.com"
    assert data["account"]["tier"] == "enterprise"
    assert data["properties"]["role"] == "admin"
    assert data["properties"]["account.tier"] == "enterprise"
    assert Account.objects.get(external_id="acc-1").arr_cents == 12_000_050
    stored = Response.objects.get(pk=data["id"])
    assert stored.source == "api" and stored.comment == "Exports keep timing out"


def test_it_returns_the_original_for_a_repeated_external_id(api: ApiClient) -> None:
    first = api.post_json("/api/v1/responses", answer(external_id="ext-1", score=9))
    again = api.post_json("/api/v1/responses", answer(external_id="ext-1", score=9))
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert Response.objects.count() == 1


def test_it_replays_an_idempotency_key_and_refuses_it_for_another_body(api: ApiClient) -> None:
    first = api.post_json("/api/v1/responses", answer(), HTTP_IDEMPOTENCY_KEY="k1")
    again = api.post_json("/api/v1/responses", answer(), HTTP_IDEMPOTENCY_KEY="k1")
    assert again.status_code == first.status_code == 201
    assert again.json() == first.json()
    assert Response.objects.count() == 1
    other = api.post_json("/api/v1/responses", answer(score=8), HTTP_IDEMPOTENCY_KEY="k1")
    assert other.status_code == 409
    assert other.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]


def test_it_updates_the_person_and_merges_properties(api: ApiClient) -> None:
    api.post_json("/api/v1/responses", answer(person={"email": "a@x.io", "properties": {"a": 1}}))
    api.post_json(
        "/api/v1/responses",
        answer(person={"email": "a@x.io", "name": "Ann", "properties": {"b": "two"}}),
    )
    person = Person.objects.get(email="a@x.io")
    assert person.name == "Ann" and person.properties == {"a": 1, "b": "two"}
    assert Person.objects.count() == 1


def test_it_backfills_created_at_in_utc(api: ApiClient) -> None:
    r = api.post_json("/api/v1/responses", answer(created_at="2025-03-04T05:06:07Z"))
    assert r.json()["created_at"].startswith("2025-03-04T05:06:07")
    r = api.post_json(
        "/api/v1/responses", answer(email="b@x.io", created_at="2025-03-04T23:30:00+14:00")
    )
    assert r.json()["created_at"].startswith("2025-03-04T09:30:00")


@pytest.mark.parametrize(
    ("body", "loc", "msg"),
    [
        (answer(score=11), ["body", "payload", "score"], "less than or equal to 10"),
        (answer(score=-1), ["body", "payload", "score"], "greater than or equal to 0"),
        (answer(score=7.5), ["body", "payload", "score"], "valid integer"),
        (answer(score="7"), ["body", "payload", "score"], "valid integer"),
        ({"person": {"email": "p@x.io"}}, ["body", "payload", "score"], "Field required"),
        (answer(colour="red"), ["body", "payload", "colour"], "Extra inputs"),
        (
            answer(person={"email": "not-an-email"}),
            ["body", "payload", "person", "email"],
            "valid email",
        ),
        (
            answer(person={"name": "No Id"}),
            ["body", "payload", "person"],
            "email or an external_id",
        ),
        (answer(created_at="2999-01-01T00:00:00Z"), ["body", "payload", "created_at"], "future"),
        (
            answer(created_at="0223-10-01T00:00:00+20:00"),
            ["body", "payload", "created_at"],
            "before 2000",
        ),
        (
            answer(person={"email": "p@x.io", "account": {"tier": "smb"}}),
            ["body", "payload", "person", "account"],
            "external_id or a name",
        ),
        (
            answer(person={"email": "p@x.io", "account": {"name": "A", "arr": -5}}),
            ["body", "payload", "person", "account", "arr"],
            "greater than or equal to 0",
        ),
    ],
)
def test_it_names_the_field_of_bad_input(
    api: ApiClient, body: dict[str, Any], loc: list[str], msg: str
) -> None:
    r = api.post_json("/api/v1/responses", body)
    assert r.status_code == 422, r.content
    detail = r.json()["detail"][0]
    assert detail["loc"] == loc
    assert msg in detail["msg"]
    assert Response.objects.count() == 0 and Person.objects.count() == 0


def test_it_refuses_an_unknown_survey(api: ApiClient) -> None:
    r = api.post_json("/api/v1/responses", answer(survey="nope"))
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "survey"]


@pytest.mark.parametrize("blank", ["", "   "])
def test_it_refuses_a_blank_survey_slug(api: ApiClient, blank: str) -> None:
    r = api.post_json("/api/v1/responses", answer(survey=blank))
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "payload", "survey"]


def test_it_answers_malformed_json_with_400(api: ApiClient) -> None:
    r = api.post_json("/api/v1/responses", '{"score": 3,')
    assert r.status_code == 400
    assert r.json()["detail"][0]["loc"] == ["body"]
    assert "malformed JSON" in r.json()["detail"][0]["msg"]


def test_it_refuses_a_body_over_one_megabyte(api: ApiClient) -> None:
    r = api.post_json("/api/v1/responses", answer(comment="x" * (1024 * 1024 + 1)))
    assert r.status_code == 413
    assert r.json()["detail"][0]["loc"] == ["body"]


def _seed(api: ApiClient) -> None:
    rows = [
        ("a@x.io", 0, "2026-01-05", "enterprise", "eu"),
        ("b@x.io", 4, "2026-01-06", "smb", "us"),
        ("c@x.io", 6, "2026-01-07", "smb", "eu"),
        ("d@x.io", 8, "2026-01-08", "enterprise", "us"),
        ("e@x.io", 10, "2026-01-09", "smb", "eu"),
    ]
    for email, score, day, tier, region in rows:
        r = api.post_json(
            "/api/v1/responses",
            answer(
                email=email,
                score=score,
                created_at=f"{day}T12:00:00Z",
                comment=f"comment {score}",
                person={
                    "email": email,
                    "properties": {"region": region},
                    "account": {"external_id": f"acc-{tier}", "name": tier, "tier": tier},
                },
            ),
        )
        assert r.status_code == 201, r.content


@pytest.mark.parametrize(
    ("query", "scores"),
    [
        ({}, [10, 8, 6, 4, 0]),
        ({"since": "2026-01-06", "until": "2026-01-08"}, [8, 6, 4]),
        ({"band": "severe"}, [0]),
        ({"category": "detractor"}, [6, 4, 0]),
        ({"score": "4,10"}, [10, 4]),
        ({"tier": "enterprise"}, [8, 0]),
        ({"account": "acc-smb"}, [10, 6, 4]),
        ({"property.region": "eu"}, [10, 6, 0]),
        ({"q": "COMMENT 6"}, [6]),
    ],
)
def test_it_filters_the_list(api: ApiClient, query: dict[str, str], scores: list[int]) -> None:
    _seed(api)
    r = api.get_json("/api/v1/responses", query)
    assert r.status_code == 200, r.content
    assert [item["score"] for item in r.json()["items"]] == scores


def test_it_pages_with_a_cursor_without_gaps_or_repeats(api: ApiClient) -> None:
    _seed(api)
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = api.get_json("/api/v1/responses", params).json()
        seen += [item["score"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [10, 8, 6, 4, 0]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"since": "0001-01-01"}, "since"),
        ({"until": "9999-12-31"}, "until"),
        ({"since": "2026-02-01", "until": "2026-01-01"}, "until"),
        ({"band": "awful"}, "band"),
        ({"score": "11"}, "score"),
        ({"cursor": "!!!"}, "cursor"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_it_names_a_bad_filter(api: ApiClient, query: dict[str, str], field: str) -> None:
    r = api.get_json("/api/v1/responses", query)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", field]


def test_it_reads_one_answer_and_404s_an_unknown_one(api: ApiClient) -> None:
    created = api.post_json("/api/v1/responses", answer()).json()
    assert api.get_json(f"/api/v1/responses/{created['id']}").json()["id"] == created["id"]
    assert api.get_json("/api/v1/responses/999999").status_code == 404


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (answer(comment="bad\x00byte"), ["body", "payload", "comment"]),
        (
            answer(person={"email": "p@x.io", "properties": {"k": "v\x00"}}),
            ["body", "payload", "person", "properties"],
        ),
        (
            answer(person={"email": "p@x.io", "account": {"name": "A\x00"}}),
            ["body", "payload", "person", "account", "name"],
        ),
    ],
)
def test_it_refuses_nul_characters_that_postgresql_cannot_store(
    api: ApiClient, body: dict[str, Any], loc: list[str]
) -> None:
    r = api.post_json("/api/v1/responses", body)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == loc
    assert "NUL" in r.json()["detail"][0]["msg"]
    assert api.get_json("/api/v1/responses", {"q": "a\x00"}).status_code == 422


def test_it_treats_an_account_id_beyond_any_row_as_no_match(api: ApiClient) -> None:
    _seed(api)
    r = api.get_json("/api/v1/responses", {"account": "9" * 30})
    assert r.status_code == 200 and r.json()["items"] == []
    assert api.get_json("/api/v1/responses/" + "9" * 30).status_code in {404, 422}


def test_it_forgets_an_idempotency_key_after_a_day(api: ApiClient) -> None:
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from closeloop.access.models import IdempotencyRecord

    assert (
        api.post_json("/api/v1/responses", answer(), HTTP_IDEMPOTENCY_KEY="k1").status_code == 201
    )
    later = timezone.now() + timedelta(hours=25)
    with time_machine.travel(later, tick=False):
        reused = api.post_json(
            "/api/v1/responses", answer(email="other@example.com"), HTTP_IDEMPOTENCY_KEY="k1"
        )
        assert reused.status_code == 201  # a new request, not a 409 nor a replay
        assert IdempotencyRecord.objects.get(key="k1").request_hash != ""
        api.post_json("/api/v1/responses", answer(email="x@example.com"), HTTP_IDEMPOTENCY_KEY="k2")
    with time_machine.travel(later + timedelta(hours=25), tick=False):
        assert IdempotencyRecord.expire() == 2
    assert not IdempotencyRecord.objects.exists()
    assert Response.objects.count() == 3
