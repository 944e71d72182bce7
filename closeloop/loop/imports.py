"""CSV imports, run by the worker: the page stores the file and queues the import; the
worker checks every row (`surveys.csvio`), writes them in chunks (answers through
`intake`, so each is triaged like any other) and records its progress, which the
import's page shows as it goes. A large file never keeps a web request (or the
database) busy, and any web process can show any import's progress.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from django.db import transaction
from django.utils import timezone
from pydantic import BaseModel

from closeloop.core import claims
from closeloop.core.db import delete_some
from closeloop.core.errors import FieldError
from closeloop.surveys import csvio
from closeloop.surveys.csvio import WRITE_CHUNK, ImportReport, Problem
from closeloop.surveys.ingest import upsert_accounts, upsert_people
from closeloop.surveys.models import Account, CsvImport, Person, Response, Upload
from closeloop.surveys.schemas import PersonIn, ResponseIn

from .intake import record_responses

log = logging.getLogger("closeloop.imports")


def queue(uploaded: Any, kind: str, *, valid_only: bool, dry_run: bool, user: Any) -> CsvImport:
    """Keep the uploaded file and queue its import."""
    with transaction.atomic():
        upload = Upload.keep(uploaded, user)
        return CsvImport.objects.create(
            upload=upload,
            name=upload.name,
            kind=kind,
            valid_only=valid_only,
            dry_run=dry_run,
            created_by=user,
            phase="waiting for the worker",
        )


def _claim() -> CsvImport | None:
    now = timezone.now()
    free = CsvImport.objects.filter(status=CsvImport.Status.QUEUED) | CsvImport.objects.filter(
        status=CsvImport.Status.RUNNING, claimed_until__lt=now
    )
    taken = claims.claim(
        free.order_by("created_at", "pk"),
        status=CsvImport.Status.RUNNING,
        claimed_until=now + CsvImport.LEASE,
        phase="checking the rows",
    )
    return CsvImport.objects.select_related("upload").get(pk=taken[0]) if taken else None


def _progress(job: CsvImport) -> Any:
    def say(phase: str, done: int, total: int) -> None:
        CsvImport.objects.filter(pk=job.pk).update(
            phase=phase,
            rows_done=done,
            rows_total=total,
            claimed_until=timezone.now() + CsvImport.LEASE,
        )

    return say


def run(job: CsvImport) -> CsvImport:
    """Check and import one queued file, recording progress and the report."""
    say = _progress(job)
    try:
        if job.upload is None:
            raise csvio.CsvFileError("the uploaded file is no longer kept; upload it again")
        text = csvio.decode(bytes(job.upload.data))
        say("checking the rows", 0, 0)
        report = import_text(
            job.kind, text, valid_only=job.valid_only, dry_run=job.dry_run, progress=say
        )
        status, summary = CsvImport.Status.DONE, dataclasses.asdict(report)
    except csvio.CsvFileError as exc:
        status, summary = CsvImport.Status.FAILED, {"file_error": str(exc)}
    except Exception as exc:  # the import fails alone, saying why; the worker goes on
        log.exception("CSV import %s failed", job.pk)
        status, summary = CsvImport.Status.FAILED, {"file_error": f"{type(exc).__name__}: {exc}"}
    CsvImport.objects.filter(pk=job.pk).update(
        status=status,
        phase="done" if status == CsvImport.Status.DONE else "failed",
        report=summary,
        finished_at=timezone.now(),
        claimed_until=None,
    )
    job.refresh_from_db()
    return job


def handle_csv_import() -> bool:
    """Worker step: run the oldest queued CSV import; forget old uploads."""
    forgot = delete_some(Upload.objects.filter(created_at__lt=timezone.now() - Upload.KEPT), 100)
    job = _claim()
    if job is None:
        return forgot > 0
    run(job)
    return True


def report_of(job: CsvImport) -> csvio.ImportReport | None:
    """The finished import's report, as the import page shows it."""
    data = dict(job.report or {})
    if not data or "kind" not in data:
        return None
    problems = [csvio.Problem(**p) for p in data.pop("problems", [])]
    return csvio.ImportReport(**data, problems=problems)


def import_text(
    kind: str,
    text: str,
    *,
    valid_only: bool = False,
    dry_run: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> ImportReport:
    """Validate every row, then write all of them, or only the valid ones when
    `valid_only` is set.

    Rows are written WRITE_CHUNK at a time, each chunk in its own transaction, so a
    large file never holds the database for long; `progress(phase, done, total)` hears
    of each. Importing is idempotent (answers by their id or content, people by
    address, accounts by id or name), so a file stopped half-way is finished by
    importing it again, and nothing is created twice.
    """
    valid, report = csvio.read(kind, text)
    if valid:
        report.preview += _preview([item for _, item in valid])
    if dry_run or not valid or (report.problems and not valid_only):
        return report
    items = [item for _, item in valid]
    for start in range(0, len(items), WRITE_CHUNK):
        chunk = items[start : start + WRITE_CHUNK]
        try:
            with transaction.atomic():
                report.created += _write(kind, chunk)
        except FieldError as exc:
            where = f" (rows from {start + 2} on were not imported)" if start else ""
            report.problems.append(Problem(0, exc.field, exc.reason + where))
            break
        report.imported += len(chunk)
        if progress is not None:
            progress("writing", report.imported, len(items))
    report.written = report.imported > 0
    return report


def _preview(items: list[BaseModel]) -> list[str]:
    """What importing the valid rows would change: new and already-known answers and people."""
    lines = []
    people = [i.person if isinstance(i, ResponseIn) else i for i in items]
    emails = {p.email for p in people if isinstance(p, PersonIn) and p.email}
    known = Person.objects.filter(email__any=emails).count() if emails else 0
    if isinstance(items[0], ResponseIn):
        ids = {i.external_id for i in items if isinstance(i, ResponseIn) and i.external_id}
        stored = Response.objects.filter(external_id__any=ids).count() if ids else 0
        lines.append(
            f"{len(ids) - stored} new answer{'s' if len(ids) - stored != 1 else ''}, "
            f"{stored} already imported (left as they are)."
        )
    if emails:
        lines.append(f"{len(emails) - known} new people, {known} already known (updated).")
    return lines


def _write(kind: str, items: list[Any]) -> int:
    if kind == "delighted":
        kind = "responses" if isinstance(items[0], ResponseIn) else "people"
    if kind == "responses":
        outcomes = []
        data = [replace(i.to_data(), source=Response.Source.IMPORT) for i in items]
        for start in range(0, len(data), 1000):
            outcomes += record_responses(data[start : start + 1000])
        return sum(o.created for o in outcomes)
    if kind == "people":
        before = Person.objects.count()
        upsert_people([i.to_data() for i in items])
        return Person.objects.count() - before
    before = Account.objects.count()
    upsert_accounts([i.to_data() for i in items], source="csv")
    return Account.objects.count() - before
