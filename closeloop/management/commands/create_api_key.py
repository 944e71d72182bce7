"""`manage.py create_api_key NAME [--read-only | --admin] [--key KEY]`: print a new API key
on its own line.

Read-write by default (answers, people, accounts, cases); `--read-only` reads only;
`--admin` may also change settings (channels, triage policy, templates, teams, routing
rules, announcements, the theme taxonomy) and see channel secrets. `--key` adopts a key
made elsewhere (an old Delighted API key), so scripts keep theirs.
"""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from closeloop.access.models import ApiKey


class Command(BaseCommand):
    help = "Create an API key and print it once; only its hash is stored."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("name", help="what the key is for, e.g. 'billing sync'")
        scope = parser.add_mutually_exclusive_group()
        scope.add_argument("--read-only", action="store_true", help="allow reads only")
        scope.add_argument(
            "--admin", action="store_true", help="also allow changing settings and taxonomy"
        )
        parser.add_argument(
            "--key", help="adopt this existing key (e.g. a Delighted API key) instead of a new one"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        scope = {"read_only": options["read_only"], "admin": options["admin"]}
        if options["key"]:
            try:
                ApiKey.adopt(options["name"], options["key"], **scope)
            except ValueError as exc:
                raise CommandError(f"--key: {exc}") from None
            self.stdout.write(options["key"])
            return
        _, plain = ApiKey.issue(options["name"], **scope)
        self.stdout.write(plain)
