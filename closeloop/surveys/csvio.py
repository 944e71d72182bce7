"""CSV import and export of accounts, people and answers.

Import reads the whole file, validates every row with the same rules as the API
(`schemas.py`), and reports each problem by row and column. Nothing is written
when any row fails, unless the caller asks to import the valid rows; then the
valid rows are written in one transaction. Re-importing a file changes nothing:
people and accounts are upserted, and each answer row gets a stable id derived
from its content unless the file gives one.

Export streams rows and neutralises spreadsheet formulas.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ValidationError

from closeloop.team.models import User

from .models import Account, Person, Response, Survey
from .schemas import AccountIn, PersonIn, ResponseIn

KINDS = ("responses", "people", "accounts", "delighted")

# CSV column → where its value goes in the API shape. Columns not listed here
# become properties of the person (or, for the accounts file, of the account).
ACCOUNT_COLUMNS: dict[str, tuple[str, ...]] = {
    "account_external_id": ("external_id",),
    "account_name": ("name",),
    "tier": ("tier",),
    "arr": ("arr",),
    "currency": ("currency",),
    "plan": ("plan",),
    "company_size": ("company_size",),
    "industry": ("industry",),
    "customer_since": ("customer_since",),
}
PERSON_COLUMNS: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "person_external_id": ("external_id",),
    "name": ("name",),
    "phone": ("phone",),
    "locale": ("locale",),
    **{col: ("account", *path) for col, path in ACCOUNT_COLUMNS.items()},
}
RESPONSE_COLUMNS: dict[str, tuple[str, ...]] = {
    "score": ("score",),
    "comment": ("comment",),
    "created_at": ("created_at",),
    "response_id": ("external_id",),
    "survey": ("survey",),
    "tags": ("tags",),
    "notes": ("notes",),
    **{col: ("person", *path) for col, path in PERSON_COLUMNS.items()},
}
# In the accounts file the account's own columns have plain names too.
ACCOUNTS_FILE_COLUMNS: dict[str, tuple[str, ...]] = {
    **ACCOUNT_COLUMNS,
    "external_id": ("external_id",),
    "name": ("name",),
    "owner_email": ("owner_email",),
    "executive_sponsor_email": ("executive_sponsor_email",),
    "churned_at": ("churned_at",),
    "churn_reason": ("churn_reason",),
}
# Columns the responses export writes that describe the stored row rather than the answer;
# the import skips them so a re-imported export does not grow them as custom properties.
EXPORT_ONLY_COLUMNS = {"responses": {"id", "category", "source"}}
REQUIRED: dict[str, list[list[str]]] = {
    # Each inner list: at least one of these columns must be present in the header.
    "responses": [["score"], ["email", "person_external_id"]],
    "people": [["email", "person_external_id"]],
    "accounts": [["external_id", "account_external_id", "name", "account_name"]],
}
COLUMNS = {
    "responses": RESPONSE_COLUMNS,
    "people": PERSON_COLUMNS,
    "accounts": ACCOUNTS_FILE_COLUMNS,
}
SCHEMAS: dict[str, type[BaseModel]] = {
    "responses": ResponseIn,
    "people": PersonIn,
    "accounts": AccountIn,
}


@dataclass
class Problem:
    """One reason a row (or the file) cannot be imported. Row 1 is the header."""

    row: int
    column: str
    reason: str


@dataclass
class ImportReport:
    """What an import found and did."""

    kind: str
    rows: int = 0
    valid: int = 0
    imported: int = 0
    created: int = 0
    problems: list[Problem] = field(default_factory=list)
    written: bool = False
    # What a check found, in words: new vs known rows, how columns were read.
    preview: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class CsvFileError(ValueError):
    """The file as a whole cannot be read."""


def decode(raw: bytes) -> str:
    """The file's text; UTF-8 (with or without a byte-order mark) is required."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvFileError(
            f"the file is not UTF-8 (byte 0x{raw[exc.start]:02x} at position {exc.start}); "
            "save it as 'CSV UTF-8' and upload again"
        ) from None


