"""Dify's app API keys (``api_tokens`` rows with ``type='app'``, sent as ``Bearer app-...``),
looked up one by one and cached for ``ttl`` seconds — a revoked key stops working within
``ttl``, an unknown one costs one query per ``ttl``. Tokens are stored as issued in Dify, so
the lookup is by the token itself; the cache is keyed by its hash."""

import hashlib

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from chat_ingest.db.unit_of_work import Database
from chat_ingest.stores.dify.cache import TtlCache
from chat_ingest.stores.dify.tables import DifyTables

DIFY_APP_KEY_PREFIX = "app-"
_ABSENT = ("", frozenset[str]())


class DifyAppKeys:
    def __init__(self, database: Database, tables: DifyTables, ttl: float) -> None:
        self.database = database
        self.tables = tables
        self._cache: TtlCache[str, tuple[str, frozenset[str]]] = TtlCache(ttl)

    async def app_ids(self, key: str) -> tuple[str, frozenset[str]] | None:
        """``(key id, {its app id})`` for a Dify app key, else None."""
        if not key.startswith(DIFY_APP_KEY_PREFIX):
            return None
        digest = hashlib.sha256(key.encode()).hexdigest()
        found = self._cache.get(digest)
        if found is None:
            found = await self.database.run(lambda connection: self._load(connection, key))
            self._cache.put(digest, found)
        return None if found is _ABSENT or not found[1] else found

    async def _load(self, connection: AsyncConnection, key: str) -> tuple[str, frozenset[str]]:
        t = self.tables.api_tokens.c
        statement = select(t.id, t.app_id).where(t.token == key, t.type == "app").limit(1)
        row = (await connection.execute(statement)).first()
        if row is None or row.app_id is None:
            return _ABSENT
        return f"dify-{row.id}", frozenset({str(row.app_id)})
