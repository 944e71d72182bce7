"""`manage.py create_api_key NAME [--read-only]`: print a new API key on its own line."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from closeloop.api.models import ApiKey


class Command(BaseCommand):
    help = "Create an API key and print it once; only its hash is stored."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("name", help="what the key is for, e.g. 'billing sync'")
        parser.add_argument("--read-only", action="store_true", help="allow reads only")

    def handle(self, *args: Any, **options: Any) -> None:
        _, plain = ApiKey.issue(options["name"], read_only=options["read_only"])
        self.stdout.write(plain)
