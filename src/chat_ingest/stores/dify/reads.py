"""Reading Dify's tables back in this service's response shapes, for the records Dify wrote
too: the ``user`` (end user ``session_id``) stands where the seed layout has its
``from_end_user_id``, ``message_metadata`` is parsed from Dify's JSON text, and
``client_message_id`` is unknown. Deleted conversations are not shown, as in Dify."""

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Select, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chat_ingest.stores import sql
from chat_ingest.stores.dify.ids import as_uuid
from chat_ingest.stores.dify.tables import DifyTables
from chat_ingest.stores.dify.types import NaiveUTC

FILE_TYPES_OUT = {"custom": "other"}  # Dify's name → the insert body's


def _conversations(tables: DifyTables) -> Select[Any]:
    c, e = tables.conversations.c, tables.end_users.c
    columns: list[Any] = [c.id, c.app_id, c.name, c.status, c.inputs, c.from_source]
    columns += [c.created_at, c.updated_at, e.session_id.label("from_end_user_id")]
    if "dialogue_count" in c:
        columns.append(c.dialogue_count)
    return (
        select(*columns)
        .outerjoin(tables.end_users, c.from_end_user_id == e.id)
        .where(c.is_deleted.is_(False))
    )


def _conversation_out(row: Any) -> dict[str, Any]:
    conversation = dict(row._mapping)
    conversation.setdefault("dialogue_count", 0)
    return conversation


async def get_conversation(
    connection: AsyncConnection, tables: DifyTables, conversation_id: str
) -> dict[str, Any] | None:
    canonical = as_uuid(conversation_id)
    if canonical is None:
        return None
    statement = _conversations(tables).where(tables.conversations.c.id == canonical)
    row = (await connection.execute(statement)).first()
    return None if row is None else _conversation_out(row)


async def list_conversations(
    connection: AsyncConnection,
    tables: DifyTables,
    app_id: str,
    user_id: str | None,
    before: tuple[datetime, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Newest ``updated_at`` first, as Dify's console lists them; ``user_id`` is the ``user``."""
    canonical = as_uuid(app_id)
    if canonical is None:
        return []
    c, e = tables.conversations.c, tables.end_users.c
    statement = _conversations(tables).where(c.app_id == canonical)
    if user_id is not None:
        statement = statement.where(e.session_id == user_id, e.app_id == canonical)
    if before is not None:
        statement = statement.where(sql.after_position(c.updated_at, c.id, before, descending=True))
    statement = statement.order_by(c.updated_at.desc(), c.id.desc()).limit(limit)
    return [_conversation_out(row) for row in await connection.execute(statement)]


def _metadata(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _message_out(row: Any) -> dict[str, Any]:
    message = dict(row._mapping)
    latency = message.get("provider_response_latency")
    message |= {
        "message_metadata": _metadata(message.get("message_metadata")),
        "provider_response_latency": Decimal(str(latency or 0)).quantize(Decimal("0.001")),
        "client_message_id": None,
    }
    for column in ("status", "error", "updated_at"):
        message.setdefault(column, None)
    return message


async def list_messages(
    connection: AsyncConnection,
    tables: DifyTables,
    conversation_id: str,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    canonical = as_uuid(conversation_id)
    if canonical is None:
        return []
    m = tables.messages.c
    statement = select(tables.messages).where(m.conversation_id == canonical)
    if after is not None:
        statement = statement.where(sql.after_position(m.created_at, m.id, after, descending=False))
    statement = statement.order_by(m.created_at, m.id).limit(limit)
    return [_message_out(row) for row in await connection.execute(statement)]


async def files_of(
    connection: AsyncConnection, tables: DifyTables, message_ids: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    files: dict[str, list[dict[str, Any]]] = {}
    f = tables.message_files.c
    for chunk in sql.chunks(message_ids):
        statement = select(tables.message_files).where(f.message_id.in_(chunk)).order_by(f.id)
        for row in await connection.execute(statement):
            file = dict(row._mapping)
            file.setdefault("belongs_to", None)
            files.setdefault(row.message_id, []).append(file)
    return files


def _export_statement(
    tables: DifyTables, app_id: str, user_id: str | None, since: datetime | None
) -> Select[Any]:
    m, c, e = tables.messages.c, tables.conversations.c, tables.end_users.c
    statement = (
        select(tables.messages, c.name.label("conversation_name"))
        .add_columns(e.session_id, c.from_account_id.label("account_id"))
        .join(tables.conversations, m.conversation_id == c.id)
        .outerjoin(tables.end_users, c.from_end_user_id == e.id)
        .where(c.app_id == app_id, c.is_deleted.is_(False))
        .order_by(m.created_at, m.id)
    )
    if user_id is not None:
        statement = statement.where(e.session_id == user_id)
    if since is not None:
        statement = statement.where(m.created_at >= literal(since, NaiveUTC()))
    return statement


def _file_body(file: Mapping[str, Any]) -> dict[str, Any]:
    """A stored file as an insert body's file; a Dify upload (no URL) is named by its id."""
    upload_file_id = file["upload_file_id"]
    url = file["url"] or f"/files/{upload_file_id}"
    method = file["transfer_method"]
    return {
        "type": FILE_TYPES_OUT.get(file["type"], file["type"]),
        "transfer_method": method if method in ("local_file", "remote_url") else "remote_url",
        "url": url,
        "belongs_to": file.get("belongs_to") or "user",
        "upload_file_id": upload_file_id,
    }


def _insert_body(row: Any, files: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A message as the insert body that stores it again, with its own id."""
    message = _message_out(row)
    metadata = message["message_metadata"] or {}
    body = {
        "app_id": message["app_id"],
        "user_id": row.session_id or row.account_id,
        "conversation_id": message["conversation_id"],
        "message_id": message["id"],
        "client_message_id": message["id"],
        "conversation_name": row.conversation_name,
        "query": message["query"],
        "answer": message["answer"],
        "model_provider": message.get("model_provider"),
        "model_id": message.get("model_id"),
        "inputs": message["inputs"] if isinstance(message["inputs"], dict) else {},
        "metadata": metadata | {"latency": float(message["provider_response_latency"])},
        "created_at": message["created_at"].isoformat().replace("+00:00", "Z"),
        "message_tokens": message["message_tokens"],
        "answer_tokens": message["answer_tokens"],
        "total_price": str(message.get("total_price") or 0),
        "currency": message["currency"],
        "files": [_file_body(file) for file in files],
    }
    return {key: value for key, value in body.items() if value is not None}


async def export_messages(
    engine: AsyncEngine,
    tables: DifyTables,
    app_id: str,
    user_id: str | None,
    since: datetime | None,
) -> AsyncIterator[dict[str, Any]]:
    """One connection streams the messages; another reads their files."""
    canonical = as_uuid(app_id)
    if canonical is None:
        return
    statement = _export_statement(tables, canonical, user_id, since)
    async with engine.connect() as streaming, engine.connect() as lookups:
        result = await streaming.stream(statement.execution_options(yield_per=1000))
        async for page in result.partitions():
            files = await files_of(lookups, tables, [row.id for row in page])
            for row in page:
                yield _insert_body(row, files.get(row.id, []))
