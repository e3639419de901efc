"""Who is calling and which apps they may touch; the cached key ring that answers it.

Keys are checked against an in-memory snapshot of the ``api_keys`` table, reloaded at most
every ``ttl`` seconds: a request costs no database round trip, and a revoked key stops
working within ``ttl`` seconds in every process.
"""

import asyncio
import hmac
import time
from dataclasses import dataclass
from typing import Protocol

from chat_ingest.db.unit_of_work import Database
from chat_ingest.errors import Forbidden, NotFound, Unauthenticated
from chat_ingest.service.keys import ALL_APPS, Grant, StoredKeys, hash_key, load_keys


@dataclass(frozen=True)
class Caller:
    """The authenticated caller. ``key_id`` is None when the service runs open."""

    key_id: str | None
    app_ids: frozenset[str]

    @property
    def all_apps(self) -> bool:
        return ALL_APPS in self.app_ids

    def can_access(self, app_id: str) -> bool:
        return self.all_apps or app_id in self.app_ids

    def require_app(self, app_id: str) -> None:
        """For writes and listings naming an app: another app's id is a 403."""
        if not self.can_access(app_id):
            raise Forbidden("This API key may not use this app_id.", detail={"app_id": app_id})

    def require_visible(self, app_id: str, what: str = "Conversation") -> None:
        """For records fetched by id: another app's record is a 404, as if it did not exist."""
        if not self.can_access(app_id):
            raise NotFound(f"{what} not found.")


OPEN_ACCESS = Caller(key_id=None, app_ids=frozenset({ALL_APPS}))


class ExternalKeys(Protocol):
    """Keys kept elsewhere (Dify's ``api_tokens``), asked one key at a time."""

    async def app_ids(self, key: str) -> tuple[str, frozenset[str]] | None:
        """``(key id, apps)`` for a known key, else None."""


class KeyRing:
    """Authenticates bearer keys from ``API_KEYS``, the (cached) ``api_keys`` table and, in
    the Dify layout, Dify's app keys instead of that table."""

    def __init__(
        self,
        database: Database,
        environment_grants: dict[str, Grant],
        *,
        auth_enabled: bool,
        ttl: float,
        external: ExternalKeys | None = None,
    ) -> None:
        self.database = database
        self.environment_grants = environment_grants
        self.auth_enabled = auth_enabled
        self.ttl = ttl
        self.external = external
        self._stored: StoredKeys | None = None
        self._loaded_at = float("-inf")
        self._reload_lock = asyncio.Lock()

    async def stored_keys(self) -> StoredKeys:
        """The table's keys, reloaded when older than ``ttl`` (one reload at a time)."""
        if time.monotonic() - self._loaded_at < self.ttl and self._stored is not None:
            return self._stored
        async with self._reload_lock:
            if time.monotonic() - self._loaded_at >= self.ttl or self._stored is None:
                self._stored = await self.database.run(load_keys)
                self._loaded_at = time.monotonic()
        return self._stored

    async def enforced(self) -> bool:
        if self.auth_enabled or self.environment_grants:
            return True
        if self.external is not None:
            return False  # the Dify layout has no api_keys table
        return (await self.stored_keys()).any_created

    async def authenticate(self, key: str | None) -> Caller:
        """The caller for ``key``; ``OPEN_ACCESS`` when no key exists and auth is not on."""
        if not await self.enforced():
            return OPEN_ACCESS
        if not key:
            raise Unauthenticated("An API key is required: send 'Authorization: Bearer <key>'.")
        digest = hash_key(key)
        grant = self.environment_grants.get(digest)
        if grant is None and self.external is not None:
            found = await self.external.app_ids(key)
            if found is not None:
                return Caller(key_id=found[0], app_ids=found[1])
        elif grant is None:
            grant = (await self.stored_keys()).active.get(digest)
        # The lookup is by hash, so its timing says nothing about the key; the final
        # comparison is constant-time anyway.
        if grant is None or not hmac.compare_digest(grant.key_hash, digest):
            raise Unauthenticated("Invalid or revoked API key.")
        return Caller(key_id=grant.key_id, app_ids=grant.app_ids)
