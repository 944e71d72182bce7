"""API keys: bearer authentication, read-only scope, revocation, hashed storage."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from closeloop.access.models import ApiKey
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


SETTINGS_CHANGES = [
    ("post", "/api/v1/channels", {"kind": "webhook", "url": "https://hooks.example.com/x"}),
    ("put", "/api/v1/teams", {"name": "EMEA", "members": []}),
    ("post", "/api/v1/routing-rules", {"name": "EMEA first", "team": "EMEA"}),
    ("put", "/api/v1/triage-policy", {}),
    ("put", "/api/v1/templates/automated_email_survey/en", {"subject": "s", "body": "b"}),
    ("post", "/api/v1/announcements", {"title": "Exports fixed"}),
    ("post", "/api/v1/themes", {"name": "Billing surprises"}),
    ("put", "/api/v1/themes/billing", {"name": "Renamed by a script"}),
    ("post", "/api/v1/themes/billing/merge", {"into": "pricing"}),
    ("post", "/api/v1/themes/billing/retire", {}),
    ("post", "/api/v1/themes/retrain", {}),
    ("post", "/api/v1/themes/discoveries", {"since": "2026-01-01", "until": "2026-02-01"}),
]


@pytest.mark.parametrize(("method", "path", "body"), SETTINGS_CHANGES)
def test_it_keeps_settings_and_the_taxonomy_for_admin_keys(
    writer_api: ApiClient, method: str, path: str, body: dict[str, object]
) -> None:
    from closeloop.themes.models import Theme

    before = sorted(Theme.objects.values_list("slug", "name", "retired_at"))
    send = writer_api.post_json if method == "post" else writer_api.client_put
    r = send(path, body)
    assert r.status_code == 403, (path, r.content)
    assert "admin API key" in r.json()["detail"]
    assert sorted(Theme.objects.values_list("slug", "name", "retired_at")) == before


def test_it_lets_a_read_write_key_change_answers_people_and_cases(writer_api: ApiClient) -> None:
    assert writer_api.post_json("/api/v1/responses", answer(score=3)).status_code in (200, 201)
    assert writer_api.post_json("/api/v1/people", {"email": "p@x.io"}).status_code in (200, 201)
    assert writer_api.post_json("/api/v1/accounts", {"name": "Acme"}).status_code in (200, 201)
    case = writer_api.get_json("/api/v1/cases").json()["results"][0]
    note = writer_api.post_json(f"/api/v1/cases/{case['id']}/notes", {"text": "Called, no answer"})
    assert note.status_code == 200, note.content


def test_it_shows_channel_secrets_and_urls_to_admin_keys_only(
    api: ApiClient, writer_api: ApiClient, read_only_api: ApiClient
) -> None:
    made = api.post_json(
        "/api/v1/channels", {"kind": "slack", "url": "https://hooks.example.com/T0/B0/secretpath"}
    ).json()
    assert made["secret"] and made["url"].endswith("secretpath")
    for client in (writer_api, read_only_api):
        (seen,) = client.get_json("/api/v1/channels").json()
        assert seen["secret"] == "" and "secretpath" not in seen["url"]
        assert seen["url"] == "https://hooks.example.com/…"
    (full,) = api.get_json("/api/v1/channels").json()
    assert full["secret"] == made["secret"]


def test_it_prints_an_admin_key_from_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("create_api_key", "ops", "--admin")
    plain = capsys.readouterr().out.strip()
    assert ApiKey.authenticate(plain) is not None and ApiKey.authenticate(plain).is_admin  # type: ignore[union-attr]
    with pytest.raises(CommandError, match="not allowed with"):
        call_command("create_api_key", "both", "--admin", "--read-only")
