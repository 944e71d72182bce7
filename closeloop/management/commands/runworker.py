"""`manage.py runworker [--lane NAME ...] [--until-idle]`: run the background worker until
SIGTERM or Ctrl-C. Every lane runs, each in its own thread, unless `--lane` names some:
then only those (to give a lane a process, or a machine, of its own). `--until-idle`
runs the steps in one thread until none has work, then stops (to drain a queue by
hand, or in a cron job)."""

import time
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from closeloop.worker import Worker, default_lanes, run_lanes


class Command(BaseCommand):
    help = "Run the worker: deliveries, deadlines and other background steps, in lanes."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--lane",
            action="append",
            default=[],
            help=(
                "run only this lane (intake, mail, alerts, network or heavy); may be given"
                " more than once"
            ),
        )
        parser.add_argument(
            "--until-idle",
            action="store_true",
            help="run the lanes' steps in turn until none has work, then stop",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        lanes = default_lanes()
        wanted = set(options["lane"])
        unknown = wanted - {lane.name for lane in lanes}
        if unknown:
            known = ", ".join(lane.name for lane in lanes)
            raise CommandError(f"--lane: no lane named {sorted(unknown)[0]!r}; lanes: {known}")
        chosen = [lane for lane in lanes if not wanted or lane.name in wanted]
        if options["until_idle"]:
            worker = Worker([step for lane in chosen for step in lane.steps], 0)
            rounds, start = 0, time.perf_counter()
            while worker.run_once():
                rounds += 1
            took = time.perf_counter() - start
            self.stdout.write(f"worker idle after {rounds} rounds with work in {took:.3f} s")
            return
        run_lanes(chosen, settings.WORKER_IDLE_SECONDS)
