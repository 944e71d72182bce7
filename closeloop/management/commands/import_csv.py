"""`manage.py import_csv FILE --kind KIND [--valid-only] [--dry-run]`: KIND is responses,
people, accounts or delighted.

`--kind delighted` reads a Delighted export of responses or people as it is.
"""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from closeloop.loop import imports
from closeloop.surveys import csvio


class Command(BaseCommand):
    help = (
        "Import a UTF-8 CSV of answers, people or accounts. Every row is checked first; "
        "nothing is written if any row fails unless --valid-only is given."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--kind", choices=csvio.KINDS, default="responses")
        parser.add_argument("--valid-only", action="store_true", help="import the valid rows")
        parser.add_argument("--dry-run", action="store_true", help="check only, write nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            text = csvio.decode(path.read_bytes())
            report = imports.import_text(
                options["kind"],
                text,
                valid_only=options["valid_only"],
                dry_run=options["dry_run"],
            )
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from None
        except csvio.CsvFileError as exc:
            raise CommandError(f"{path}: {exc}") from None
        for p in report.problems:
            self.stderr.write(f"row {p.row}, column {p.column}: {p.reason}")
        self.stdout.write(
            f"{report.rows} rows, {report.valid} valid, {len(report.problems)} problems; "
            f"{report.imported} imported ({report.created} new)"
            + ("" if report.written else " — nothing written")
        )
        if report.problems and not options["valid_only"]:
            raise CommandError("import refused: fix the rows above or pass --valid-only")
