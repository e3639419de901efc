"""Records written over HTTP in the Dify layout, judged by Dify's own rules (``dify_rules``):
the values SPEC §8 lists, every enum value one Dify accepts, visibility in the console list,
the Service API and the memory, replays, conflicts and the reuse of Dify's conversations."""

import asyncio
import uuid
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import ServiceClient
from tests.dify import dify_rules
from tests.dify.conftest import OPERATOR, dify_settings
from tests.dify.schema import snapshot
from tests.dify.seed import (
    UUID_NIL,
    DifyApp,
    create_dify_app,
    create_dify_conversation,
    create_end_user,
)

pytestmark = pytest.mark.asyncio


def body(app: DifyApp, user: str = "alice", **fields: Any) -> dict[str, Any]:
    return {
        "app_id": app.id,
        "user_id": user,
        "query": "Where is my order?",
        "answer": "It left this morning.",
    } | fields


async def insert(http: httpx.AsyncClient, app: DifyApp, **fields: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {app.token}"}
    return await http.post("/api/chat/insert", json=body(app, **fields), headers=headers)


async def row(engine: AsyncEngine, sql: str, **params: Any) -> dict[str, Any]:
    async with engine.connect() as connection:
        found = (await connection.execute(text(sql), params)).first()
    assert found is not None, sql
    return dict(found._mapping)


async def count(engine: AsyncEngine, table: str, app: DifyApp) -> int:
    async with engine.connect() as connection:
        column = "tenant_id" if table == "end_users" else "app_id"
        value = app.tenant_id if table == "end_users" else app.id
        sql = f"SELECT COUNT(*) FROM {table} WHERE {column} = :v"
        return int(await connection.scalar(text(sql), {"v": value}) or 0)


async def test_a_new_conversation_is_written_as_dify_writes_it(
    dify_client: httpx.AsyncClient, dify_engine: AsyncEngine, dify_app: DifyApp
) -> None:
    async with dify_engine.connect() as connection:
        before = await snapshot(connection)
    conversation_id = str(uuid.uuid4())
    query = "A question longer than twenty characters"
    turns = [
        await insert(
            dify_client,
            dify_app,
            conversation_id=conversation_id,
            client_message_id=f"m{i}",
            query=f"{query} {i}",
            created_at=f"2026-11-0{i}T10:00:00Z",
            metadata={"latency": 1.5, "source": "crm"},
            files=[
                {
                    "type": "other",
                    "transfer_method": "remote_url",
                    "url": "https://example.com/a.pdf",
                    "belongs_to": "assistant",
                }
            ],
        )
        for i in (1, 2, 3)
    ]
    assert [r.status_code for r in turns] == [200, 200, 200], turns[0].text
    assert [r.json()["conversation_created"] for r in turns] == [True, False, False]
    conversation = await row(
        dify_engine, "SELECT * FROM conversations WHERE id = :id", id=conversation_id
    )
    async with dify_engine.connect() as connection:
        end_user = await dify_rules.service_api_end_user(
            connection, dify_app.tenant_id, dify_app.id, "alice"
        )
        users = await dify_rules.end_user_rows(connection, dify_app.tenant_id, dify_app.id, "alice")
    assert end_user is not None and len(users) == 1
    assert (users[0]["type"], users[0]["external_user_id"], users[0]["is_anonymous"]) == (
        "service-api",
        "alice",
        False,
    )
    assert {
        key: conversation[key]
        for key in ("mode", "name", "status", "from_source", "invoke_from", "dialogue_count")
    } == {
        "mode": "chat",
        "name": "A question longer th...",
        "status": "normal",
        "from_source": "api",
        "invoke_from": "service-api",
        "dialogue_count": 3,
    }
    assert str(conversation["app_model_config_id"]) == dify_app.app_model_config_id
    assert str(conversation["from_end_user_id"]) == end_user
    assert conversation["from_account_id"] is None and not conversation["is_deleted"]
    assert conversation["updated_at"].isoformat() == "2026-11-03T10:00:00"
    assert conversation["created_at"].isoformat() == "2026-11-01T10:00:00"
    message = await row(
        dify_engine, "SELECT * FROM messages WHERE id = :id", id=turns[0].json()["message_id"]
    )
    assert str(message["parent_message_id"]) == UUID_NIL
    assert (message["invoke_from"], message["from_source"], message["app_mode"]) == (
        "service-api",
        "api",
        "chat",
    )
    assert message["message_unit_price"] == 0 and message["answer_unit_price"] == 0
    assert message["provider_response_latency"] == 1.5
    assert orjson.loads(message["message_metadata"]) == {
        "latency": 1.5,
        "source": "crm",
        "retriever_resources": [],
    }
    document = message["message"]
    if isinstance(document, str):
        document = orjson.loads(document)
    assert document == [
        {"role": "user", "text": f"{query} 1", "files": []},
        {"role": "assistant", "text": "It left this morning.", "files": []},
    ]
    file = await row(
        dify_engine, "SELECT * FROM message_files WHERE message_id = :m", m=str(message["id"])
    )
    assert (file["type"], file["transfer_method"], file["belongs_to"]) == (
        "custom",
        "remote_url",
        "assistant",
    )
    assert (file["created_by_role"], str(file["created_by"])) == ("end_user", end_user)
    async with dify_engine.connect() as connection:
        assert conversation_id in await dify_rules.console_list(connection, dify_app.id, "chat")
        assert await dify_rules.service_api_conversations(connection, dify_app.id, end_user) == [
            conversation_id
        ]
        listed = await dify_rules.service_api_messages(
            connection, dify_app.id, end_user, conversation_id
        )
        assert listed is not None
        assert [m["query"] for m in listed] == [f"{query} {i}" for i in (1, 2, 3)]
        assert all(m["retriever_resources"] == [] for m in listed)
        history = await dify_rules.memory_history(connection, conversation_id, "next?")
        assert [q for q, _ in history] == [f"{query} {i}" for i in (1, 2, 3)]
        assert await dify_rules.unaccepted_values(connection) == []
        assert await snapshot(connection) == before


@pytest.mark.parametrize("mode", ["advanced-chat", "agent-chat", "agent"])
async def test_other_conversation_modes_and_their_model_config(
    dify_client: httpx.AsyncClient, dify_engine: AsyncEngine, mode: str
) -> None:
    """Chatflow apps have no model config on their conversations; agent apps keep theirs."""
    async with dify_engine.begin() as connection:
        app = await create_dify_app(connection, mode=mode)
    response = await insert(dify_client, app)
    assert response.status_code == 200, response.text
    conversation_id = response.json()["conversation_id"]
    conversation = await row(
        dify_engine, "SELECT * FROM conversations WHERE id = :id", id=conversation_id
    )
    config = conversation["app_model_config_id"]
    assert (None if config is None else str(config)) == app.app_model_config_id
    assert (conversation["mode"], conversation["name"]) == (mode, "Where is my order?")
    message = await row(
        dify_engine, "SELECT app_mode FROM messages WHERE conversation_id = :c", c=conversation_id
    )
    assert message["app_mode"] == mode
    async with dify_engine.connect() as connection:
        assert await dify_rules.console_list(connection, app.id, mode) == [conversation_id]


async def test_racing_writers_of_one_new_conversation(
    dify_client: httpx.AsyncClient, dify_engine: AsyncEngine, dify_app: DifyApp
) -> None:
    conversation_id = str(uuid.uuid4())
    responses = await asyncio.gather(
        *(
            insert(
                dify_client, dify_app, conversation_id=conversation_id, client_message_id=f"r{i}"
            )
            for i in range(12)
        )
    )
    assert {r.status_code for r in responses} == {200}
    assert sum(r.json()["conversation_created"] for r in responses) == 1
    conversation = await row(
        dify_engine, "SELECT dialogue_count FROM conversations WHERE id = :id", id=conversation_id
    )
    assert conversation["dialogue_count"] == 12
    assert await count(dify_engine, "messages", dify_app) == 12


async def test_replays_return_the_first_message_and_write_nothing(
    dify_client: httpx.AsyncClient, dify_engine: AsyncEngine, dify_app: DifyApp
) -> None:
    conversation_id = str(uuid.uuid4())
    first = await insert(
        dify_client, dify_app, conversation_id=conversation_id, client_message_id="k1"
    )
    again = await insert(
        dify_client, dify_app, conversation_id=conversation_id.upper(), client_message_id="k1"
    )
    assert first.status_code == again.status_code == 200
    assert again.json()["message_id"] == first.json()["message_id"]
    assert (again.json()["created"], again.json()["conversation_id"]) == (False, conversation_id)
    other = await insert(
        dify_client,
        dify_app,
        conversation_id=conversation_id,
        client_message_id="k1",
        answer="Another answer",
    )
    assert other.status_code == 409
    assert await count(dify_engine, "messages", dify_app) == 1
    conversation = await row(
        dify_engine, "SELECT dialogue_count FROM conversations WHERE id = :id", id=conversation_id
    )
    assert conversation["dialogue_count"] == 1
    batch = await dify_client.post(
        "/api/chat/insert/batch",
        json={
            "items": [
                body(dify_app, conversation_id=conversation_id, client_message_id="k1"),
                body(dify_app, conversation_id=conversation_id, client_message_id="k2"),
                body(dify_app, conversation_id=conversation_id, client_message_id="k2"),
            ]
        },
        headers=OPERATOR,
    )
    assert batch.status_code == 200
    assert (batch.json()["inserted"], batch.json()["duplicates"]) == (1, 2)
    assert await count(dify_engine, "messages", dify_app) == 2


async def test_conversations_dify_created_for_the_user_are_continued(
    dify_client: httpx.AsyncClient, dify_engine: AsyncEngine, dify_app: DifyApp
) -> None:
    async with dify_engine.begin() as connection:
        end_user = await create_end_user(connection, dify_app, "bob")
        conversation = await create_dify_conversation(connection, dify_app, end_user, turns=2)
    response = await insert(dify_client, dify_app, user="bob", conversation_id=conversation.id)
    assert response.status_code == 200, response.text
    assert response.json()["conversation_created"] is False
    async with dify_engine.connect() as connection:
        users = await dify_rules.end_user_rows(connection, dify_app.tenant_id, dify_app.id, "bob")
        listed = await dify_rules.service_api_messages(
            connection, dify_app.id, end_user, conversation.id
        )
        history = await dify_rules.memory_history(connection, conversation.id, "next")
    assert len(users) == 1
    assert listed is not None
    assert [m["query"] for m in listed] == [
        "Dify question 1",
        "Dify question 2",
        "Where is my order?",
    ]
    assert [q for q, _ in history] == [m["query"] for m in listed]
    stored = await row(
        dify_engine, "SELECT dialogue_count FROM conversations WHERE id = :id", id=conversation.id
    )
    assert stored["dialogue_count"] == 3


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE conversations SET from_end_user_id = :other WHERE id = :id",
        "UPDATE conversations SET from_source = 'console', from_end_user_id = NULL,"
        " from_account_id = :other WHERE id = :id",
        "UPDATE conversations SET is_deleted = true WHERE id = :id",
    ],
    ids=["another end user", "a console conversation", "a deleted conversation"],
)
async def test_other_conversations_are_a_conflict(
    dify_client: httpx.AsyncClient, dify_engine: AsyncEngine, dify_app: DifyApp, change: str
) -> None:
    async with dify_engine.begin() as connection:
        end_user = await create_end_user(connection, dify_app, "carol")
        conversation = await create_dify_conversation(connection, dify_app, end_user)
        await connection.execute(text(change), {"other": str(uuid.uuid4()), "id": conversation.id})
    response = await insert(dify_client, dify_app, user="carol", conversation_id=conversation.id)
    assert response.status_code == 409, response.text
    assert await count(dify_engine, "messages", dify_app) == 2


