"""SQL for the three tables and ``api_keys``. Callers own the transaction; nothing here commits."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Row, Table, func, literal, select, update
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction
from sqlalchemy.types import DateTime

from chat_ingest.db.engine import MAX_STATEMENT_BYTES_KEY
from chat_ingest.db.models import api_keys, conversations, message_files, messages
from chat_ingest.db.types import UTCDateTime

AnyRow = Row[*tuple[Any, ...]]


class greatest(GenericFunction[datetime]):  # noqa: N801 - SQL function names are lower case
    """``GREATEST(a, b)``; SQLite spells it ``MAX(a, b)``."""

    type = DateTime()
    inherit_cache = True


@compiles(greatest, "sqlite")
def _greatest_on_sqlite(element: greatest, compiler: Any, **kw: Any) -> str:
    return f"MAX({compiler.process(element.clauses, **kw)})"


async def insert_ignoring_duplicates(
    connection: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]
) -> int:
    """Insert ``rows`` in one statement, skipping those that hit a unique key; return how
    many were inserted.

    The one place where "insert unless it exists" is spelled per backend. Never
    ``INSERT IGNORE``: it would also turn truncation and bad ENUM values into warnings.
    On MySQL the ``id = id`` no-op also takes the existing row's exclusive lock, and the
    engine's connections count it as 0 affected rows (see ``db.engine``).
    """
    dialect = connection.dialect.name
    if dialect in ("mysql", "mariadb"):
        statement: Any = mysql.insert(table).values(list(rows))
        statement = statement.on_duplicate_key_update(id=table.c.id)
    elif dialect == "postgresql":
        statement = postgresql.insert(table).values(list(rows)).on_conflict_do_nothing()
    else:
        statement = sqlite.insert(table).values(list(rows)).on_conflict_do_nothing()
    result = await connection.execute(statement)
    return int(result.rowcount)


async def lock_conversation_owner(
    connection: AsyncConnection, conversation_id: str
) -> AnyRow | None:
    """Read the conversation's owner while taking its row lock (``FOR UPDATE``).

    Every writer to a conversation takes this lock before touching ``messages``, so writers
    queue instead of deadlocking on the foreign key's shared lock.
    """
    statement = (
        select(conversations.c.app_id, conversations.c.from_end_user_id)
        .where(conversations.c.id == conversation_id)
        .with_for_update()
    )
    return (await connection.execute(statement)).first()


async def find_message_by_client_id(
    connection: AsyncConnection, conversation_id: str, client_message_id: str
) -> AnyRow | None:
    statement = select(messages.c.id, messages.c.query, messages.c.answer).where(
        messages.c.conversation_id == conversation_id,
        messages.c.client_message_id == client_message_id,
    )
    return (await connection.execute(statement)).first()


async def insert_files(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await connection.execute(message_files.insert().values(list(rows)))


async def count_new_messages(
    connection: AsyncConnection, conversation_id: str, new_messages: int, latest: datetime
) -> None:
    """Add ``new_messages`` to dialogue_count atomically in SQL, and move updated_at forward
    to ``latest`` (never backward: a backfilled older message keeps the newer value)."""
    statement = (
        update(conversations)
        .where(conversations.c.id == conversation_id)
        .values(
            dialogue_count=conversations.c.dialogue_count + new_messages,
            updated_at=greatest(conversations.c.updated_at, literal(latest, UTCDateTime)),
        )
    )
    await connection.execute(statement)


async def get_conversation(connection: AsyncConnection, conversation_id: str) -> AnyRow | None:
    statement = select(conversations).where(conversations.c.id == conversation_id)
    return (await connection.execute(statement)).first()


# Characters the MySQL drivers escape with a backslash when they inline a string literal.
_MYSQL_ESCAPED = (b"\\", b"'", b'"', b"\n", b"\r", b"\x00", b"\x1a")


def mysql_literal_bytes(row: dict[str, Any]) -> int:
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
        total += len(raw) + sum(raw.count(char) for char in _MYSQL_ESCAPED)
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
