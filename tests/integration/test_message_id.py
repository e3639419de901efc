"""A given ``message_id`` (SPEC §2): kept, replayed, refused when it names another message —
over single inserts, batches and the importer's database sink, and under races."""

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from chat_ingest.db.unit_of_work import Database
from chat_ingest.ids import new_id
from chat_ingest.runtime import insert_policy, open_store
from chat_ingest.sinks import DatabaseSink
from tests.conftest import make_settings, unique
from tests.integration.rows import conversation_row, count_rows, message_rows

pytestmark = pytest.mark.asyncio


def body(**fields: Any) -> dict[str, Any]:
    return {"app_id": "mid-app", "user_id": "user-1", "query": "问", "answer": "答"} | fields


async def insert(client: httpx.AsyncClient, **fields: Any) -> httpx.Response:
    return await client.post("/api/chat/insert", json=body(**fields))


async def test_the_message_keeps_its_id_and_a_replay_writes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    message_id, conversation_id = new_id(), unique("c")
    first = await insert(client, message_id=message_id, conversation_id=conversation_id)
    assert first.status_code == 200, first.text
    assert first.json()["message_id"] == message_id and first.json()["created"] is True
    again = await insert(client, message_id=message_id.upper(), conversation_id=conversation_id)
    assert again.status_code == 200, again.text
    assert again.json()["created"] is False and again.json()["message_id"] == message_id
    [row] = await message_rows(engine, conversation_id)
    assert row["id"] == message_id
    conversation = await conversation_row(engine, conversation_id)
    assert conversation is not None and conversation["dialogue_count"] == 1


@pytest.mark.parametrize("change", [{"answer": "另一个答案"}, {"query": "另一个问题"}, {}])
async def test_the_same_id_for_another_message_is_409_and_writes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, change: dict[str, str]
) -> None:
    """``{}``: the same content, but in another (new) conversation."""
    message_id, conversation_id, elsewhere = new_id(), unique("c"), unique("c")
    assert (await insert(client, message_id=message_id, conversation_id=conversation_id)).is_success
    target = conversation_id if change else elsewhere
    response = await insert(client, message_id=message_id, conversation_id=target, **change)
    assert response.status_code == 409, response.text
    assert "message_id" in response.json()["error"]
    assert await conversation_row(engine, elsewhere) is None
    assert len(await message_rows(engine, conversation_id)) == 1


@pytest.mark.parametrize("bad", ["not-a-uuid", "0190c6a25b1e7c3d9f001234567890ab", 42])
async def test_a_message_id_that_is_not_a_uuid_is_400(
    client: httpx.AsyncClient, engine: AsyncEngine, bad: Any
) -> None:
    conversation_id = unique("c")
    response = await insert(client, message_id=bad, conversation_id=conversation_id)
    assert response.status_code == 400, response.text
    assert response.json()["detail"][0]["loc"][-1] == "message_id"
    assert await conversation_row(engine, conversation_id) is None


async def test_batch_items_follow_the_same_rules(client: httpx.AsyncClient) -> None:
    stored, conversation_id = new_id(), unique("c")
    assert (await insert(client, message_id=stored, conversation_id=conversation_id)).is_success
    fresh = new_id()
    items = [
        body(message_id=stored, conversation_id=conversation_id),  # replay of a stored one
        body(message_id=stored, conversation_id=conversation_id, answer="x"),  # 409
        body(message_id=fresh, conversation_id=conversation_id),  # new
        body(message_id=fresh, conversation_id=conversation_id),  # replay within the batch
        body(message_id="nope", conversation_id=conversation_id),  # 400
    ]
    response = await client.post("/api/chat/insert/batch", json={"items": items})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [200, 409, 200, 200, 400]
    assert [r["created"] for r in results] == [False, False, True, False, False]
    assert results[2]["message_id"] == results[3]["message_id"] == fresh
    assert response.json()["inserted"] == 1 and response.json()["duplicates"] == 2


async def test_the_import_sink_keeps_ids_and_rejects_clashes(
    database_url: str, engine: AsyncEngine
) -> None:
    settings = make_settings(database_url)
    sink = DatabaseSink(
        Database(engine), await open_store(settings, engine), insert_policy(settings)
    )
    message_id, conversation_id = new_id(), unique("c")
    line = body(message_id=message_id, conversation_id=conversation_id, client_message_id="k1")
    clash = body(message_id=message_id, conversation_id=unique("c"), client_message_id="k2")
    verdicts = await sink.store([line, dict(line), clash])
    assert [v.created for v in verdicts] == [True, False, False]
    assert verdicts[2].error is not None and "message_id" in verdicts[2].error
    [row] = await message_rows(engine, conversation_id)
    assert row["id"] == message_id


async def test_racing_replays_store_one_row(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    message_id, conversation_id = new_id(), unique("race")
    responses = await asyncio.gather(
        *(insert(client, message_id=message_id, conversation_id=conversation_id) for _ in range(8))
    )
    assert [r.status_code for r in responses] == [200] * 8
    assert sum(r.json()["created"] for r in responses) == 1
    assert sum(r.json()["conversation_created"] for r in responses) == 1
    assert {r.json()["message_id"] for r in responses} == {message_id}
    [row] = await message_rows(engine, conversation_id)
    assert row["id"] == message_id
    conversation = await conversation_row(engine, conversation_id)
    assert conversation is not None and conversation["dialogue_count"] == 1


async def test_racing_claims_on_one_id_from_several_conversations(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    message_id, app_id = new_id(), unique("app")
    conversation_ids = [unique("claim") for _ in range(6)]
    responses = await asyncio.gather(
        *(
            insert(client, app_id=app_id, message_id=message_id, conversation_id=c)
            for c in conversation_ids
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * 5, [r.text for r in responses]
    [winner] = [c for c, r in zip(conversation_ids, responses, strict=True) if r.is_success]
    for conversation_id in conversation_ids:  # a refused record leaves no conversation behind
        exists = await conversation_row(engine, conversation_id) is not None
        assert exists == (conversation_id == winner)
    assert await count_rows(engine, app_id) == (1, 1)
