"""The worker loop: small steps, each claiming one piece of durable work from the database.

A step is a function `() -> bool` that returns whether it did something. The
loop runs steps until none has work, sleeps briefly, and repeats. Deadlines and
outgoing messages are rows, so any number of workers can run side by side and
a stopped worker loses nothing. The steps themselves live
with the apps that own the work; `default_steps` lists them.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType

log = logging.getLogger("closeloop.worker")

Step = Callable[[], bool]


def default_steps() -> list[Step]:
    """Every step the worker runs, in order: deliveries first, then deadlines."""
    from closeloop.api.models import handle_idempotency_expiry
    from closeloop.delivery.sending import handle_email_batch, handle_http_batch
    from closeloop.insights.discovery import handle_theme_discovery
    from closeloop.insights.learning import handle_model_preparation, handle_theme_training
    from closeloop.insights.report import handle_monthly_report
    from closeloop.insights.tagging import (
        handle_reply_batch,
        handle_sentiment_reread,
        handle_theme_batch,
    )
    from closeloop.insights.tuning import handle_sentiment_tuning
    from closeloop.loop.imap import handle_imap_poll
    from closeloop.loop.sla import handle_one_escalation, handle_priority_refresh
    from closeloop.surveys.models import handle_link_hit_expiry
    from closeloop.surveys.sending import handle_due_surveys, handle_reminders

    return [
        handle_email_batch,
        handle_http_batch,
        handle_due_surveys,
        handle_reminders,
        handle_one_escalation,
        handle_imap_poll,
        handle_priority_refresh,
        handle_model_preparation,
        handle_theme_batch,
        handle_reply_batch,
        handle_sentiment_tuning,
        handle_sentiment_reread,
        handle_theme_training,
        handle_theme_discovery,
        handle_monthly_report,
        handle_idempotency_expiry,
        handle_link_hit_expiry,
    ]


class Worker:
    """Runs steps until told to stop; SIGTERM and SIGINT finish the current step first."""

    def __init__(self, steps: Sequence[Step], idle_seconds: float) -> None:
        self.steps = list(steps)
        self.idle_seconds = idle_seconds
        self.stopping = threading.Event()

    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        """Ask the loop to end after the step in progress."""
        if not self.stopping.is_set():
            log.info("worker stopping (signal %s)", signum)
        self.stopping.set()

    def run_once(self) -> bool:
        """Run every step once; True if any did something."""
        did = False
        for step in self.steps:
            if self.stopping.is_set():
                break
            try:
                did = step() or did
            except Exception:
                # One failing step must not stop the others; the row it was on stays claimable.
                log.exception("worker step %s failed", getattr(step, "__name__", step))
        return did

    def run(self) -> None:
        """Loop until stopped, sleeping when there is nothing to do."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        log.info("worker started with %d step(s)", len(self.steps))
        while not self.stopping.is_set():
            if not self.run_once():
                self.stopping.wait(self.idle_seconds)
        log.info("worker stopped")
