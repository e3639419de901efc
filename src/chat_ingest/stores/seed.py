"""The seed layout: the design document's ``conversations``, ``messages`` and
``message_files`` tables — their row mapping and all their SQL."""

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Select, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chat_ingest.db.engine import MAX_STATEMENT_BYTES_KEY
from chat_ingest.db.models import conversations, message_files, messages
from chat_ingest.db.types import UTCDateTime
from chat_ingest.errors import ChatIngestError, RecordTooLarge
from chat_ingest.ids import new_id
from chat_ingest.schemas import BelongsTo
from chat_ingest.stores import sql
from chat_ingest.stores.base import (
    CountDelta,
    Key,
    NewConversation,
    PlannedRecord,
    Snapshot,
    StoredMessage,
)
from chat_ingest.stores.plan import conversations_to_lock, message_ids_to_read

CREATED_BY_ROLE = {
    BelongsTo.user: "end_user",
    BelongsTo.assistant: "assistant",
    BelongsTo.system: "system",
}
STATEMENT_HEADROOM_BYTES = 64 * 1024  # column names, keywords and the other values
# Bytes the MySQL drivers escape with a backslash when they inline a string literal.
_MYSQL_ESCAPED = b"\\'\"\n\r\x00\x1a"


def message_row(record: PlannedRecord) -> dict[str, Any]:
    request = record.request
    return {
        "id": record.message_id,
        "conversation_id": record.conversation_id,
        "app_id": request.app_id,
        "model_provider": record.model_provider,
        "model_id": record.model_id,
        "inputs": request.inputs,
        "query": request.query,
        "message": {"content": request.query},
        "message_tokens": record.message_tokens,
        "answer": request.answer,
        "answer_tokens": record.answer_tokens,
        "provider_response_latency": request.latency,
        "total_price": record.total_price,
        "currency": record.currency,
        "status": "normal",
        "error": None,
        "message_metadata": request.metadata,
        "client_message_id": request.client_message_id,
        "created_at": record.created_at,
        "updated_at": record.created_at,
    }


def conversation_row(new: NewConversation) -> dict[str, Any]:
    first = new.first
    name = first.request.conversation_name
    if name is None:
        name = f"Conversation {first.created_at:%Y%m%d_%H%M%S}"
    return {
        "id": first.conversation_id,
        "app_id": first.request.app_id,
        "name": name,
        "status": "normal",
        "inputs": first.request.inputs,
        "from_end_user_id": first.request.user_id,
        "from_source": "api",
        "dialogue_count": new.dialogue_count,
        "created_at": first.created_at,
        "updated_at": new.updated_at,
    }


def file_rows(record: PlannedRecord) -> list[dict[str, Any]]:
    return [
        {
            "id": new_id(),
            "message_id": record.message_id,
            "type": file.type.value,
            "transfer_method": file.transfer_method.value,
            "url": file.url,
            "belongs_to": file.belongs_to.value,
            "upload_file_id": file.upload_file_id,
            "created_by_role": CREATED_BY_ROLE[file.belongs_to],
            "created_by": record.request.user_id,
            "created_at": record.created_at,
        }
        for file in record.request.files
    ]


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


