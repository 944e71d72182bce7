"""`manage.py seed_demo [--once]`: load a year of labelled demo data."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from closeloop.management import demo
from closeloop.surveys.models import Response


class Command(BaseCommand):
    help = "Create ~200 demo accounts, ~2,000 people and ~6,000 answers, all marked as demo."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--once", action="store_true", help="do nothing if demo data exists")
        parser.add_argument("--responses", type=int, default=6000)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"] and Response.demo_loaded():
            self.stdout.write("Demo data already loaded.")
            return
        made = demo.seed(responses=options["responses"])
        self.stdout.write(f"Loaded {made} demo responses (marked is_demo).")
