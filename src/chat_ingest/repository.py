"""SQL for the three tables and ``api_keys``. Callers own the transaction; nothing commits.

Writes take whole lists of rows and go out as executemany calls: the MySQL drivers rewrite
them into multi-row INSERTs of about 1 MB each, and SQLAlchemy's "insertmanyvalues" does the
same on PostgreSQL and SQLite, so a batch costs a few round trips, not one per row, and each
statement is compiled once and cached.
"""

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    Table,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import Executable
from sqlalchemy.sql.functions import GenericFunction
from sqlalchemy.types import DateTime

from chat_ingest.db.engine import MAX_STATEMENT_BYTES_KEY
from chat_ingest.db.models import api_keys, conversations, message_files, messages
from chat_ingest.db.types import UTCDateTime

AnyRow = Row[*tuple[Any, ...]]
MAX_IN_LIST = 1000  # ids per IN (...) list


class greatest(GenericFunction[datetime]):  # noqa: N801 - SQL function names are lower case
    """``GREATEST(a, b)``; SQLite spells it ``MAX(a, b)``."""

    type = DateTime()
    inherit_cache = True


@compiles(greatest, "sqlite")
def _greatest_on_sqlite(element: greatest, compiler: Any, **kw: Any) -> str:
    return f"MAX({compiler.process(element.clauses, **kw)})"


def _chunks(items: Sequence[Any], size: int = MAX_IN_LIST) -> Iterable[Sequence[Any]]:
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
    if rows:
        await connection.execute(table.insert(), list(rows))


async def lock_conversation_owners(
    connection: AsyncConnection, conversation_ids: Sequence[str]
) -> dict[str, tuple[str, str]]:
    """Lock the existing conversations among ``conversation_ids`` (``FOR UPDATE``, in id
    order) and return their owners as ``{id: (app_id, from_end_user_id)}``.

    Every writer to a conversation takes this lock before touching ``messages``, so writers
    queue instead of deadlocking on the foreign key's shared lock; taking the locks in id
    order keeps two batches from deadlocking on each other.
    """
    owners: dict[str, tuple[str, str]] = {}
    c = conversations.c
    for chunk in _chunks(sorted(conversation_ids)):
        statement = (
            select(c.id, c.app_id, c.from_end_user_id)
            .where(c.id.in_(chunk))
            .order_by(c.id)
            .with_for_update()
        )
        for row in await connection.execute(statement):
            owners[row.id] = (row.app_id, row.from_end_user_id)
    return owners


async def find_messages_by_client_ids(
    connection: AsyncConnection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], AnyRow]:
    """Stored messages by ``(conversation_id, client_message_id)``."""
    found: dict[tuple[str, str], AnyRow] = {}
    m = messages.c
    for chunk in _chunks(keys):
        statement = select(m.id, m.conversation_id, m.client_message_id, m.query, m.answer).where(
            tuple_(m.conversation_id, m.client_message_id).in_(chunk)
        )
        for row in await connection.execute(statement):
            found[(row.conversation_id, row.client_message_id)] = row
    return found


async def count_new_messages(
    connection: AsyncConnection, new_messages: Mapping[str, tuple[int, datetime]]
) -> None:
    """For each ``{conversation_id: (count, latest created_at)}``: add ``count`` to its
    dialogue_count atomically in SQL, and move updated_at forward to ``latest`` (never back:
    a backfilled older message keeps the newer value). One statement per 1000 conversations."""
    c = conversations.c
    ids = sorted(new_messages)
    for chunk in _chunks(ids):
        if len(chunk) == 1:
            count, latest = new_messages[chunk[0]]
            increment: Any = count
            moved_to: Any = literal(latest, UTCDateTime)
        else:
            increment = case({i: new_messages[i][0] for i in chunk}, value=c.id)
            moved_to = case(
                {i: literal(new_messages[i][1], UTCDateTime) for i in chunk}, value=c.id
            )
        statement = (
            update(conversations)
            .where(c.id.in_(chunk))
            .values(
                dialogue_count=c.dialogue_count + increment,
                updated_at=greatest(c.updated_at, moved_to),
            )
        )
        await connection.execute(statement)


async def get_conversation(connection: AsyncConnection, conversation_id: str) -> AnyRow | None:
    statement = select(conversations).where(conversations.c.id == conversation_id)
    return (await connection.execute(statement)).first()


