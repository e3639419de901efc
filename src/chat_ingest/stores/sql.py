"""SQL building blocks any table layout needs: chunked IN lists, ``GREATEST`` on every
backend, and the one per-backend spelling of "insert, ignoring duplicates".

Writes take whole lists of rows and go out as executemany calls: the MySQL drivers rewrite
them into multi-row INSERTs of about 1 MB each, and SQLAlchemy's "insertmanyvalues" does the
same on SQLite, so a batch costs a few round trips, not one per row, and each statement is
compiled once and cached. Many rows go through the backend's bulk path instead, which costs
both sides less work per row: ``COPY`` on PostgreSQL (``stores.copy``), ``LOAD DATA LOCAL
INFILE`` on MySQL/MariaDB (``stores.load_data``).
"""

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Row, Table, and_, case, literal, or_, update
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import Executable
from sqlalchemy.sql.functions import GenericFunction
from sqlalchemy.types import DateTime, TypeEngine

from chat_ingest.stores import copy, load_data
from chat_ingest.stores.base import CountDelta

AnyRow = Row[*tuple[Any, ...]]
MAX_IN_LIST = 1000  # ids per IN (...) list


class greatest(GenericFunction[datetime]):  # noqa: N801 - SQL function names are lower case
    """``GREATEST(a, b)``; SQLite spells it ``MAX(a, b)``."""

    type = DateTime()
    inherit_cache = True


@compiles(greatest, "sqlite")
def _greatest_on_sqlite(element: greatest, compiler: Any, **kw: Any) -> str:
    return f"MAX({compiler.process(element.clauses, **kw)})"


def chunks(items: Sequence[Any], size: int = MAX_IN_LIST) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def insert_ignoring_duplicates(
    connection: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> int:
    """Insert ``rows``, skipping those that hit a unique key; return how many were inserted.

    The one place where "insert unless it exists" is spelled per backend. Never
    ``INSERT IGNORE``: it would also turn truncation and bad ENUM values into warnings.
    On MySQL the ``id = id`` no-op takes the existing row's lock, and the engine's connections
    count it as 0 affected rows (see ``db.engine``); elsewhere RETURNING lists what was new.
    """
    if not rows:
        return 0
    inserted = await _bulk_insert(connection, table, rows, ignore_duplicates=True)
    if inserted is not None:
        return inserted
    statement = _insert_ignoring_duplicates(connection.dialect.name, table)
    result = await connection.execute(statement, list(rows))
    if connection.dialect.name in ("mysql", "mariadb"):
        return int(result.rowcount)
    return len(result.all())


@cache
def _insert_ignoring_duplicates(dialect: str, table: Table) -> Executable:
    """Built once per backend and table (the hot path should not rebuild it per request)."""
    statement: Executable
    if dialect in ("mysql", "mariadb"):
        statement = mysql.insert(table).on_duplicate_key_update(id=table.c.id)
    elif dialect == "postgresql":
        statement = postgresql.insert(table).on_conflict_do_nothing().returning(table.c.id)
    else:
        statement = sqlite.insert(table).on_conflict_do_nothing().returning(table.c.id)
    return statement


async def insert_rows(
    connection: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    if rows and await _bulk_insert(connection, table, rows, ignore_duplicates=False) is None:
        await connection.execute(table.insert(), list(rows))


async def _bulk_insert(
    connection: AsyncConnection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    ignore_duplicates: bool,
) -> int | None:
    """Many rows through the backend's bulk path (``COPY`` or ``LOAD DATA``); how many were
    inserted, or None where that path does not take them."""
    if await copy.worth_copying(connection, rows):
        return await copy.copy_insert(connection, table, rows, ignore_duplicates=ignore_duplicates)
    if load_data.worth_loading(connection, rows):
        return await load_data.load_insert(connection, table, rows)
    return None


def after_position(
    timestamp: Any, row_id: Any, position: tuple[datetime, str], *, descending: bool
) -> ColumnElement[bool]:
    """Keyset predicate: rows strictly after ``position`` in ``(timestamp, id)`` order.

    Spelled ``t >= :t AND (t > :t OR id > :id)`` (mirrored when descending) rather than a
    row-value comparison: portable, and the leading range on ``t`` lets every backend use the
    ``(..., t)`` index, whose entries also carry the primary key ``id`` in order.
    """
    at, last_id = position
    if descending:
        return and_(timestamp <= at, or_(timestamp < at, row_id < last_id))
    return and_(timestamp >= at, or_(timestamp > at, row_id > last_id))


async def count_messages(
    connection: AsyncConnection,
    conversations: Table,
    deltas: Mapping[str, CountDelta],
    timestamp: TypeEngine[datetime],
) -> None:
    """Add each count to its conversation's dialogue_count atomically in SQL (when the table
    has that column), and move updated_at forward to ``latest`` (never back: a backfilled
    older message keeps the newer value). One statement per 1000 conversations."""
    c = conversations.c
    for chunk in chunks(sorted(deltas)):
        if len(chunk) == 1:
            delta = deltas[chunk[0]]
            increment: Any = delta.count
            moved_to: Any = literal(delta.latest, timestamp)
        else:
            increment = case({i: deltas[i].count for i in chunk}, value=c.id)
            moved_to = case({i: literal(deltas[i].latest, timestamp) for i in chunk}, value=c.id)
        values: dict[str, Any] = {"updated_at": greatest(c.updated_at, moved_to)}
        if "dialogue_count" in c:
            values["dialogue_count"] = c.dialogue_count + increment
        await connection.execute(update(conversations).where(c.id.in_(chunk)).values(values))


async def ping(connection: AsyncConnection) -> None:
    await connection.exec_driver_sql("SELECT 1")
