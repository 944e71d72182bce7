"""Importing Delighted's CSV exports: a preview first, then an import that can be repeated."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from closeloop.loop import imports
from closeloop.surveys.models import Person, Response

pytestmark = pytest.mark.django_db

RESPONSES = (
    "Response ID,Date,Score,Comment,Name,Email,Tags,Notes,Last updated,Plan,Country\n"
    '9001,2025-03-04 12:30:00 UTC,3,"Exports time out, again",Pat Lee,Pat@Example.com,'
    '"exports, speed",Called her,2025-03-05 09:00:00 UTC,Pro,NL\n'
    "9002,2025-03-05T08:00:00Z,10,Love it,Sam Roe,sam@example.com,,,,Starter,\n"
    "9003,1741176000,8,,Ana,ana@example.com,,,,,DE\n"
)


def test_it_previews_a_responses_export_without_writing(db: Any) -> None:
    report = imports.import_text("delighted", RESPONSES, dry_run=True)
    assert report.ok and report.rows == 3 and not report.written
    assert "Read as a Delighted export of responses." in report.preview
    assert "Kept as person properties: Plan, Country." in report.preview
    assert "Not imported (Delighted's own bookkeeping): Last updated." in report.preview
    assert "3 new answers, 0 already imported (left as they are)." in report.preview
    assert not Response.objects.exists() and not Person.objects.exists()


def test_it_imports_every_column_and_creates_nothing_the_second_time(db: Any) -> None:
    first = imports.import_text("delighted", RESPONSES)
    assert first.written and first.created == 3
    pat = Response.objects.get(person__email="pat@example.com")
    assert (pat.score, pat.comment, pat.tags) == (
        3,
        "Exports time out, again",
        ["exports", "speed"],
    )
    assert pat.notes == "Called her" and pat.external_id == "delighted:9001"
    assert pat.created_at.isoformat() == "2025-03-04T12:30:00+00:00"
    assert pat.person.name == "Pat Lee"
    assert pat.person.properties == {"Plan": "Pro", "Country": "NL"}
    assert Response.objects.get(external_id="delighted:9003").created_at.year == 2025
    again = imports.import_text("delighted", RESPONSES)
    assert again.written and again.created == 0
    assert "0 new answers, 3 already imported (left as they are)." in again.preview
    assert Response.objects.count() == 3
    # Historical answers open no follow-up cases.
    assert not pat.person.cases.exists()


def test_it_reads_a_people_export_as_people(db: Any) -> None:
    people = "Email,Name,Created,Company\nkim@example.com,Kim,2024-01-02,Acme\n"
    report = imports.import_text("delighted", people)
    assert report.written and "Read as a Delighted export of people." in report.preview
    assert Person.objects.get().properties == {"Created": "2024-01-02", "Company": "Acme"}


def test_it_names_delighteds_own_columns_in_problems(db: Any) -> None:
    bad = (
        "Response ID,Date,Score,Email\n"
        "1,2025-01-01,11,a@example.com\n"
        "2,someday,5,b@example.com\n"
        "3,2025-01-01,5,not-an-email\n"
    )
    report = imports.import_text("delighted", bad)
    assert not report.written and not Response.objects.exists()
    assert [(p.row, p.column) for p in report.problems] == [
        (2, "Score"),
        (3, "Date"),
        (4, "Email"),
    ]
    missing = imports.import_text("delighted", "Score,Comment\n5,ok\n")
    assert [(p.row, p.column) for p in missing.problems] == [(1, "email or person_external_id")]


def test_it_imports_from_the_command_line_with_a_dry_run(tmp_path: Any, capsys: Any) -> None:
    path = tmp_path / "delighted.csv"
    path.write_text(RESPONSES, encoding="utf-8")
    call_command("import_csv", str(path), "--kind", "delighted", "--dry-run")
    assert not Response.objects.exists()
    call_command("import_csv", str(path), "--kind", "delighted")
    assert Response.objects.count() == 3
    path.write_text("Score,Email\nten,x@example.com\n", encoding="utf-8")
    with pytest.raises(CommandError):
        call_command("import_csv", str(path), "--kind", "delighted")
