"""Reading stored records back."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from chat_ingest import repository
from chat_ingest.errors import NotFound


async def get_conversation(connection: AsyncConnection, conversation_id: str) -> dict[str, Any]:
    row = await repository.get_conversation(connection, conversation_id)
    if row is None:
        raise NotFound("Conversation not found.")
    return dict(row._mapping)


async def check_database(connection: AsyncConnection) -> None:
    await repository.ping(connection)
