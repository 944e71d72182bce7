"""How a worker step takes work for itself alone: the one claim idiom of every step.

Work is a row whose columns say it is due (a delivery to send, an answer to read, a
case to escalate, a queued run). A step takes rows by stamping them, with an UPDATE
that repeats the condition that made them due, so of several workers on several
machines each row goes to one. On PostgreSQL the candidates are first locked with
SKIP LOCKED, so workers take different rows instead of queueing on the same ones; on
SQLite, which lets one writer in at a time, the conditional UPDATE alone decides.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import connection, models, transaction

M = TypeVar("M", bound=models.Model)


def claim(due: models.QuerySet[M], limit: int = 1, **stamp: Any) -> list[int]:
    """Take up to `limit` of the rows `due` selects, in its order, by writing `stamp`
    onto them; returns the ids taken, in that order (none when there was no work).

    `stamp` must take a row out of `due` (a status, a lease end, a level) and tell this
    claim's rows from another worker's (a fresh token, this moment), since a worker
    that loses some rows to another reads back the ones that carry its stamp. Called
    inside a transaction, the claim stands or falls with the work done in it.
    """
    with transaction.atomic():
        candidates = due
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True, of=("self",))
        # A join (a survey request's deliveries) can name a row twice.
        ids = list(dict.fromkeys(candidates.values_list("pk", flat=True)[:limit]))
        if not ids:
            return []
        taken = due.filter(pk__in=ids).update(**stamp)
        if taken == len(ids):
            return ids
        mine = set(
            due.model._default_manager.filter(pk__in=ids, **stamp).values_list("pk", flat=True)
        )
        return [pk for pk in ids if pk in mine]
