"""`manage.py create_api_key NAME [--read-only] [--key KEY]`: print a new API key on its own line.

`--key` adopts a key made elsewhere (an old Delighted API key), so scripts keep theirs.
"""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from closeloop.api.models import ApiKey


class Command(BaseCommand):
    help = "Create an API key and print it once; only its hash is stored."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("name", help="what the key is for, e.g. 'billing sync'")
        parser.add_argument("--read-only", action="store_true", help="allow reads only")
        parser.add_argument(
            "--key", help="adopt this existing key (e.g. a Delighted API key) instead of a new one"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["key"]:
            try:
                ApiKey.adopt(options["name"], options["key"], read_only=options["read_only"])
            except ValueError as exc:
                raise CommandError(f"--key: {exc}") from None
            self.stdout.write(options["key"])
            return
        _, plain = ApiKey.issue(options["name"], read_only=options["read_only"])
        self.stdout.write(plain)