def _set(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value


def _convert(path: tuple[str, ...], value: str) -> Any:
    """Turn the text of a cell into what the schema expects."""
    name = path[-1]
    if path == ("score",):
        try:
            return int(value)
        except ValueError:
            return value  # the schema names it: "Input should be a valid integer"
    if name == "arr":
        try:
            return Decimal(value.replace(",", ""))
        except InvalidOperation:
            return value
    if path == ("tags",):
        return [t.strip() for t in value.replace(";", ",").split(",") if t.strip()]
    return value


def _row_to_body(kind: str, row: dict[str, str]) -> dict[str, Any]:
    columns = COLUMNS[kind]
    skipped = EXPORT_ONLY_COLUMNS.get(kind, set())
    body: dict[str, Any] = {}
    props: dict[str, Any] = {}
    for column, raw in row.items():
        value = (raw or "").strip()
        if not value or column is None or column in skipped:
            continue
        if column in columns:
            _set(body, columns[column], _convert(columns[column], value))
        else:
            props[column] = value
    if props:
        holder = body.setdefault("person", {}) if kind == "responses" else body
        holder.setdefault("properties", {}).update(props)
    if kind == "responses" and "external_id" not in body:
        body["external_id"] = _content_id(row)
    return body


def _content_id(row: dict[str, str]) -> str:
    """A stable id for an answer row without one, so re-importing it creates nothing."""
    key = "\x1f".join(
        (row.get(c) or "").strip()
        for c in ("email", "person_external_id", "score", "comment", "created_at")
    )
    return "csv:" + hashlib.sha256(key.encode()).hexdigest()[:40]


def _column_for(kind: str, loc: tuple[Any, ...], header: list[str]) -> str:
    path = tuple(str(p) for p in loc)
    for column, target in COLUMNS[kind].items():
        if path[: len(target)] == target and column in header:
            return column
    if "properties" in path:
        return path[path.index("properties") + 1] if path[-1] != "properties" else "properties"
    return ".".join(path) or "(row)"


# Delighted's export headers (responses or people), compared in lower case with spaces,
# and the columns they stand for here. Columns not listed become person properties;
# None marks columns that describe Delighted's own record and are dropped.
DELIGHTED_COLUMNS: dict[str, str | None] = {
    "response id": "response_id",
    "score": "score",
    "nps score": "score",
    "rating": "score",
    "comment": "comment",
    "comments": "comment",
    "reason": "comment",
    "name": "name",
    "person name": "name",
    "email": "email",
    "person email": "email",
    "email address": "email",
    "phone number": "phone",
    "phone": "phone",
    "date": "created_at",
    "created": "created_at",
    "created at": "created_at",
    "response date": "created_at",
    "response timestamp": "created_at",
    "timestamp": "created_at",
    "tags": "tags",
    "notes": "notes",
    "locale": "locale",
    "last updated": None,
    "updated at": None,
    "permalink": None,
    "survey type": None,
    "person id": None,
}
_DELIGHTED_TIMES = (
    "%Y-%m-%d %H:%M:%S %z",
    "%Y-%m-%d %H:%M:%S %Z",
    "%Y-%m-%d %H:%M %z",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
)


def _delighted_header(header: list[str]) -> dict[str, str | None]:
    """Delighted's column → ours (None: dropped); unlisted columns stay as properties."""
    return {
        column: DELIGHTED_COLUMNS.get(" ".join(column.lower().replace("_", " ").split()), column)
        for column in header
    }


def _delighted_time(value: str) -> str:
    """Delighted's export times (several shapes over the years) as ISO 8601, if we can read them."""
    text = value.strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text), tz=UTC).isoformat()
    if text.endswith(" UTC"):
        text = text[:-4] + " +0000"
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()
    except ValueError:
        pass
    for shape in _DELIGHTED_TIMES:
        try:
            return datetime.strptime(text, shape).isoformat()
        except ValueError:
            continue
    return value  # the schema names it


