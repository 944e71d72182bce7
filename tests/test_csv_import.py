"""CSV import: every row checked first, a report by row and column, no duplicates on re-import."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from closeloop.loop import imports
from closeloop.surveys import csvio
from closeloop.surveys.models import Account, Person, Response
from closeloop.team.models import User

pytestmark = pytest.mark.django_db

GOOD = """email,name,score,comment,created_at,account_external_id,account_name,tier,arr,plan_seats
ana@x.io,Ana,2,"Too slow, again",2026-03-01T10:00:00Z,a1,Acme,enterprise,"120,000.00",40
ben@x.io,Ben,9,Great,2026-03-02,a1,Acme,enterprise,,
cy@x.io,,6,,,a2,Beta,smb,5000,3
"""


def test_it_imports_answers_with_people_accounts_and_extra_columns() -> None:
    report = imports.import_text("responses", GOOD)
    assert report.ok and report.written and (report.imported, report.created) == (3, 3)
    ana = Response.objects.get(person__email="ana@x.io")
    assert ana.score == 2 and ana.comment == "Too slow, again" and ana.source == "import"
    assert ana.created_at.isoformat().startswith("2026-03-01T10:00:00")
    assert ana.person.properties == {"plan_seats": "40"}
    assert Account.objects.get(external_id="a1").arr_cents == 12_000_000
    assert Account.objects.count() == 2


def test_it_creates_nothing_when_the_same_file_is_imported_again() -> None:
    imports.import_text("responses", GOOD)
    again = imports.import_text("responses", GOOD)
    assert again.imported == 3 and again.created == 0
    assert Response.objects.count() == 3 and Person.objects.count() == 3


BAD = """email,score,comment,created_at,survey
ok@x.io,8,fine,,
bad-email,5,,,
two@x.io,eleven,,,
three@x.io,11,,,
four@x.io,4,,2026-02-30,
five@x.io,4,,,nosuchsurvey
six@x.io,3,,,,extra-cell
"""


def test_it_reports_every_bad_row_by_row_and_column_and_writes_nothing() -> None:
    report = imports.import_text("responses", BAD)
    assert not report.written and Response.objects.count() == 0 and Person.objects.count() == 0
    assert [(p.row, p.column) for p in report.problems] == [
        (3, "email"),
        (4, "score"),
        (5, "score"),
        (6, "created_at"),
        (7, "survey"),
        (8, "(row)"),
    ]
    assert "valid email" in report.problems[0].reason
    assert "valid integer" in report.problems[1].reason
    assert report.rows == 7 and report.valid == 1


def test_it_imports_only_the_valid_rows_when_asked() -> None:
    report = imports.import_text("responses", BAD, valid_only=True)
    assert report.written and report.imported == 1
    assert list(Response.objects.values_list("person__email", flat=True)) == ["ok@x.io"]


def test_it_writes_nothing_on_a_dry_run() -> None:
    report = imports.import_text("responses", GOOD, dry_run=True)
    assert report.ok and report.valid == 3 and not report.written
    assert Response.objects.count() == 0


@pytest.mark.parametrize(
    ("kind", "text", "column"),
    [
        ("responses", "email,comment\na@x.io,hi\n", "score"),
        ("responses", "score\n5\n", "email or person_external_id"),
        ("accounts", "tier\nsmb\n", "external_id or account_external_id or name or account_name"),
    ],
)
def test_it_names_a_missing_column(kind: str, text: str, column: str) -> None:
    report = imports.import_text(kind, text)
    assert [(p.row, p.column, p.reason) for p in report.problems] == [(1, column, "missing column")]


def test_it_refuses_a_file_that_is_not_utf8() -> None:
    raw = "email,score,comment\nzoë@x.io,3,très lent\n".encode("latin-1")
    with pytest.raises(csvio.CsvFileError, match="not UTF-8"):
        csvio.decode(raw)
    assert csvio.decode("\ufeffemail,score\n".encode()) == "email,score\n"


def test_it_imports_accounts_with_owners_and_people(agent: User) -> None:
    accounts = (
        "external_id,name,tier,arr,owner_email,region\n"
        "a1,Acme,enterprise,99000,ALEX@example.com,emea\n"
        "a2,Beta,smb,100,nobody@example.com,us\n"
    )
    report = imports.import_text("accounts", accounts)
    assert [(p.row, p.column) for p in report.problems] == [(3, "owner_email")]
    report = imports.import_text("accounts", accounts, valid_only=True)
    acme = Account.objects.get(external_id="a1")
    assert acme.owner == agent and acme.properties == {"region": "emea"}
    people = "email,name,account_external_id,role\nkim@x.io,Kim,a1,admin\n"
    assert imports.import_text("people", people).created == 1
    kim = Person.objects.get(email="kim@x.io")
    assert kim.account == acme and kim.properties == {"role": "admin"}


def test_it_runs_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(GOOD)
    bad.write_text(BAD)
    call_command("import_csv", str(good))
    assert "3 imported (3 new)" in capsys.readouterr().out
    with pytest.raises(CommandError, match="import refused"):
        call_command("import_csv", str(bad))
    assert "row 3, column email" in capsys.readouterr().err
    call_command("import_csv", str(bad), "--valid-only")
    assert Response.objects.count() == 4
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_csv", str(tmp_path / "missing.csv"))


def test_it_neutralises_formulas_on_export() -> None:
    assert csvio.safe_cell('=HYPERLINK("http://evil")') == '\'=HYPERLINK("http://evil")'
    for start in "=+-@\t\r":
        assert csvio.safe_cell(f"{start}1+1").startswith("'")
    assert csvio.safe_cell("fine") == "fine" and csvio.safe_cell(7) == "7"
    assert csvio.safe_cell(None) == ""


def test_it_refuses_a_file_with_nul_characters_or_oversized_cells() -> None:
    with pytest.raises(csvio.CsvFileError, match="line 2 contains a NUL"):
        imports.import_text("responses", "email,score\na@x.io,3\x00\n")
    with pytest.raises(csvio.CsvFileError, match="after line 1: field larger than field limit"):
        imports.import_text("responses", 'email,score,comment\na@x.io,3,"' + "x" * 200_000 + '"\n')
    assert Response.objects.count() == 0


def test_it_neutralises_formulas_after_a_semicolon_and_keeps_real_numbers_numeric() -> None:
    # A spreadsheet whose list separator is ";" splits such a cell and runs the second part.
    assert csvio.safe_cell("Great tool;=cmd|' /C calc'!A0") == "Great tool;'=cmd|' /C calc'!A0"
    assert csvio.safe_cell("a; +1") == "a; '+1" and csvio.safe_cell("a;b") == "a;b"
    # Real negative numbers (a score change, a credit) stay numbers.
    assert csvio.safe_cell(-3) == "-3" and csvio.safe_cell(-12.5) == "-12.5"
    assert csvio.safe_cell("-7") == "-7" and csvio.safe_cell("-0.25") == "-0.25"
    assert csvio.safe_cell("-1+1").startswith("'") and csvio.safe_cell("-").startswith("'")
