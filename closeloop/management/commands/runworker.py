"""`manage.py runworker [--lane NAME ...]`: run the background worker until SIGTERM or
Ctrl-C. Every lane runs, each in its own thread, unless `--lane` names some: then only
those (to give a lane a process, or a machine, of its own)."""

from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from closeloop.worker import default_lanes, run_lanes


class Command(BaseCommand):
    help = "Run the worker: deliveries, deadlines and other background steps, in lanes."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--lane",
            action="append",
            default=[],
            help="run only this lane (mail, alerts, network or heavy); may be given more than once",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        lanes = default_lanes()
        wanted = set(options["lane"])
        unknown = wanted - {lane.name for lane in lanes}
        if unknown:
            known = ", ".join(lane.name for lane in lanes)
            raise CommandError(f"--lane: no lane named {sorted(unknown)[0]!r}; lanes: {known}")
        chosen = [lane for lane in lanes if not wanted or lane.name in wanted]
        run_lanes(chosen, settings.WORKER_IDLE_SECONDS)
