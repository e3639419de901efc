"""SQL for the service's own ``api_keys`` table (the same whatever the table layout)."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chat_ingest.db.models import api_keys
from chat_ingest.db.types import UTCDateTime
from chat_ingest.stores.sql import AnyRow


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