def insert_body(message: Any, files: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A message as the insert body that stores it again, with its own id. A message stored
    without a client_message_id is exported with its id as one, so re-imports stay idempotent."""
    return {
        "app_id": message.app_id,
        "user_id": message.from_end_user_id,
        "conversation_id": message.conversation_id,
        "message_id": message.id,
        "conversation_name": message.conversation_name,
        "client_message_id": message.client_message_id or message.id,
        "query": message.query,
        "answer": message.answer,
        "model_provider": message.model_provider,
        "model_id": message.model_id,
        "inputs": message.inputs,
        "metadata": message.message_metadata or {},
        "created_at": message.created_at.isoformat().replace("+00:00", "Z"),
        "message_tokens": message.message_tokens,
        "answer_tokens": message.answer_tokens,
        "total_price": str(message.total_price),
        "currency": message.currency,
        "files": [
            {
                "type": file["type"],
                "transfer_method": file["transfer_method"],
                "url": file["url"],
                "belongs_to": file["belongs_to"],
                "upload_file_id": file["upload_file_id"],
            }
            for file in files
        ],
    }


def check_statement_size(
    connection: AsyncConnection,
    record: PlannedRecord,
    row: Callable[[PlannedRecord], Mapping[str, Any]],
) -> None:
    """Refuse, as too large, a message (``row(record)``) the database would drop the
    connection over.

    The exact size costs an encode per value, so it is only worked out for the rare message
    whose cheap upper bound (8 bytes a character: 4 in UTF-8, doubled by escaping; the query
    is stored twice) is close."""
    limit = max_statement_bytes(connection)
    if limit is None:
        return
    request = record.request
    characters = len(request.query) * 2 + len(request.answer) * 2
    documents = len(orjson.dumps(request.inputs)) + len(orjson.dumps(request.metadata))
    if 8 * characters + 2 * documents + 2 * STATEMENT_HEADROOM_BYTES < limit:
        return
    size = mysql_literal_bytes(row(record)) + STATEMENT_HEADROOM_BYTES
    if size > limit:
        raise RecordTooLarge(
            "The record is too large for this database: its statement would be about "
            f"{size} bytes, over the server's max_allowed_packet of {limit}.",
            detail={"statement_bytes": size, "max_allowed_packet": limit},
        )


class SeedStore:
    """The design document's tables (implements ``stores.base.Store``)."""

    async def resolve(
        self, connection: AsyncConnection, records: Sequence[PlannedRecord]
    ) -> list[PlannedRecord | ChatIngestError]:
        """Stored as planned."""
        return list(records)

    def check_size(self, connection: AsyncConnection, record: PlannedRecord) -> None:
        check_statement_size(connection, record, message_row)

    async def lock_snapshot(
        self, connection: AsyncConnection, records: Sequence[PlannedRecord]
    ) -> Snapshot:
        """Every writer to a conversation takes its row lock before touching ``messages``, so
        writers queue instead of deadlocking on the foreign key's shared lock; taking the
        locks in id order keeps two batches from deadlocking on each other."""
        owners: dict[str, tuple[str, str]] = {}
        c = conversations.c
        for chunk in sql.chunks(conversations_to_lock(records)):
            statement = (
                select(c.id, c.app_id, c.from_end_user_id)
                .where(c.id.in_(chunk))
                .order_by(c.id)
                .with_for_update()
            )
            for row in await connection.execute(statement):
                owners[row.id] = (row.app_id, row.from_end_user_id)
        message_ids = message_ids_to_read(records)
        stored = await self._messages_where(connection, messages.c.id, message_ids)
        return Snapshot(owners, {message.id: message for message, _ in stored})

    async def _messages_where(
        self, connection: AsyncConnection, column: Any, values: Sequence[Any]
    ) -> list[tuple[StoredMessage, str | None]]:
        m, c = messages.c, conversations.c
        found = []
        for chunk in sql.chunks(values):
            statement = (
                select(m.id, m.conversation_id, m.client_message_id, m.query, m.answer)
                .add_columns(c.app_id, c.from_end_user_id)
                .join(conversations, m.conversation_id == c.id)
                .where(column.in_(chunk))
            )
            for row in await connection.execute(statement):
                stored = StoredMessage(
                    row.id,
                    row.conversation_id,
                    (row.app_id, row.from_end_user_id),
                    row.query,
                    row.answer,
                )
                found.append((stored, row.client_message_id))
        return found

    async def create_conversations(
        self, connection: AsyncConnection, new: Sequence[NewConversation]
    ) -> int:
        rows = [conversation_row(conversation) for conversation in new]
        return await sql.insert_ignoring_duplicates(connection, conversations, rows)

    async def insert_messages(
        self, connection: AsyncConnection, records: Sequence[PlannedRecord]
    ) -> int:
        rows = [message_row(record) for record in records]
        return await sql.insert_ignoring_duplicates(connection, messages, rows)

    async def find_messages_by_key(
        self, connection: AsyncConnection, keys: Sequence[Key]
    ) -> dict[Key, StoredMessage]:
        m = messages.c
        column = tuple_(m.conversation_id, m.client_message_id)
        found = await self._messages_where(connection, column, keys)
        return {
            (stored.conversation_id, client_message_id): stored
            for stored, client_message_id in found
            if client_message_id is not None
        }

    async def insert_files(
        self, connection: AsyncConnection, records: Sequence[PlannedRecord]
    ) -> None:
        rows = [row for record in records for row in file_rows(record)]
        await sql.insert_rows(connection, message_files, rows)

    async def count_messages(
        self, connection: AsyncConnection, deltas: Mapping[str, CountDelta]
    ) -> None:
        await sql.count_messages(connection, conversations, deltas, UTCDateTime())

    async def get_conversation(
        self, connection: AsyncConnection, conversation_id: str
    ) -> dict[str, Any] | None:
        statement = select(conversations).where(conversations.c.id == conversation_id)
        row = (await connection.execute(statement)).first()
        return None if row is None else dict(row._mapping)

    async def list_messages(
        self,
        connection: AsyncConnection,
        conversation_id: str,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` messages of a conversation, oldest first, after ``after``."""
        statement = select(messages).where(messages.c.conversation_id == conversation_id)
        if after is not None:
            position = sql.after_position(
                messages.c.created_at, messages.c.id, after, descending=False
            )
            statement = statement.where(position)
        statement = statement.order_by(messages.c.created_at, messages.c.id).limit(limit)
        return [dict(row._mapping) for row in await connection.execute(statement)]

    async def list_conversations(
        self,
        connection: AsyncConnection,
        app_id: str,
        user_id: str | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` of an app's (and optionally one end user's) conversations, most
        recently updated first, after ``before`` in that order."""
        c = conversations.c
        statement = select(conversations).where(c.app_id == app_id)
        if user_id is not None:
            statement = statement.where(c.from_end_user_id == user_id)
        if before is not None:
            statement = statement.where(
                sql.after_position(c.updated_at, c.id, before, descending=True)
            )
        order = (c.updated_at.desc(), c.id.desc())
        rows = await connection.execute(statement.order_by(*order).limit(limit))
        return [dict(row._mapping) for row in rows]

    async def files_of(
        self, connection: AsyncConnection, message_ids: Sequence[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """The files of ``message_ids``, by message id, oldest first."""
        files: dict[str, list[dict[str, Any]]] = {}
        f = message_files.c
        for chunk in sql.chunks(message_ids):
            statement = select(message_files).where(f.message_id.in_(chunk)).order_by(f.id)
            for row in await connection.execute(statement):
                files.setdefault(row.message_id, []).append(dict(row._mapping))
        return files

    async def export_messages(
        self, engine: AsyncEngine, app_id: str, user_id: str | None, since: datetime | None
    ) -> AsyncIterator[dict[str, Any]]:
        """One connection streams the messages (MySQL cannot run other queries on a
        connection while it streams); another reads their files."""
        statement = app_messages(app_id, user_id, since).execution_options(yield_per=1000)
        async with engine.connect() as streaming, engine.connect() as lookups:
            result = await streaming.stream(statement)
            async for rows in result.partitions():
                files = await self.files_of(lookups, [row.id for row in rows])
                for row in rows:
                    yield insert_body(row, files.get(row.id, []))