async def test_first_writes_of_a_new_user_create_one_end_user(
    dify_url: str, dify_engine: AsyncEngine, dify_app: DifyApp
) -> None:
    """Twenty concurrent first writes for one new user, over two instances."""
    async with (
        ServiceClient(dify_settings(dify_url)) as one,
        ServiceClient(dify_settings(dify_url)) as two,
    ):
        responses = await asyncio.gather(
            *(insert(one if i % 2 else two, dify_app, user="dave") for i in range(20))
        )
    assert {r.status_code for r in responses} == {200}
    async with dify_engine.connect() as connection:
        users = await dify_rules.end_user_rows(connection, dify_app.tenant_id, dify_app.id, "dave")
    assert len(users) == 1
    assert await count(dify_engine, "conversations", dify_app) == 20


async def test_an_end_user_dify_made_is_reused_whatever_its_type(
    dify_client: httpx.AsyncClient, dify_engine: AsyncEngine, dify_app: DifyApp
) -> None:
    async with dify_engine.begin() as connection:
        browser = await create_end_user(connection, dify_app, "gina", type_="browser")
    response = await insert(dify_client, dify_app, user="gina", created_at="2040-01-01T00:00:00Z")
    assert response.status_code == 200, response.text
    conversation = await row(
        dify_engine,
        "SELECT from_end_user_id, created_at FROM conversations WHERE id = :id",
        id=response.json()["conversation_id"],
    )
    assert str(conversation["from_end_user_id"]) == browser
    assert conversation["created_at"].year == 2040  # Dify's datetime columns go past 2038
    async with dify_engine.connect() as connection:
        users = await dify_rules.end_user_rows(connection, dify_app.tenant_id, dify_app.id, "gina")
    assert len(users) == 1


