"""API keys: bearer authentication, read-only scope, revocation, hashed storage."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from closeloop.api.models import ApiKey
from closeloop.surveys.models import Response

from .conftest import ApiClient, answer

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("header", [None, "Bearer nope", "Bearer cl_abcd1234_wrong", "Basic x"])
def test_it_refuses_a_missing_or_unknown_key(header: str | None) -> None:
    client = ApiClient(None)
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    r = client.post_json("/api/v1/responses", answer(), **extra)
    assert r.status_code == 401
    assert "API key" in r.json()["detail"]
    assert client.get_json("/api/v1/metrics", **extra).status_code == 401
    assert Response.objects.count() == 0


def test_it_refuses_a_revoked_key(api: ApiClient) -> None:
    ApiKey.objects.get().revoke()
    assert api.get_json("/api/v1/responses").status_code == 401


def test_it_lets_a_read_only_key_read_but_not_write(read_only_api: ApiClient) -> None:
    assert read_only_api.get_json("/api/v1/responses").status_code == 200
    for path, body in [
        ("/api/v1/responses", answer()),
        ("/api/v1/responses/batch", {"responses": [answer()]}),
        ("/api/v1/people", {"email": "p@x.io"}),
        ("/api/v1/accounts", {"name": "Acme"}),
    ]:
        r = read_only_api.post_json(path, body)
        assert r.status_code == 403, path
        assert "read-only" in r.json()["detail"]
    assert Response.objects.count() == 0


def test_it_stores_only_a_hash_and_records_last_use(api: ApiClient) -> None:
    key = ApiKey.objects.get()
    assert api.key is not None and api.key not in key.hashed_key
    assert key.last_used_at is None
    api.get_json("/api/v1/responses")
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_it_prints_a_working_key_from_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("create_api_key", "script", "--read-only")
    plain = capsys.readouterr().out.strip()
    assert plain.startswith("cl_") and "\n" not in plain
    client = ApiClient(plain)
    assert client.get_json("/api/v1/responses").status_code == 200
    assert client.post_json("/api/v1/responses", answer()).status_code == 403


def test_it_serves_the_openapi_document(api: ApiClient) -> None:
    schema = api.get("/api/v1/openapi.json").json()
    assert "/api/v1/responses/batch" in schema["paths"]
    assert api.get("/api/v1/docs").status_code == 200
