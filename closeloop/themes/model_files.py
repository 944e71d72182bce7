"""Where the trained models live on disk, and how a process builds one without another
process building it too.

Models are built once and loaded by every process: the theme model of the shipped
examples at install (about 25 s), the tuned sentiment model in the background by the
worker (see `sentiment` and `tuning`). They go in `MODEL_DIR`, by default
`<virtualenv>/share/closeloop` (so `make clean` removes them with the virtualenv); set
the `MODEL_DIR` environment variable to keep them elsewhere, for instance on a volume
several hosts share. Web processes only ever read these files: they never train.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from collections.abc import Iterator
from pathlib import Path

MODEL_DIR = Path(os.environ.get("MODEL_DIR") or Path(sys.prefix) / "share" / "closeloop")
RETRY_AFTER_SECONDS = 30


class ModelNotReady(RuntimeError):
    """A model this process needs has not been built yet (the worker builds it); callers
    answering a request say 503 with Retry-After rather than training it themselves."""

    def __init__(self, what: str, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(f"the {what} is being prepared; try again in {retry_after} s")
        self.what = what
        self.retry_after = retry_after


@contextlib.contextmanager
def exclusive(lock_path: Path, *, wait: bool) -> Iterator[bool]:
    """Hold an exclusive lock on `lock_path` (a file beside the model) for the block.

    Yields True when this process holds it; with `wait=False`, yields False at once when
    another process (another worker, another `make run`, an install) holds it. The lock
    belongs to the open file, so a process that dies releases it: a half-done build is
    never taken for a running one."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_locked(lock_path: Path) -> bool:
    """Whether some process holds the lock now (without waiting for it)."""
    if not lock_path.exists():
        return False
    with exclusive(lock_path, wait=False) as got:
        return not got


def write_atomically(path: Path, data: bytes) -> None:
    """Write a file whole or not at all: into a sibling first, then renamed over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)
