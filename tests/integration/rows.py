"""Reading stored rows back for assertions."""

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from chat_ingest.db.models import conversations, message_files, messages


async def conversation_row(engine: AsyncEngine, conversation_id: str) -> dict[str, Any] | None:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(conversations).where(conversations.c.id == conversation_id)
            )
        ).first()
    return None if row is None else dict(row._mapping)


async def message_rows(engine: AsyncEngine, conversation_id: str) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        result = await connection.execute(
            select(messages)
            .where(messages.c.conversation_id == conversation_id)
            .order_by(messages.c.created_at, messages.c.id)
        )
        return [dict(row._mapping) for row in result]


async def file_rows(engine: AsyncEngine, message_id: str) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        result = await connection.execute(
            select(message_files)
            .where(message_files.c.message_id == message_id)
            .order_by(message_files.c.id)
        )
        return [dict(row._mapping) for row in result]


async def count_rows(engine: AsyncEngine, app_id: str) -> tuple[int, int]:
    """(conversations, messages) stored for ``app_id``."""
    async with engine.connect() as connection:
        n_conv = await connection.scalar(
            select(func.count()).select_from(conversations).where(conversations.c.app_id == app_id)
        )
        n_msg = await connection.scalar(
            select(func.count()).select_from(messages).where(messages.c.app_id == app_id)
        )
    return int(n_conv or 0), int(n_msg or 0)
