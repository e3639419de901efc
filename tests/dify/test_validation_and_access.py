"""Bad input in the Dify layout (a 400 naming the field, nothing written) and access control
with Dify's own app API keys."""

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import ServiceClient
from tests.dify.conftest import OPERATOR, dify_settings
from tests.dify.seed import DifyApp, create_dify_app
from tests.dify.test_writes import body, count, insert

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"app_id": "not-a-uuid"}, ["body", "app_id"]),
        ({"app_id": str(uuid.uuid4())}, ["body", "app_id"]),
        ({"conversation_id": "conv-1"}, ["body", "conversation_id"]),
        ({"message_id": "m-1"}, ["body", "message_id"]),
        (
            {"files": [{"url": "https://x.test/a", "upload_file_id": "u1"}]},
            ["body", "files", 0, "upload_file_id"],
        ),
        (
            {"files": [{"url": "https://x.test/a", "belongs_to": "system"}]},
            ["body", "files", 0, "belongs_to"],
        ),
        ({"total_price": "1000"}, ["body", "total_price"]),
        ({"metadata": {"retriever_resources": {}}}, ["body", "metadata", "retriever_resources"]),
    ],
)
async def test_bad_input_is_a_400_naming_the_field(
    dify_client: httpx.AsyncClient,
    dify_engine: AsyncEngine,
    dify_app: DifyApp,
    fields: dict[str, Any],
    loc: list[str | int],
) -> None:
    response = await dify_client.post(
        "/api/chat/insert", json=body(dify_app, **fields), headers=OPERATOR
    )
    assert response.status_code == 400, response.text
    assert response.json()["detail"][0]["loc"] == loc
    assert await count(dify_engine, "messages", dify_app) == 0
    assert await count(dify_engine, "end_users", dify_app) == 0


@pytest.mark.parametrize(
    ("mode", "status"), [("workflow", "normal"), ("completion", "normal"), ("chat", "archived")]
)
async def test_apps_without_conversations_or_not_normal_are_refused(
    dify_client: httpx.AsyncClient, dify_engine: AsyncEngine, mode: str, status: str
) -> None:
    async with dify_engine.begin() as connection:
        app = await create_dify_app(connection, mode=mode, status=status)
    response = await insert(dify_client, app)
    assert response.status_code == 400, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "app_id"]
    assert await count(dify_engine, "conversations", app) == 0
    batch = await dify_client.post(
        "/api/chat/insert/batch", json={"items": [body(app)]}, headers=OPERATOR
    )
    assert batch.json()["results"][0]["status"] == 400


async def test_dify_app_keys_reach_only_their_own_app(
    dify_client: httpx.AsyncClient, dify_engine: AsyncEngine, dify_app: DifyApp
) -> None:
    async with dify_engine.begin() as connection:
        other = await create_dify_app(connection)
    own = await insert(dify_client, dify_app)
    assert own.status_code == 200, own.text
    headers = {"Authorization": f"Bearer {dify_app.token}"}
    foreign = await dify_client.post("/api/chat/insert", json=body(other), headers=headers)
    assert foreign.status_code == 403
    listing = await dify_client.get(f"/api/chat/conversations?app_id={other.id}", headers=headers)
    assert listing.status_code == 403
    other_conversation = (await insert(dify_client, other)).json()["conversation_id"]
    assert (
        await dify_client.get(f"/api/chat/{other_conversation}", headers=headers)
    ).status_code == 404
    assert (
        await dify_client.get(f"/api/chat/{other_conversation}/messages", headers=headers)
    ).status_code == 404
    assert (await dify_client.post("/api/chat/insert", json=body(dify_app))).status_code == 401
    wrong = {"Authorization": "Bearer app-not-a-key-of-this-dify-000"}
    assert (
        await dify_client.post("/api/chat/insert", json=body(dify_app), headers=wrong)
    ).status_code == 401
    operator = await dify_client.post("/api/chat/insert", json=body(other), headers=OPERATOR)
    assert operator.status_code == 200


async def test_a_key_deleted_in_dify_stops_working_within_the_ttl(
    dify_client: httpx.AsyncClient, dify_engine: AsyncEngine, dify_app: DifyApp
) -> None:
    assert (await insert(dify_client, dify_app)).status_code == 200
    async with dify_engine.begin() as connection:
        await connection.execute(
            text("DELETE FROM api_tokens WHERE token = :t"), {"t": dify_app.token}
        )
    await asyncio.sleep(0.4)  # API_KEY_CACHE_TTL is 0.3 s in these tests
    assert (await insert(dify_client, dify_app)).status_code == 401


async def test_auth_is_on_by_default(dify_url: str, dify_app: DifyApp) -> None:
    settings = dify_settings(dify_url).model_copy(update={"api_keys": ""})
    async with ServiceClient(settings) as http:
        response = await http.post("/api/chat/insert", json=body(dify_app))
        assert response.status_code == 401
        assert (await insert(http, dify_app)).status_code == 200
