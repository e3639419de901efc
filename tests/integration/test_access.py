"""API keys on each backend: the 401/403/404 matrix across two apps, revocation within the
cache TTL, open mode, and keys from the environment."""

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from chat_ingest.db import migrate
from chat_ingest.db.engine import create_engine
from chat_ingest.service import keys as keys_service
from tests.conftest import DatabaseFactory, ServiceClient, make_settings, unique
from tests.integration.rows import count_rows

pytestmark = pytest.mark.asyncio
CACHE_TTL = 0.3
ENV_KEY = "env-key-for-app-b-0123456789"


@dataclass
class KeyedService:
    http: httpx.AsyncClient
    engine: AsyncEngine
    app_a: str
    app_b: str
    key_a: str
    key_a_id: str
    key_all: str

    def auth(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


async def _create_key(engine: AsyncEngine, *app_ids: str) -> tuple[str, str]:
    async with engine.begin() as connection:
        return await keys_service.create_key(connection, app_ids)


@pytest_asyncio.fixture
async def keyed(database_factory: DatabaseFactory) -> AsyncIterator[KeyedService]:
    """A fresh database with a key for app A and one for every app, plus ``API_KEYS`` giving
    ENV_KEY app B."""
    url = await database_factory.new_url()
    engine = create_engine(url)
    await migrate.upgrade(engine)
    app_a, app_b = unique("app-a"), unique("app-b")
    key_a_id, key_a = await _create_key(engine, app_a)
    _, key_all = await _create_key(engine, "*")
    settings = make_settings(url, api_keys=f"{ENV_KEY}={app_b}", api_key_cache_ttl=CACHE_TTL)
    async with ServiceClient(settings) as http:
        yield KeyedService(http, engine, app_a, app_b, key_a, key_a_id, key_all)
    await engine.dispose()


def _body(app_id: str, **fields: Any) -> dict[str, Any]:
    return {"app_id": app_id, "user_id": "u", "query": "q", "answer": "a"} | fields


async def test_missing_unknown_and_malformed_keys_are_401(keyed: KeyedService) -> None:
    for headers in ({}, keyed.auth("not-a-key"), {"Authorization": f"Basic {keyed.key_a}"}):
        response = await keyed.http.post(
            "/api/chat/insert", json=_body(keyed.app_a), headers=headers
        )
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["success"] is False
    assert (await keyed.http.get("/api/chat/health")).status_code == 200


async def test_a_key_writes_only_its_apps_and_reads_only_their_conversations(
    keyed: KeyedService,
) -> None:
    http, auth_a, auth_b = keyed.http, keyed.auth(keyed.key_a), keyed.auth(ENV_KEY)
    written = await http.post("/api/chat/insert", json=_body(keyed.app_a), headers=auth_a)
    assert written.status_code == 200
    conversation_id = written.json()["conversation_id"]

    stranger_id = unique("conv")
    refused = await http.post(
        "/api/chat/insert",
        json=_body(keyed.app_a, conversation_id=stranger_id),
        headers=auth_b,
    )
    assert refused.status_code == 403
    assert await count_rows(keyed.engine, keyed.app_a) == (1, 1)

    assert (await http.get(f"/api/chat/{conversation_id}", headers=auth_a)).status_code == 200
    hidden = await http.get(f"/api/chat/{conversation_id}", headers=auth_b)
    absent = await http.get(f"/api/chat/{unique('conv')}", headers=auth_b)
    assert hidden.status_code == absent.status_code == 404
    assert hidden.json()["error"] == absent.json()["error"]

    everything = keyed.auth(keyed.key_all)
    assert (await http.get(f"/api/chat/{conversation_id}", headers=everything)).status_code == 200
    for_b = await http.post("/api/chat/insert", json=_body(keyed.app_b), headers=everything)
    assert for_b.status_code == 200


async def test_listings_and_batches_are_scoped_to_the_key(keyed: KeyedService) -> None:
    http, auth_a, auth_b = keyed.http, keyed.auth(keyed.key_a), keyed.auth(ENV_KEY)
    written = await http.post("/api/chat/insert", json=_body(keyed.app_a), headers=auth_a)
    conversation_id = written.json()["conversation_id"]

    messages = f"/api/chat/{conversation_id}/messages"
    assert (await http.get(messages, headers=auth_a)).status_code == 200
    assert (await http.get(messages, headers=auth_b)).status_code == 404

    listing = "/api/chat/conversations"
    mine = await http.get(listing, params={"app_id": keyed.app_a}, headers=auth_a)
    assert [c["id"] for c in mine.json()["data"]] == [conversation_id]
    foreign = await http.get(listing, params={"app_id": keyed.app_a}, headers=auth_b)
    assert foreign.status_code == 403
    assert (await http.get(listing, params={"app_id": keyed.app_a})).status_code == 401

    batch = await http.post(
        "/api/chat/insert/batch",
        json={"items": [_body(keyed.app_b), _body(keyed.app_a)]},
        headers=auth_b,
    )
    assert [r["status"] for r in batch.json()["results"]] == [200, 403]
    assert await count_rows(keyed.engine, keyed.app_a) == (1, 1)


async def test_a_revoked_key_stops_working_within_the_cache_ttl(keyed: KeyedService) -> None:
    auth_a = keyed.auth(keyed.key_a)
    assert (
        await keyed.http.post("/api/chat/insert", json=_body(keyed.app_a), headers=auth_a)
    ).is_success
    async with keyed.engine.begin() as connection:
        await keys_service.revoke_key(connection, keyed.key_a_id)
    await asyncio.sleep(CACHE_TTL + 0.1)
    response = await keyed.http.post("/api/chat/insert", json=_body(keyed.app_a), headers=auth_a)
    assert response.status_code == 401


async def test_open_mode_warns_and_revoking_every_key_does_not_reopen(
    database_factory: DatabaseFactory, caplog: pytest.LogCaptureFixture
) -> None:
    url = await database_factory.new_url()
    engine = create_engine(url)
    await migrate.upgrade(engine)
    settings = make_settings(url, api_key_cache_ttl=0)
    with caplog.at_level(logging.WARNING, logger="chat_ingest"):
        async with ServiceClient(settings) as http:
            assert (await http.post("/api/chat/insert", json=_body("app"))).status_code == 200
            key_id, _ = await _create_key(engine, "app")
            assert (await http.post("/api/chat/insert", json=_body("app"))).status_code == 401
            async with engine.begin() as connection:
                await keys_service.revoke_key(connection, key_id)
            assert (await http.post("/api/chat/insert", json=_body("app"))).status_code == 401
    await engine.dispose()
    assert any("access control is off" in record.getMessage() for record in caplog.records)


async def test_auth_enabled_without_any_key_refuses_everyone(database_url: str) -> None:
    async with ServiceClient(make_settings(database_url, auth_enabled=True)) as http:
        response = await http.get(f"/api/chat/{unique('conv')}")
    assert response.status_code == 401
