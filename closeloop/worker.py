"""The worker loop: small steps, each claiming one piece of durable work from the database.

A step is a function `() -> bool` that returns whether it did something. The
loop runs steps until none has work, sleeps briefly, and repeats. Deadlines and
outgoing messages are rows, so any number of workers can run side by side and
a stopped worker loses nothing. The steps themselves live with the apps that
own the work; `default_lanes` lists them, in lanes that run side by side in
threads of one process (or, with `runworker --lane`, in processes of their own),
so the mail that must go out at once never waits behind slow or heavy work.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial, update_wrapper
from types import FrameType
from typing import Any

from django import db

log = logging.getLogger("closeloop.worker")

Step = Callable[[], bool]

# The intake lane's idle time: a batch API answer waits at most this long for triage.
INTAKE_IDLE_SECONDS = 0.2


@dataclass(frozen=True)
class Lane:
    """Steps that run one after another, in their own thread, beside the other lanes."""

    name: str
    steps: tuple[Step, ...]
    # How long the lane sleeps when it had nothing to do; None: the worker's setting.
    idle_seconds: float | None = None


def default_lanes() -> list[Lane]:
    """Every step the worker runs, by lane.

    A step waits only for the steps of its own lane. The batch API's answers are
    triaged in the "intake" lane, which looks for them five times a second. An owner's
    alert, an outreach email or an escalation (the "mail" lane), or a Slack alert
    ("alerts"), never waits behind a slow webhook receiver or an IMAP server
    ("network") or behind reading comments, training and discovering themes, tuning
    sentiment, CSV imports, the monthly report, the health backtest and watch, or the
    HubSpot sync ("heavy").
    """
    from closeloop.access.models import handle_idempotency_expiry
    from closeloop.delivery.sending import (
        handle_email_batch,
        handle_slack_batch,
        handle_webhook_batch,
    )
    from closeloop.insights.backtest import handle_health_backtest
    from closeloop.insights.report import handle_monthly_report
    from closeloop.insights.watch import handle_health_watch
    from closeloop.integrations.hubspot import handle_hubspot_sync
    from closeloop.loop.exits import handle_exit_interviews
    from closeloop.loop.imap import handle_imap_poll
    from closeloop.loop.imports import handle_csv_import
    from closeloop.loop.intake import handle_pending_triage
    from closeloop.loop.outcomes import LISTENERS
    from closeloop.loop.reading import handle_reply_batch, handle_reply_reread
    from closeloop.loop.sla import (
        handle_one_escalation,
        handle_priority_refresh,
        handle_promise_escalation,
        handle_promise_reminder,
    )
    from closeloop.surveys.models import handle_link_hit_expiry
    from closeloop.surveys.sending import handle_due_surveys, handle_reminders
    from closeloop.themes.discovery import handle_theme_discovery
    from closeloop.themes.learning import handle_model_preparation, handle_theme_training
    from closeloop.themes.tagging import handle_sentiment_reread, handle_theme_batch
    from closeloop.themes.tuning import handle_sentiment_tuning

    # The outbox's steps tell the apps how each delivery went through LISTENERS.
    send_email, send_slack, send_webhooks = (
        _bound(step, LISTENERS)
        for step in (handle_email_batch, handle_slack_batch, handle_webhook_batch)
    )
    return [
        Lane("intake", (handle_pending_triage,), idle_seconds=INTAKE_IDLE_SECONDS),
        Lane(
            "mail",
            (
                send_email,
                handle_one_escalation,
                handle_promise_reminder,
                handle_promise_escalation,
                handle_exit_interviews,
                handle_due_surveys,
                handle_reminders,
                handle_priority_refresh,
            ),
        ),
        Lane("alerts", (send_slack,)),
        Lane("network", (send_webhooks, handle_imap_poll)),
        Lane(
            "heavy",
            (
                handle_model_preparation,
                handle_csv_import,
                handle_theme_batch,
                handle_reply_batch,
                handle_sentiment_tuning,
                handle_sentiment_reread,
                handle_reply_reread,
                handle_theme_training,
                handle_theme_discovery,
                handle_monthly_report,
                handle_health_backtest,
                handle_health_watch,
                handle_hubspot_sync,
                handle_idempotency_expiry,
                handle_link_hit_expiry,
            ),
        ),
    ]


def _bound(step: Callable[[Any], bool], argument: Any) -> Step:
    """`step(argument)` as a step of its own, logged under the step's name."""
    return update_wrapper(partial(step, argument), step)


def default_steps() -> list[Step]:
    """Every step of every lane, lane after lane (how tests drain the queues in one thread)."""
    return [step for lane in default_lanes() for step in lane.steps]


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
            except Exception as exc:
                # One failing step must not stop the others; the row it was on stays claimable.
                log.exception("worker step %s failed", getattr(step, "__name__", step))
                if isinstance(exc, db.Error):
                    # A connection the database dropped (a restart, a network cut) is closed
                    # here, so the next step opens a new one instead of failing for ever.
                    db.close_old_connections()
        return did

    def loop(self) -> None:
        """Run the steps until stopped, sleeping when none had anything to do."""
        try:
            while not self.stopping.is_set():
                if not self.run_once():
                    self.stopping.wait(self.idle_seconds)
        finally:
            db.connection.close()


class Lanes:
    """Each lane's steps looping in a thread of its own, until `stop`."""

    def __init__(self, lanes: Sequence[Lane], idle_seconds: float) -> None:
        self.stopping = threading.Event()
        self.workers = []
        for lane in lanes:
            idle = idle_seconds if lane.idle_seconds is None else lane.idle_seconds
            worker = Worker(lane.steps, idle)
            worker.stopping = self.stopping  # one signal stops every lane
            self.workers.append(worker)
        self.threads = [
            threading.Thread(target=w.loop, name=f"lane-{lane.name}", daemon=True)
            for lane, w in zip(lanes, self.workers, strict=True)
        ]
        self.names = [lane.name for lane in lanes]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()
        log.info("worker started with lanes %s", ", ".join(self.names))

    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        """Ask every lane to end after the step it is in."""
        if not self.stopping.is_set():
            log.info("worker stopping (signal %s)", signum)
        self.stopping.set()

    def join(self) -> None:
        for thread in self.threads:
            thread.join()
        log.info("worker stopped")


def run_lanes(lanes: Sequence[Lane], idle_seconds: float) -> None:
    """Run each lane in its own thread until SIGTERM or SIGINT; each lane finishes the
    step in progress, then the process ends."""
    running = Lanes(lanes, idle_seconds)
    asked: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Only a note: a handler that took a lock (Event.set does) could find it held by
        # the very code it interrupted, or by itself when a second signal arrives, and
        # wait for ever. The loop below acts on the note.
        asked.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    running.start()
    while not asked and any(t.is_alive() for t in running.threads):
        time.sleep(0.2)
    running.stop(asked[0] if asked else None)
    running.join()
