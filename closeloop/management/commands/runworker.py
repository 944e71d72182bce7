"""`manage.py runworker`: run the background worker loop until SIGTERM or Ctrl-C."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from closeloop.worker import Worker, default_steps


class Command(BaseCommand):
    help = "Run the worker: deliveries, deadlines and other background steps."

    def handle(self, *args: Any, **options: Any) -> None:
        Worker(default_steps(), settings.WORKER_IDLE_SECONDS).run()
