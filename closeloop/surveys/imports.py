"""CSV imports run by the worker: the page stores the file and queues the import; the
worker checks every row, writes them in chunks and records its progress, which the
import's page shows as it goes. A large file never keeps a web request (or the
database) busy, and any web process can show any import's progress.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from closeloop.core import claims
from closeloop.core.db import delete_some

from . import csvio
from .models import CsvImport, Upload

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
        report = csvio.import_text(
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