async def test_a_large_batch_takes_the_bulk_path_with_the_same_rules(
    dify_client: httpx.AsyncClient, dify_engine: AsyncEngine, dify_app: DifyApp
) -> None:
    """150 new conversations, messages and files: each table's rows go through COPY and a
    staging table on PostgreSQL, LOAD DATA on MySQL; a replay of the batch writes nothing."""
    items = [
        body(
            dify_app,
            user=f"bulk-{n % 3}",
            conversation_id=str(uuid.uuid4()),
            client_message_id=f"k{n}",
            files=[{"url": f"https://example.com/{n}.png", "type": "image"}],
        )
        for n in range(150)
    ]
    for expected in ((150, 0), (0, 150)):
        batch = await dify_client.post(
            "/api/chat/insert/batch", json={"items": items}, headers=OPERATOR
        )
        assert batch.status_code == 200, batch.text
        assert (batch.json()["inserted"], batch.json()["duplicates"]) == expected
    assert await count(dify_engine, "messages", dify_app) == 150
    assert await count(dify_engine, "conversations", dify_app) == 150
    async with dify_engine.connect() as connection:
        assert await dify_rules.unaccepted_values(connection) == []
        files = await connection.scalar(
            text(
                "SELECT COUNT(*) FROM message_files f JOIN messages m ON f.message_id = m.id"
                " WHERE m.app_id = :app"
            ),
            {"app": dify_app.id},
        )
    assert files == 150
