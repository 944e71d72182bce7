"""`manage.py prepare_models`: train the theme model of the shipped examples once (about
25 s on 2 cores) and store it where every process loads it from. `make install` runs
it; a worker that finds the file missing builds it too. The sentiment model is tuned
later, in the background, by the worker (see `closeloop.themes.tuning`)."""

import time
from typing import Any

from django.core.management.base import BaseCommand

from closeloop.themes import learning


class Command(BaseCommand):
    help = "Train and store the theme model of the shipped examples, if it is not there."

    def handle(self, *args: Any, **options: Any) -> None:
        path = learning.shipped_path()
        if path.exists():
            self.stdout.write(f"theme model: {path.name} is there")
            return
        self.stdout.write("theme model: training on the shipped examples (about 25 s)")
        self.stdout.flush()
        began = time.perf_counter()
        learning.build_shipped()
        self.stdout.write(f"theme model: stored in {path} in {time.perf_counter() - began:.0f} s")
