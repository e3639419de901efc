"""API keys: creating, listing and revoking them, and loading the active ones.

A key is 256 random bits; only its SHA-256 is stored. Hashing a high-entropy secret needs no
salt or slow KDF: nobody can guess a key from its hash, and the hash is what lookups use.
"""

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from chat_ingest.errors import InvalidInput, NotFound
from chat_ingest.ids import new_id
from chat_ingest.schemas import check_identifier
from chat_ingest.stores import api_keys

ALL_APPS = "*"
KEY_PREFIX = "cik_"
MAX_APP_ID_LENGTH = 64


@dataclass(frozen=True)
class Grant:
    """What one key may touch: its apps, or every app when ``*`` is among them."""

    key_id: str
    key_hash: str
    app_ids: frozenset[str]


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    app_ids: tuple[str, ...]
    name: str | None
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class StoredKeys:
    """The active keys by hash, and whether any key (even a revoked one) was ever created:
    revoking the last key must not reopen the service."""

    active: dict[str, Grant]
    any_created: bool


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def checked_app_ids(app_ids: Iterable[str]) -> frozenset[str]:
    """The scope of a key: app ids (or ``*``), at least one, each following the same rule as
    an insert body's ``app_id`` (a scope ``"appA "`` would match ``appA`` on MySQL)."""
    scope = frozenset(app_ids)
    if not scope:
        raise InvalidInput("A key needs at least one app id (or * for every app).")
    for app_id in scope:
        try:
            check_identifier(app_id)
        except ValueError as exc:
            raise InvalidInput(f"Invalid app id {app_id!r}: {exc}.") from None
        if len(app_id) > MAX_APP_ID_LENGTH:
            raise InvalidInput(f"Invalid app id {app_id!r}: at most 64 characters.")
    return scope


async def create_key(
    connection: AsyncConnection, app_ids: Iterable[str], name: str | None = None
) -> tuple[str, str]:
    """Store a new key; return ``(key_id, key)``. The key itself is never stored."""
    scope = sorted(checked_app_ids(app_ids))
    key_id, key = new_id(), new_key()
    row = {
        "id": key_id,
        "key_hash": hash_key(key),
        "app_ids": scope,
        "name": name,
        "created_at": datetime.now(UTC),
    }
    await api_keys.insert_api_key(connection, row)
    return key_id, key


async def list_keys(connection: AsyncConnection) -> list[KeyInfo]:
    return [
        KeyInfo(row.id, tuple(row.app_ids), row.name, row.created_at, row.revoked_at)
        for row in await api_keys.all_api_keys(connection)
    ]


async def revoke_key(connection: AsyncConnection, key_id: str) -> None:
    if not await api_keys.revoke_api_key(connection, key_id, datetime.now(UTC)):
        raise NotFound(f"No API key with id {key_id!r}.")


async def load_keys(connection: AsyncConnection) -> StoredKeys:
    rows = await api_keys.all_api_keys(connection)
    active = {
        row.key_hash: Grant(row.id, row.key_hash, frozenset(row.app_ids))
        for row in rows
        if row.revoked_at is None
    }
    return StoredKeys(active=active, any_created=bool(rows))


def grants_from_environment(keys: dict[str, frozenset[str]]) -> dict[str, Grant]:
    """``API_KEYS`` entries as grants by hash; their id names the key without revealing it."""
    grants = {}
    for key, app_ids in keys.items():
        digest = hash_key(key)
        grants[digest] = Grant(f"env-{digest[:12]}", digest, checked_app_ids(app_ids))
    return grants
