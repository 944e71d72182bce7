"""Write many follow-up rows at once when a batch of answers arrives.

Inside `collecting()`, rows the follow-up code creates (activities, deliveries,
notifications, tasks, survey requests, case↔answer links) are gathered and
inserted per table at the end (COPY on PostgreSQL for large sets), and lookups
that every case repeats (channels, templates, managers) are made once. Outside
it, each row is saved at once, so single changes read as plain code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from django.db import models

from closeloop.core.db import bulk_insert

M = TypeVar("M", bound=models.Model)
T = TypeVar("T")


class Collector:
    def __init__(self) -> None:
        self.rows: dict[type[models.Model], list[models.Model]] = {}
        self.cache: dict[str, Any] = {}

    def flush(self) -> None:
        """Insert what was gathered, table by table, in the order they were first used."""
        for rows in self.rows.values():
            bulk_insert(rows)
        self.rows.clear()


_current: ContextVar[Collector | None] = ContextVar("closeloop_loop_batch", default=None)


@contextmanager
def collecting() -> Iterator[Collector]:
    """Gather rows until the block ends, then insert them (in the caller's transaction)."""
    collector = Collector()
    token = _current.set(collector)
    try:
        yield collector
        collector.flush()
    finally:
        _current.reset(token)


def add(obj: M) -> M:
    """Save `obj` now, or with its batch when one is being collected."""
    collector = _current.get()
    if collector is None:
        obj.save(force_insert=True)
    else:
        collector.rows.setdefault(type(obj), []).append(obj)
    return obj


def cached(key: str, compute: Callable[[], T]) -> T:
    """`compute()` once per batch (every time outside one)."""
    collector = _current.get()
    if collector is None:
        return compute()
    if key not in collector.cache:
        collector.cache[key] = compute()
    value: T = collector.cache[key]
    return value
