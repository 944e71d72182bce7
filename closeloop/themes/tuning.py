"""The sentiment model is tuned in the background, never on the way to a running site.

`handle_sentiment_tuning` (a worker step) starts `python -m closeloop.themes.sentiment_training`
as a child process at the lowest CPU priority when the tuned model is missing and no
other process is tuning it (the tuning holds a lock beside the model, so two workers or
two `make run`s never tune at once). The child checkpoints every hundred steps and on
SIGTERM/SIGINT, so a stopped worker loses at most a minute of work and the next start
resumes. While it runs, comments are read by the interim model (`sentiment.InterimModel`);
once the model is there every process switches to it and `tagging.handle_sentiment_reread`
reads those comments again. `SENTIMENT_TUNING=off` turns the background tuning off (the
test suite does; `make bench` tunes in the foreground instead).
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time

from django.conf import settings

from . import model_files, sentiment

log = logging.getLogger("closeloop.themes")

RETRY_AFTER_FAILURE = 600.0  # seconds before a failed tuning (no registry, say) is tried again
STOP_GRACE = 30.0  # seconds a stopping worker gives the child to save its checkpoint

PR_SET_PDEATHSIG = 1
_child: subprocess.Popen[bytes] | None = None
_failed_at = -RETRY_AFTER_FAILURE


def _lower_priority() -> None:  # pragma: no cover - runs in the child before exec
    os.nice(19)
    # If the worker dies without stopping it (SIGKILL), the child is told to checkpoint
    # and stop (Linux), instead of tuning on as an orphan nobody asked for.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def handle_sentiment_tuning() -> bool:
    """Worker step: start the background tuning when it is due; never waits for it.
    Returns False: starting or watching the child is not work the loop should hurry."""
    global _child, _failed_at
    if not settings.SENTIMENT_TUNING or sentiment.MODEL_PATH.exists():
        return False
    if _child is not None:
        code = _child.poll()
        if code is None:
            return False
        _child = None
        if code not in (0, 3):
            _failed_at = time.monotonic()
            log.warning("sentiment tuning ended with exit code %s; retrying later", code)
        return False
    if time.monotonic() - _failed_at < RETRY_AFTER_FAILURE:
        return False
    if model_files.is_locked(sentiment.LOCK):
        return False  # another worker or `make run` is tuning it
    log.info("sentiment model: tuning in the background (comments are read by the interim model)")
    # A fixed command: this interpreter running our own module.
    _child = subprocess.Popen(
        [sys.executable, "-m", "closeloop.themes.sentiment_training"],
        preexec_fn=_lower_priority,  # the child is a fresh interpreter
    )
    return False


def stop_tuning() -> None:
    """Ask the child to checkpoint and stop (the worker is stopping); it resumes later."""
    global _child
    if _child is None or _child.poll() is not None:
        return
    _child.terminate()
    try:
        _child.wait(STOP_GRACE)
    except subprocess.TimeoutExpired:
        _child.kill()
    _child = None


atexit.register(stop_tuning)
