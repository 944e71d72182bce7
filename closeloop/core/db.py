"""Database helpers that differ by engine, kept in one place."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection, models
from django.db.models.fields.related_lookups import RelatedIn
from django.db.models.lookups import In

# Below this many rows COPY's set-up costs more than it saves.
COPY_MIN_ROWS = 100


class _ArrayParameter:
    """`= ANY(%s)` with the values as one array, on PostgreSQL, for a list of values."""

    lookup_name = "any"

    def as_postgresql(self, compiler: Any, connection: Any) -> Any:
        if not self.rhs_is_direct_value():  # type: ignore[attr-defined]
            return self.as_sql(compiler, connection)  # type: ignore[attr-defined]
        lhs, lhs_params = self.process_lhs(compiler, connection)  # type: ignore[attr-defined]
        values = [v for v in self.rhs if v is not None]  # type: ignore[attr-defined]
        return f"{lhs} = ANY(%s)", [*lhs_params, values]


@models.Field.register_lookup
class AnyOf(_ArrayParameter, In):  # type: ignore[type-arg]
    """`field__any=values`: `field__in`, but on PostgreSQL one array parameter
    (`= ANY(%s)`) instead of one placeholder per value. psycopg splits a statement
    at its placeholders in Python, and does not cache statements that long: a
    thousand emails took 55 ms to look up with IN and 4 ms with ANY."""


@models.ForeignObject.register_lookup
class RelatedAnyOf(_ArrayParameter, RelatedIn):
    """`fk__any=ids` (ids or instances), as `AnyOf`."""


def delete_some(rows: models.QuerySet[Any], limit: int = 5000) -> int:
    """Delete up to `limit` of `rows`, so a worker step forgetting old records never
    holds the table for long; returns how many went."""
    ids = list(rows.values_list("pk", flat=True)[:limit])
    return rows.model._default_manager.filter(pk__in=ids).delete()[0] if ids else 0


def bulk_insert(objs: Sequence[models.Model]) -> None:
    """Insert new model instances and give them their primary keys.

    On PostgreSQL a large set is written with COPY after reserving its ids from
    the table's sequence, several times faster than a multi-row INSERT for
    batch ingest; elsewhere, and for small sets, Django's bulk_create. Either
    way it runs in the caller's transaction and raises IntegrityError on a
    constraint violation.
    """
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql" or len(objs) < COPY_MIN_ROWS:
        model._default_manager.bulk_create(objs)
        return
    meta = model._meta
    qn = connection.ops.quote_name
    fields = list(meta.concrete_fields)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(objs)],
        )
        for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
            obj.pk = pk
        columns = ", ".join(qn(f.column) for f in fields)
        sql = f"COPY {qn(meta.db_table)} ({columns}) FROM STDIN"
        readers = [_reader(f) for f in fields]
        with connection.wrap_database_errors, cursor.cursor.copy(sql) as copy:
            for obj in objs:
                copy.write_row([read(obj) for read in readers])
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias


def _reader(field: models.Field[Any, Any]) -> Callable[[models.Model], Any]:
    """How to read one column's value off an instance for COPY, as save() would write it."""
    if isinstance(field, models.JSONField):
        encoder = field.encoder
        return lambda obj: json.dumps(getattr(obj, field.attname), cls=encoder)
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return lambda obj: field.pre_save(obj, add=True)
    return operator.attrgetter(field.attname)
