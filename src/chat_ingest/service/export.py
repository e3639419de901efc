"""An app's messages as insert bodies, so that importing them reproduces the same records."""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from chat_ingest import repository


async def insert_bodies(
    engine: AsyncEngine, app_id: str, user_id: str | None, since: datetime | None
) -> AsyncIterator[dict[str, Any]]:
    """Stream the app's messages oldest first. One connection streams the messages (MySQL
    cannot run other queries on a connection while it streams); another reads their files."""
    statement = repository.app_messages(app_id, user_id, since)
    async with engine.connect() as streaming, engine.connect() as lookups:
        async for rows in repository.stream_rows(streaming, statement):
            files = await repository.files_of(lookups, [row.id for row in rows])
            for row in rows:
                yield _insert_body(row, files.get(row.id, []))


def _insert_body(message: Any, files: list[Any]) -> dict[str, Any]:
    """A message as the insert body that stores it again. A message stored without a
    client_message_id is exported with its own id as one, so re-imports stay idempotent."""
    return {
        "app_id": message.app_id,
        "user_id": message.from_end_user_id,
        "conversation_id": message.conversation_id,
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
                "type": file.type,
                "transfer_method": file.transfer_method,
                "url": file.url,
                "belongs_to": file.belongs_to,
                "upload_file_id": file.upload_file_id,
            }
            for file in files
        ],
    }
