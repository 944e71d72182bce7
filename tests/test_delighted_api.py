"""The Delighted-compatible API's edges: auth forms, form bodies, suffixes, and bad input."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.test import Client

from closeloop.access.models import ApiKey
from closeloop.surveys.models import Person, Response

pytestmark = pytest.mark.django_db


class Delighted:
    """Calls /v1/ the way curl -u KEY: does."""

    def __init__(self, key: str, colon: bool = True) -> None:
        user = f"{key}:" if colon else key
        self.auth = "Basic " + base64.b64encode(user.encode()).decode()
        self.http = Client()

    def call(self, method: str, path: str, data: Any = None, json_body: bool = False) -> Any:
        kwargs: dict[str, Any] = {"HTTP_AUTHORIZATION": self.auth}
        if method == "get":
            return self.http.get(path, data or {}, **kwargs)
        if json_body:
            body, kind = json.dumps(data), "application/json"
        else:
            from urllib.parse import urlencode

            body, kind = urlencode(data or {}, doseq=True), "application/x-www-form-urlencoded"
        return getattr(self.http, method)(path, body, content_type=kind, **kwargs)


@pytest.fixture
def dl(db: Any) -> Delighted:
    return Delighted(ApiKey.issue("curl")[1])


def error_field(reply: Any) -> str:
    assert reply.status_code == 422, reply.content
    return str(reply.json()["errors"][0]["field"])


def test_it_takes_form_bodies_with_nested_properties_like_curl(dl: Delighted) -> None:
    reply = dl.call(
        "post",
        "/v1/people.json",
        {"email": "form@example.com", "properties[plan]": "pro", "send": "false"},
    )
    assert reply.status_code == 200
    assert Person.objects.get().properties == {"plan": "pro"}


def test_it_accepts_the_key_with_or_without_a_colon(db: Any) -> None:
    key = ApiKey.issue("either")[1]
    for colon in (True, False):
        assert Delighted(key, colon).call("get", "/v1/metrics").status_code == 200


def test_it_answers_401_without_or_with_a_bad_key(dl: Delighted) -> None:
    assert Client().get("/v1/metrics.json").status_code == 401
    bad = Delighted("cl_deadbeef_nope")
    reply = bad.call("get", "/v1/metrics")
    assert reply.status_code == 401 and reply.json()["message"] == "Invalid API key"
    garbage = Client().get("/v1/metrics", HTTP_AUTHORIZATION="Basic !!!notbase64")
    assert garbage.status_code == 401


def test_it_refuses_writes_with_a_read_only_key(db: Any) -> None:
    reader = Delighted(ApiKey.issue("reader", read_only=True)[1])
    assert reader.call("get", "/v1/survey_responses").status_code == 200
    assert reader.call("post", "/v1/unsubscribes", {"person_email": "a@b.co"}).status_code == 401


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/people", {}, "email"),
        ("/v1/people", {"email": "not-an-email"}, "email"),
        ("/v1/people", {"email": "a@b.co", "delay": "soon"}, "delay"),
        ("/v1/people", {"email": "a@b.co", "delay": "-5"}, "delay"),
        ("/v1/people", {"email": "a@b.co", "send": "maybe"}, "send"),
        ("/v1/people", {"email": "a@b.co", "channel": "sms"}, "channel"),
        ("/v1/people", {"email": "a@b.co", "channel": "fax"}, "channel"),
        ("/v1/people", {"email": "a@b.co", "last_sent_at": "yesterday"}, "last_sent_at"),
        ("/v1/survey_responses", {"score": "5"}, "person"),
        ("/v1/survey_responses", {"person": "999", "score": "5"}, "person"),
        ("/v1/survey_responses", {"person": "abc", "score": "5"}, "person"),
        ("/v1/unsubscribes", {}, "person_email"),
        ("/v1/unsubscribes", {"person_email": "nope"}, "person_email"),
    ],
)
def test_it_names_the_bad_parameter_with_422(
    dl: Delighted, path: str, body: dict[str, str], field: str
) -> None:
    assert error_field(dl.call("post", path, body)) == field
    assert Person.objects.count() == 0


def test_it_names_a_bad_score_and_a_properties_value_that_is_not_flat(dl: Delighted) -> None:
    pid = dl.call("post", "/v1/people", {"email": "s@example.com", "send": "false"}).json()["id"]
    for score in ("11", "-1", "seven", "4.5"):
        assert (
            error_field(dl.call("post", "/v1/survey_responses", {"person": pid, "score": score}))
            == "score"
        )
    nested = {"person": pid, "score": 3, "person_properties": {"a": {"b": 1}}}
    assert (
        error_field(dl.call("post", "/v1/survey_responses", nested, json_body=True))
        == "person_properties[a]"
    )
    assert Response.objects.count() == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"per_page": "0"}, "per_page"),
        ({"per_page": "101"}, "per_page"),
        ({"page": "x"}, "page"),
        ({"since": "2026-01-01"}, "since"),
        ({"until": "99999999999999999999"}, "until"),
        ({"order": "sideways"}, "order"),
        ({"expand[]": "account"}, "expand"),
        ({"person_email": "bad"}, "person_email"),
        ({"trend": "0"}, "trend"),
    ],
)
def test_it_names_bad_list_parameters(dl: Delighted, query: dict[str, str], field: str) -> None:
    assert error_field(dl.call("get", "/v1/survey_responses", query)) == field


def test_it_answers_404_for_unknown_things_and_405_for_other_methods(dl: Delighted) -> None:
    assert dl.call("get", "/v1/survey_responses/424242").status_code == 404
    assert dl.call("get", "/v1/survey_responses/abc.json").status_code == 404
    assert dl.call("delete", "/v1/people/email:nobody@example.com").status_code == 404
    assert dl.call("delete", "/v1/people/99999999999999999999999").status_code == 404
    assert (
        dl.call("delete", "/v1/people/nobody%40example.com/survey_requests/pending").status_code
        == 404
    )
    assert dl.call("put", "/v1/metrics").status_code == 405
    assert error_field(dl.call("delete", "/v1/people/colour:blue")) == "id"


def test_it_refuses_malformed_json_and_non_objects(dl: Delighted) -> None:
    bad = dl.http.post(
        "/v1/people", "{not json", content_type="application/json", HTTP_AUTHORIZATION=dl.auth
    )
    assert bad.status_code == 400
    listed = dl.call("post", "/v1/people", ["a"], json_body=True)
    assert error_field(listed) == "body"
    nul = dl.call("post", "/v1/people", {"email": "a@b.co", "name": "x\x00y"}, json_body=True)
    assert error_field(nul) == "body"


def test_it_keeps_a_response_update_to_its_person(dl: Delighted) -> None:
    pid = dl.call("post", "/v1/people", {"email": "u@example.com", "send": "false"}).json()["id"]
    rid = dl.call("post", "/v1/survey_responses", {"person": pid, "score": "8"}).json()["id"]
    moved = dl.call(
        "put", f"/v1/survey_responses/{rid}", {"person": "12345", "score": 2}, json_body=True
    )
    assert error_field(moved) == "person"
    bad = dl.call("put", f"/v1/survey_responses/{rid}.json", {"score": 20}, json_body=True)
    assert error_field(bad) == "score"
    assert Response.objects.get().score == 8


def test_it_changes_an_email_with_email_update(dl: Delighted) -> None:
    dl.call("post", "/v1/people", {"email": "old@example.com", "send": "false"})
    dl.call("post", "/v1/people", {"email": "taken@example.com", "send": "false"})
    clash = {"email": "old@example.com", "email_update": "taken@example.com", "send": "false"}
    assert error_field(dl.call("post", "/v1/people", clash)) == "email_update"
    moved = {"email": "old@example.com", "email_update": "new@example.com", "send": "false"}
    assert dl.call("post", "/v1/people", moved).json()["email"] == "new@example.com"
    assert set(Person.objects.values_list("email", flat=True)) == {
        "new@example.com",
        "taken@example.com",
    }


def test_it_keeps_the_date_of_a_back_dated_response(dl: Delighted) -> None:
    from datetime import UTC, datetime

    from closeloop.loop.models import FollowUpCase

    pid = dl.call("post", "/v1/people", {"email": "old@example.com", "send": "false"}).json()["id"]
    then = int(datetime(2025, 3, 14, 9, 30, tzinfo=UTC).timestamp())
    body = {"person": pid, "score": 2, "comment": "slow", "created_at": then}
    reply = dl.call("post", "/v1/survey_responses.json", body, json_body=True)
    assert reply.status_code == 201, reply.content
    assert reply.json()["created_at"] == then
    saved = Response.objects.get()
    assert saved.created_at == datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
    listed = dl.call("get", "/v1/survey_responses", {"until": then + 1}).json()
    assert [r["id"] for r in listed] == [str(saved.pk)]
    assert not FollowUpCase.objects.exists()  # history: a year-old 2 opens no case today


@pytest.mark.parametrize("value", ["yesterday", "-5", "900000000", "99999999999", "4102444800"])
def test_it_names_a_created_at_that_is_not_a_past_unix_time(dl: Delighted, value: str) -> None:
    pid = dl.call("post", "/v1/people", {"email": "x@example.com", "send": "false"}).json()["id"]
    body = {"person": pid, "score": "7", "created_at": value}
    assert error_field(dl.call("post", "/v1/survey_responses", body)) == "created_at"
    assert not Response.objects.exists()


def test_it_throttles_a_person_surveyed_elsewhere_by_last_sent_at(dl: Delighted) -> None:
    import time

    week_ago = int(time.time()) - 7 * 86400
    sent = dl.call("post", "/v1/people", {"email": "t@example.com", "last_sent_at": week_ago})
    assert sent.status_code == 200 and sent.json()["survey_scheduled_at"] is None
    listed = dl.call("get", "/v1/people", {"email": "t@example.com"}).json()
    assert listed[0]["last_sent_at"] == week_ago
    year_ago = {"email": "u@example.com", "last_sent_at": int(time.time()) - 365 * 86400}
    assert dl.call("post", "/v1/people", year_ago).json()["survey_scheduled_at"] is not None
    future = {"email": "v@example.com", "last_sent_at": int(time.time()) + 86400}
    assert error_field(dl.call("post", "/v1/people", future)) == "last_sent_at"


def test_it_changes_a_phone_number_with_phone_number_update(dl: Delighted) -> None:
    first = {"email": "p@example.com", "phone_number": "+15551230000", "send": "false"}
    dl.call("post", "/v1/people", first)
    moved = {"email": "p@example.com", "phone_number_update": "+15559870000", "send": "false"}
    assert dl.call("post", "/v1/people", moved).status_code == 200
    assert Person.objects.get().phone == "+15559870000"


def test_it_shows_the_thank_you_message_and_link_a_caller_gave(dl: Delighted) -> None:
    from closeloop.surveys import links
    from closeloop.surveys.models import SurveyRequest

    body = {
        "email": "ty@example.com",
        "properties[thank_you_message]": "Thanks, Dana will read this today.",
        "properties[thank_you_link_text]": "See what we shipped",
        "properties[thank_you_link_url]": "https://example.com/changelog",
    }
    assert dl.call("post", "/v1/people", body).status_code == 200
    request = SurveyRequest.objects.get()
    page = Client().post(links.page_url(request), {"score": "9", "comment": ""})
    assert page.status_code == 200
    text = page.content.decode()
    assert "Thanks, Dana will read this today." in text
    assert 'href="https://example.com/changelog"' in text and "See what we shipped" in text
    assert "thank_you_message" not in Person.objects.get().properties  # wording, not a fact
    bad = {"email": "ty2@example.com", "properties[thank_you_link_url]": "javascript:alert(1)"}
    assert error_field(dl.call("post", "/v1/people", bad)) == "properties[thank_you_link_url]"


def test_it_names_a_subject_or_product_name_too_long_for_an_email(dl: Delighted) -> None:
    from closeloop.surveys.models import SurveyRequest

    long_subject = {"email": "s@example.com", "properties[delighted_email_subject]": "x" * 201}
    field = error_field(dl.call("post", "/v1/people", long_subject))
    assert field == "properties[delighted_email_subject]"
    long_name = {"email": "s@example.com", "properties[question_product_name]": "y" * 101}
    assert (
        error_field(dl.call("post", "/v1/people", long_name)) == "properties[question_product_name]"
    )
    assert not SurveyRequest.objects.exists() and not Person.objects.exists()