def _delighted_row(row: dict[str, str], rename: dict[str, str | None]) -> dict[str, str]:
    ours: dict[str, str] = {}
    for column, value in row.items():
        target = rename.get(column, column)
        if target is None or column is None:
            continue
        ours[target] = value
    if (ours.get("created_at") or "").strip():
        ours["created_at"] = _delighted_time(ours["created_at"])
    if (ours.get("response_id") or "").strip():
        ours["response_id"] = f"delighted:{ours['response_id'].strip()}"
    return ours


def read(kind: str, text: str) -> tuple[list[tuple[int, BaseModel]], ImportReport]:
    """Parse and validate every row; returns the valid rows (with row numbers) and a report.

    A Delighted export ("delighted") is read as answers when it has a score
    column and as people otherwise; problems name Delighted's own columns.
    """
    if kind not in KINDS:
        raise CsvFileError(f"kind must be one of {', '.join(KINDS)}")
    report = ImportReport(kind=kind)
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise CsvFileError(f"line {line} contains a NUL character: is this really a CSV file?")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise CsvFileError("the file is empty: the first line must name the columns")
    reader.fieldnames = header
    rename: dict[str, str | None] | None = None
    theirs: dict[str, str] = {}
    if kind == "delighted":
        rename = _delighted_header(header)
        theirs = {ours: col for col, ours in rename.items() if ours is not None}
        kind = "responses" if "score" in rename.values() else "people"
        # A column only answers have (a date, tags) is a plain property of a person.
        rename = {
            col: ours if ours is None or ours in COLUMNS[kind] else col
            for col, ours in rename.items()
        }
        theirs = {ours: col for col, ours in rename.items() if ours is not None}
        header = [ours for ours in rename.values() if ours is not None]
        report.preview.append(f"Read as a Delighted export of {kind}.")
        own = set(COLUMNS[kind])
        extra = [c for c, ours in rename.items() if ours is not None and ours not in own]
        dropped = [c for c, ours in rename.items() if ours is None]
        if extra:
            report.preview.append("Kept as person properties: " + ", ".join(extra) + ".")
        if dropped:
            report.preview.append(
                "Not imported (Delighted's own bookkeeping): " + ", ".join(dropped) + "."
            )
    for group in REQUIRED[kind]:
        if not any(col in header for col in group):
            names = " or ".join(theirs.get(c, c) for c in group)
            report.problems.append(Problem(1, names, "missing column"))
    if report.problems:
        return [], report
    valid: list[tuple[int, BaseModel]] = []
    schema = SCHEMAS[kind]
    known = _known_references(kind)
    try:
        for number, row in enumerate(reader, start=2):
            report.rows += 1
            if None in row:
                report.problems.append(Problem(number, "(row)", "more cells than header columns"))
                continue
            if rename is not None:
                row = _delighted_row(row, rename)
            try:
                item = schema.model_validate(_row_to_body(kind, row))
            except ValidationError as exc:
                for err in exc.errors():
                    column = _column_for(kind, err["loc"], header)
                    report.problems.append(Problem(number, theirs.get(column, column), err["msg"]))
                continue
            missing = _unknown_reference(item, known)
            if missing:
                report.problems.append(Problem(number, *missing))
                continue
            valid.append((number, item))
    except csv.Error as exc:
        raise CsvFileError(f"after line {reader.line_num}: {exc}") from None
    report.valid = len(valid)
    return valid, report


def _known_references(kind: str) -> dict[str, set[str]]:
    """The survey slugs and owner emails that rows may name."""
    if kind == "responses":
        return {"survey": set(Survey.objects.values_list("slug", flat=True))}
    if kind == "accounts":
        return {"owner_email": {e.lower() for e in User.objects.values_list("email", flat=True)}}
    return {}


