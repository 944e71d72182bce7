"""POST /api/v1/responses/batch: many answers, each accepted or rejected on its own."""

from __future__ import annotations

import pytest

from closeloop.surveys.models import Person, Response

from .conftest import ApiClient, answer

pytestmark = pytest.mark.django_db


def test_it_stores_valid_items_and_reports_invalid_ones_by_index(api: ApiClient) -> None:
    items = [
        answer(email="a@x.io", score=1),
        answer(email="b@x.io", score=12),
        answer(email="c@x.io", score=9, colour="blue"),
        {"person": {"email": "d@x.io"}},
        answer(email="e@x.io", score=7, survey="missing"),
        answer(email="f@x.io", score=10),
    ]
    r = api.post_json("/api/v1/responses/batch", {"responses": items})
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["accepted"] == 2
    assert [(x["index"], x["field"]) for x in body["rejected"]] == [
        (1, "score"),
        (2, "colour"),
        (3, "score"),
        (4, "survey"),
    ]
    assert "less than or equal to 10" in body["rejected"][0]["reason"]
    assert body["ids"][1:5] == [None] * 4
    stored = Response.objects.in_bulk([body["ids"][0], body["ids"][5]])
    assert sorted(r.score for r in stored.values()) == [1, 10]
    assert Person.objects.count() == 2


def test_it_rejects_only_the_item_with_a_nul_character(api: ApiClient) -> None:
    items = [
        answer(email="a@x.io", score=3),
        answer(email="b@x.io", score=4, comment="bad\x00byte"),
        answer(email="c@x.io", score=5, person={"email": "c@x.io", "properties": {"k": "v\x00"}}),
    ]
    r = api.post_json("/api/v1/responses/batch", {"responses": items})
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["accepted"] == 1
    assert [(x["index"], x["field"]) for x in body["rejected"]] == [
        (1, "comment"),
        (2, "person.properties"),
    ]
    assert all("NUL" in x["reason"] for x in body["rejected"])
    assert list(Person.objects.values_list("email", flat=True)) == ["a@x.io"]


def test_it_deduplicates_by_external_id_across_and_within_batches(api: ApiClient) -> None:
    first = api.post_json(
        "/api/v1/responses/batch",
        {"responses": [answer(external_id="x1"), answer(external_id="x2", email="b@x.io")]},
    ).json()
    again = api.post_json(
        "/api/v1/responses/batch",
        {
            "responses": [
                answer(external_id="x2", email="b@x.io"),
                answer(external_id="x3"),
                answer(external_id="x3"),
            ]
        },
    ).json()
    assert again["ids"][0] == first["ids"][1]
    assert again["ids"][1] == again["ids"][2]
    assert Response.objects.count() == 3


def test_it_replays_a_batch_with_the_same_idempotency_key(api: ApiClient) -> None:
    body = {"responses": [answer(email=f"p{i}@x.io") for i in range(5)]}
    first = api.post_json("/api/v1/responses/batch", body, HTTP_IDEMPOTENCY_KEY="batch-1")
    again = api.post_json("/api/v1/responses/batch", body, HTTP_IDEMPOTENCY_KEY="batch-1")
    assert first.json() == again.json()
    assert Response.objects.count() == 5


def test_it_refuses_more_than_1000_items(api: ApiClient) -> None:
    r = api.post_json("/api/v1/responses/batch", {"responses": [answer()] * 1001})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "payload", "responses"]
    assert Response.objects.count() == 0


def test_it_accepts_exactly_1000_items_for_many_people_and_accounts(api: ApiClient) -> None:
    items = [
        answer(
            email=f"p{i}@x.io",
            score=i % 11,
            person={
                "email": f"p{i}@x.io",
                "account": {"external_id": f"acc-{i % 37}", "name": f"Account {i % 37}"},
            },
        )
        for i in range(1000)
    ]
    r = api.post_json("/api/v1/responses/batch", {"responses": items})
    assert r.json()["accepted"] == 1000
    assert Response.objects.count() == 1000
    assert Response.objects.filter(account__external_id="acc-5").count() == 27


def test_it_refuses_a_body_that_is_not_an_object_with_a_list(api: ApiClient) -> None:
    r = api.post_json("/api/v1/responses/batch", {"responses": "lots"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == "responses"