def app_messages(app_id: str, user_id: str | None, since: datetime | None) -> Select[Any]:
    """An app's messages oldest first, with their conversation's name and end user."""
    m, c = messages.c, conversations.c
    statement = (
        select(messages, c.name.label("conversation_name"), c.from_end_user_id)
        .join(conversations, m.conversation_id == c.id)
        .where(c.app_id == app_id)
        .order_by(m.created_at, m.id)
    )
    if user_id is not None:
        statement = statement.where(c.from_end_user_id == user_id)
    if since is not None:
        statement = statement.where(m.created_at >= literal(since, UTCDateTime))
    return statement


def _after(
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


async def list_messages(
    connection: AsyncConnection,
    conversation_id: str,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[AnyRow]:
    """Up to ``limit`` messages of a conversation, oldest first, after ``after``."""
    statement = select(messages).where(messages.c.conversation_id == conversation_id)
    if after is not None:
        position = _after(messages.c.created_at, messages.c.id, after, descending=False)
        statement = statement.where(position)
    statement = statement.order_by(messages.c.created_at, messages.c.id).limit(limit)
    return list(await connection.execute(statement))


async def list_conversations(
    connection: AsyncConnection,
    app_id: str,
    user_id: str | None,
    before: tuple[datetime, str] | None,
    limit: int,
) -> list[AnyRow]:
    """Up to ``limit`` of an app's (and optionally one end user's) conversations, most
    recently updated first, after ``before`` in that order."""
    statement = select(conversations).where(conversations.c.app_id == app_id)
    if user_id is not None:
        statement = statement.where(conversations.c.from_end_user_id == user_id)
    if before is not None:
        updated_at, conversation_id = conversations.c.updated_at, conversations.c.id
        statement = statement.where(_after(updated_at, conversation_id, before, descending=True))
    order = (conversations.c.updated_at.desc(), conversations.c.id.desc())
    return list(await connection.execute(statement.order_by(*order).limit(limit)))


async def stream_rows(
    connection: AsyncConnection, statement: Select[Any], page: int = 1000
) -> AsyncIterator[Sequence[AnyRow]]:
    """Run ``statement`` with a server-side cursor, yielding rows ``page`` at a time."""
    result = await connection.stream(statement.execution_options(yield_per=page))
    async for rows in result.partitions():
        yield rows


async def files_of(
    connection: AsyncConnection, message_ids: Sequence[str]
) -> dict[str, list[AnyRow]]:
    """The files of ``message_ids``, by message id, oldest first."""
    files: dict[str, list[AnyRow]] = {}
    f = message_files.c
    for chunk in _chunks(message_ids):
        statement = select(message_files).where(f.message_id.in_(chunk)).order_by(f.id)
        for row in await connection.execute(statement):
            files.setdefault(row.message_id, []).append(row)
    return files


# Bytes the MySQL drivers escape with a backslash when they inline a string literal.
_MYSQL_ESCAPED = b"\\'\"\n\r\x00\x1a"


def mysql_literal_bytes(row: Mapping[str, Any]) -> int:
    """How many bytes ``row``'s values take in a MySQL statement (drivers inline them as
    escaped literals, and the server refuses statements over ``max_allowed_packet``)."""
    total = 0
    for value in row.values():
        if isinstance(value, str):
            raw = value.encode()
        elif isinstance(value, dict | list):
            raw = orjson.dumps(value)
        else:
            total += 40  # numbers, dates, NULL
            continue
        total += 2 * len(raw) - len(raw.translate(None, _MYSQL_ESCAPED))
    return total


def max_statement_bytes(connection: AsyncConnection) -> int | None:
    """The largest statement the server takes (MySQL's max_allowed_packet, read when the
    connection opened); None where there is no such limit."""
    limit = connection.info.get(MAX_STATEMENT_BYTES_KEY)
    return None if limit is None else int(limit)


async def insert_api_key(connection: AsyncConnection, row: dict[str, Any]) -> None:
    await connection.execute(api_keys.insert().values(row))


async def all_api_keys(connection: AsyncConnection) -> Sequence[AnyRow]:
    """Every key, revoked ones included, oldest first (``key_hash`` is not secret)."""
    statement = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
    return (await connection.execute(statement)).all()


async def revoke_api_key(connection: AsyncConnection, key_id: str, now: datetime) -> bool:
    """Mark the key revoked (keeping the first revocation time); False when there is no such
    key."""
    statement = (
        update(api_keys)
        .where(api_keys.c.id == key_id)
        .values(revoked_at=func.coalesce(api_keys.c.revoked_at, literal(now, UTCDateTime)))
    )
    result = await connection.execute(statement)
    if result.rowcount:
        return True
    found = await connection.scalar(select(api_keys.c.id).where(api_keys.c.id == key_id))
    return found is not None


async def ping(connection: AsyncConnection) -> None:
    await connection.exec_driver_sql("SELECT 1")