def _unknown_reference(item: BaseModel, known: dict[str, set[str]]) -> tuple[str, str] | None:
    survey = getattr(item, "survey", None)
    if survey and survey not in known.get("survey", set()):
        return "survey", f"no survey with slug {survey!r}"
    for column in ("owner_email", "executive_sponsor_email"):
        email = getattr(item, column, None)
        if email and email.lower() not in known.get("owner_email", set()):
            return column, f"no closeloop user has the email {email}"
    return None


WRITE_CHUNK = 1000


# --- export -------------------------------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
# A spreadsheet whose list separator is ";" splits a cell there: each part is guarded too.
_AFTER_SEMICOLON = re.compile(r"(;\s*)(?=[=+\-@])")


def safe_cell(value: Any) -> str:
    """A cell a spreadsheet will not run: text starting like a formula (or with a part
    after a ";" starting like one) gets a quote before it; real numbers stay numbers."""
    if value is None:
        return ""
    text = str(value)
    if _NUMBER.fullmatch(text):
        return text
    if text.startswith(FORMULA_STARTS):
        text = "'" + text
    return _AFTER_SEMICOLON.sub(r"\1'", text)


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(header: list[str], rows: Iterable[list[Any]]) -> Iterator[str]:
    """Yield CSV text line by line (for streaming), every cell made safe."""
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([safe_cell(v) for v in row])


RESPONSE_EXPORT_HEADER = [
    "id",
    "created_at",
    "score",
    "category",
    "comment",
    "email",
    "name",
    "person_external_id",
    "account_external_id",
    "account_name",
    "tier",
    "source",
    "survey",
    "tags",
    "response_id",
]


def response_rows(qs: Iterable[Response]) -> Iterator[list[Any]]:
    """Export rows for answers; the columns read back in by the responses import."""
    for r in qs:
        account = r.account
        yield [
            r.pk,
            r.created_at.isoformat(),
            r.score,
            r.category,
            r.comment,
            r.person.email,
            r.person.name,
            r.person.external_id,
            account.external_id if account else "",
            account.name if account else "",
            account.tier if account else "",
            r.source,
            r.survey.slug,
            ",".join(r.tags),
            r.external_id,
        ]


PEOPLE_EXPORT_HEADER = [
    "email",
    "person_external_id",
    "name",
    "phone",
    "locale",
    "account_external_id",
    "account_name",
    "unsubscribed_at",
    "bounced_at",
]


def people_rows(qs: Iterable[Person]) -> Iterator[list[Any]]:
    """Export rows for people (custom properties are not exported yet)."""
    for p in qs:
        yield [
            p.email,
            p.external_id,
            p.name,
            p.phone,
            p.locale,
            p.account.external_id if p.account else "",
            p.account.name if p.account else "",
            p.unsubscribed_at.isoformat() if p.unsubscribed_at else "",
            p.bounced_at.isoformat() if p.bounced_at else "",
        ]


ACCOUNT_EXPORT_HEADER = [
    "external_id",
    "name",
    "tier",
    "arr",
    "currency",
    "plan",
    "company_size",
    "industry",
    "customer_since",
    "owner_email",
    "executive_sponsor_email",
    "churned_at",
    "churn_reason",
]


def account_rows(qs: Iterable[Account]) -> Iterator[list[Any]]:
    """Export rows for accounts, ARR in currency units."""
    for a in qs:
        yield [
            a.external_id,
            a.name,
            a.tier,
            f"{a.arr_cents / 100:.2f}",
            a.currency,
            a.plan,
            a.company_size,
            a.industry,
            a.customer_since.isoformat() if a.customer_since else "",
            a.owner.email if a.owner else "",
            a.executive_sponsor.email if a.executive_sponsor else "",
            a.churned_at.isoformat() if a.churned_at else "",
            a.churn_reason,
        ]
