"""Themes by count and by revenue, from the tags on answers.

Tags are a JSON list on each answer. Unnesting a JSON array is the one thing
SQLite and PostgreSQL spell differently (json_each / jsonb_array_elements_text),
so it is written once here, around Django's own compiled query for the answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from closeloop.surveys.models import Account, Response


def _tag_rows(qs: QuerySet[Response]) -> tuple[str, list[Any]]:
    """SQL of one row per (answer, tag) with the answer's account: (id, account_id, tag)."""
    inner, params = qs.order_by().values("id", "account_id", "tags").query.sql_with_params()
    if connection.vendor == "postgresql":
        sql = (
            "SELECT r.id, r.account_id, t.value AS tag "
            f"FROM ({inner}) r CROSS JOIN LATERAL jsonb_array_elements_text("
            "CASE WHEN jsonb_typeof(r.tags) = 'array' THEN r.tags ELSE '[]'::jsonb END) t(value)"
        )
    else:
        sql = (
            "SELECT r.id, r.account_id, t.value AS tag "
            f"FROM ({inner}) r, json_each(CASE WHEN json_valid(r.tags) "
            "AND json_type(r.tags) = 'array' THEN r.tags ELSE '[]' END) t "
            "WHERE t.type = 'text'"
        )
    return sql, list(params)


@dataclass(frozen=True)
class ThemeFigure:
    """One tag: how many answers name it, how many accounts, and their ARR (each once)."""

    tag: str
    responses: int
    accounts: int
    arr_cents: int


def theme_figures(qs: QuerySet[Response]) -> list[ThemeFigure]:
    """Every tag on the answers of `qs`, by number of answers (most first).

    Two grouped queries: answers and accounts per tag, and the ARR of each tag's
    distinct accounts.
    """
    rows_sql, params = _tag_rows(qs)
    table = Account._meta.db_table
    sql = (
        "SELECT counted.tag, counted.responses, counted.accounts, COALESCE(money.arr, 0) "
        "FROM (SELECT tr.tag, COUNT(DISTINCT tr.id) AS responses, "
        "COUNT(DISTINCT tr.account_id) AS accounts "
        f"FROM ({rows_sql}) tr GROUP BY tr.tag) counted "
        "LEFT JOIN (SELECT pairs.tag, SUM(a.arr_cents) AS arr FROM "
        f"(SELECT DISTINCT tr2.tag, tr2.account_id FROM ({rows_sql}) tr2 "
        "WHERE tr2.account_id IS NOT NULL) pairs "
        f"JOIN {table} a ON a.id = pairs.account_id GROUP BY pairs.tag) money "
        "ON money.tag = counted.tag "
        "ORDER BY counted.responses DESC, counted.tag"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *params])
        rows = cursor.fetchall()
    return [ThemeFigure(tag, int(n), int(accounts), int(arr)) for tag, n, accounts, arr in rows]


def top_by_count(figures: list[ThemeFigure], n: int = 3) -> list[ThemeFigure]:
    return sorted(figures, key=lambda f: (-f.responses, f.tag))[:n]


def top_by_arr(figures: list[ThemeFigure], n: int = 3) -> list[ThemeFigure]:
    return sorted(figures, key=lambda f: (-f.arr_cents, -f.responses, f.tag))[:n]
