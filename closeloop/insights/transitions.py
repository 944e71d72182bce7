"""Transitions: how each person's class moved between their consecutive answers.

A pair is (the person's previous answer in the segment, their answer in the
period). The previous answer may be older than the period: what matters is the
move a period's answer made. One window query (LAG over each person's answers)
computes every pair in the database, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import F, QuerySet, Window
from django.db.models.functions import Lag
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from closeloop.core.nps import Category
from closeloop.core.periods import day_start
from closeloop.surveys.models import Person, Response

CLASSES = [Category.DETRACTOR, Category.PASSIVE, Category.PROMOTER]
# The most people a cell's list shows; its CSV has them all.
CELL_LIMIT = 500


def _class_sql(column: str) -> str:
    return (
        f"CASE WHEN {column} >= 9 THEN 'promoter' "
        f"WHEN {column} >= 7 THEN 'passive' ELSE 'detractor' END"
    )


def _pairs_sql(qs: QuerySet[Response], since: date, until: date) -> tuple[str, list[Any]]:
    """SQL of every pair whose later answer lies in [since, until], and its parameters."""
    numbered = (
        qs.order_by()
        .annotate(
            previous_score=Window(
                Lag("score"),
                partition_by=[F("person_id")],
                order_by=[F("created_at").asc(), F("id").asc()],
            ),
            previous_at=Window(
                Lag("created_at"),
                partition_by=[F("person_id")],
                order_by=[F("created_at").asc(), F("id").asc()],
            ),
        )
        .values("id", "person_id", "score", "created_at", "previous_score", "previous_at")
    )
    inner, params = numbered.query.sql_with_params()
    start = connection.ops.adapt_datetimefield_value(day_start(since))
    end = connection.ops.adapt_datetimefield_value(day_start(until + timedelta(days=1)))
    # Only constants and Django's own compiled SQL are pasted; every value is a parameter.
    sql = (
        "SELECT pairs.id, pairs.person_id, pairs.score, pairs.created_at, pairs.previous_score, "
        f"pairs.previous_at, {_class_sql('pairs.previous_score')} AS before_class, "
        f"{_class_sql('pairs.score')} AS after_class "
        f"FROM ({inner}) pairs "
        "WHERE pairs.previous_score IS NOT NULL "
        "AND pairs.created_at >= %s AND pairs.created_at < %s"
    )
    return sql, [*params, start, end]


@dataclass(frozen=True)
class Matrix:
    """Counts of moves from class (rows: before) to class (columns: after)."""

    cells: dict[tuple[Category, Category], int]

    def count(self, before: Category, after: Category) -> int:
        return self.cells.get((before, after), 0)

    def row_total(self, before: Category) -> int:
        return sum(self.count(before, after) for after in CLASSES)

    def share(self, before: Category, after: Category) -> float | None:
        """The share of `before`'s people who ended in `after`, in percent."""
        total = self.row_total(before)
        return 100.0 * self.count(before, after) / total if total else None

    @property
    def total(self) -> int:
        return sum(self.cells.values())

    @property
    def improved(self) -> int:
        order = {c: i for i, c in enumerate(CLASSES)}
        return sum(n for (b, a), n in self.cells.items() if order[a] > order[b])

    @property
    def worsened(self) -> int:
        order = {c: i for i, c in enumerate(CLASSES)}
        return sum(n for (b, a), n in self.cells.items() if order[a] < order[b])


def matrix(qs: QuerySet[Response], since: date, until: date) -> Matrix:
    """The transition matrix of the period's answers within the segment `qs`."""
    pairs, params = _pairs_sql(qs, since, until)
    sql = (
        f"SELECT cell.before_class, cell.after_class, COUNT(*) FROM ({pairs}) cell "
        "GROUP BY cell.before_class, cell.after_class"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return Matrix({(Category(b), Category(a)): int(n) for b, a, n in rows})


@dataclass(frozen=True)
class Move:
    """One person's move: their previous answer and the period's answer."""

    response_id: int
    person_id: int
    email: str
    name: str
    previous_score: int
    previous_at: datetime
    score: int
    answered_at: datetime


def _moment(value: Any) -> datetime:
    """A timestamp from a raw row: PostgreSQL gives a datetime, SQLite its UTC text."""
    if isinstance(value, datetime):
        moment = value
    else:
        parsed = parse_datetime(str(value))
        if parsed is None:
            raise ValueError(f"not a timestamp: {value!r}")
        moment = parsed
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


def cell_moves(
    qs: QuerySet[Response],
    since: date,
    until: date,
    before: Category,
    after: Category,
    limit: int | None = CELL_LIMIT,
) -> list[Move]:
    """The people behind one cell, newest answer first."""
    pairs, params = _pairs_sql(qs, since, until)
    sql = (
        "SELECT cell.id, cell.person_id, p.email, p.name, cell.previous_score, cell.previous_at, "
        f"cell.score, cell.created_at FROM ({pairs}) cell "
        f"JOIN {Person._meta.db_table} p "
        "ON p.id = cell.person_id "
        "WHERE cell.before_class = %s AND cell.after_class = %s "
        "ORDER BY cell.created_at DESC, cell.id DESC"
    )
    args = [*params, before.value, after.value]
    if limit is not None:
        sql += " LIMIT %s"
        args.append(limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        rows = cursor.fetchall()
    return [
        Move(
            response_id=row[0],
            person_id=row[1],
            email=row[2] or "",
            name=row[3] or "",
            previous_score=row[4],
            previous_at=_moment(row[5]),
            score=row[6],
            answered_at=_moment(row[7]),
        )
        for row in rows
    ]
