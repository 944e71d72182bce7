"""Pages through Django's client: permissions, exports and bad input."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from closeloop.loop.intake import record_responses
from closeloop.surveys.ingest import PersonData, ResponseData
from closeloop.surveys.models import CsvImport, Response
from closeloop.team.models import User

from .conftest import drain

pytestmark = pytest.mark.django_db


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("path", ["/", "/responses/", "/import/", "/responses/export.csv"])
def test_it_requires_login(path: str) -> None:
    r = Client().get(path)
    assert r.status_code == 302 and r["Location"].startswith("/login/")


def test_it_keeps_viewers_out_of_import(viewer: User) -> None:
    client = _client(viewer)
    assert client.get("/").status_code == 200
    assert client.get("/import/").status_code == 403


def test_it_exports_filtered_answers_with_formulas_neutralised(agent: User) -> None:
    record_responses(
        [
            ResponseData(
                person=PersonData(email="a@x.io", name="=cmd|' /C calc'!A0"),
                score=2,
                comment="@SUM(1+1)",
            ),
            ResponseData(person=PersonData(email="b@x.io"), score=10, comment="great"),
        ]
    )
    r = _client(agent).get("/responses/export.csv", {"category": "detractor"})
    assert r.status_code == 200 and r["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert len(rows) == 1
    assert rows[0]["comment"] == "'@SUM(1+1)" and rows[0]["name"].startswith("'=")


def imported(client: Client, form: dict[str, Any]) -> Any:
    """Upload a CSV on the import page, let the worker run it, and open its page."""
    queued = client.post("/import/", form)
    assert queued.status_code == 302, queued.content[:300]
    waiting = client.get(queued["Location"])
    assert b"Waiting for the worker" in waiting.content
    drain()
    return client.get(queued["Location"])


def test_it_imports_a_csv_in_the_worker_and_shows_its_progress(agent: User) -> None:
    rows = "".join(f"p{i}@x.io,{i % 11}\n" for i in range(2500))
    upload = SimpleUploadedFile("big.csv", ("email,score\n" + rows).encode())
    page = imported(_client(agent), {"kind": "responses", "file": upload})
    assert page.context["report"].imported == 2500 and Response.objects.count() == 2500
    job = CsvImport.objects.get()
    assert (job.status, job.rows_done, job.rows_total, job.percent) == ("done", 2500, 2500, 100)
    assert b"Imported 2500 rows" in page.content and b"big.csv" in page.content


def test_it_does_not_turn_export_only_columns_into_properties(agent: User) -> None:
    record_responses([ResponseData(person=PersonData(email="a@x.io"), score=4, comment="meh")])
    body = b"".join(_client(agent).get("/responses/export.csv").streaming_content)
    Response.objects.all().delete()
    upload = SimpleUploadedFile("responses.csv", body, content_type="text/csv")
    r = imported(_client(agent), {"kind": "responses", "file": upload})
    assert r.context["report"].created == 1
    assert Response.objects.get().person.properties == {}


def test_it_round_trips_an_export_through_the_import(agent: User) -> None:
    record_responses(
        [ResponseData(person=PersonData(email="a@x.io"), score=4, comment="meh", external_id="r-1")]
    )
    body = b"".join(_client(agent).get("/responses/export.csv").streaming_content)
    upload = SimpleUploadedFile("responses.csv", body, content_type="text/csv")
    r = imported(_client(agent), {"kind": "responses", "file": upload})
    assert r.status_code == 200
    assert r.context["report"].ok and r.context["report"].created == 0
    assert Response.objects.count() == 1


def test_it_reports_a_bad_filter_instead_of_failing(agent: User) -> None:
    r = _client(agent).get("/responses/", {"since": "not-a-date"})
    assert r.status_code == 200
    assert "since" in r.context["error"]
    r = _client(agent).get("/responses/export.csv", {"band": "awful"})
    assert r.status_code == 400


def test_it_refuses_a_non_utf8_upload_with_a_message(agent: User) -> None:
    upload = SimpleUploadedFile("x.csv", "email,score\nzoë@x.io,3\n".encode("latin-1"))
    r = imported(_client(agent), {"kind": "responses", "file": upload})
    assert "not UTF-8" in r.context["file_error"]
    assert Response.objects.count() == 0


def test_it_refuses_an_upload_without_a_file_or_with_a_bad_kind(agent: User) -> None:
    r = _client(agent).post("/import/", {"kind": "planets"})
    assert r.status_code == 200
    assert "kind" in r.context["form"].errors and "file" in r.context["form"].errors


def test_it_answers_health_checks_without_login() -> None:
    r = Client().get("/health")
    assert r.status_code == 200 and r.content == b"ok"


def test_it_lets_an_admin_issue_a_key_shown_once_and_revoke_it(admin_user: User) -> None:
    from closeloop.access.models import ApiKey

    client = _client(admin_user)
    r = client.post("/settings/api-keys/", {"name": "billing sync", "scope": "read"})
    plain = r.context["new_key"]
    key = ApiKey.objects.get()
    assert key.name == "billing sync" and not key.can_write
    assert ApiKey.authenticate(plain) == key
    listing = client.get("/settings/api-keys/")
    assert plain not in listing.content.decode() and key.prefix in listing.content.decode()
    client.post("/settings/api-keys/", {"revoke": str(key.pk)})
    assert ApiKey.authenticate(plain) is None


def test_it_keeps_non_admins_out_of_api_keys(agent: User) -> None:
    assert _client(agent).get("/settings/api-keys/").status_code == 403


def test_it_names_a_missing_key_name_and_refuses_a_bad_revoke(admin_user: User) -> None:
    r = _client(admin_user).post("/settings/api-keys/", {"name": ""})
    assert "name" in r.context["form"].errors and r.context["new_key"] is None
    assert _client(admin_user).post("/settings/api-keys/", {"revoke": "abc"}).status_code == 400
