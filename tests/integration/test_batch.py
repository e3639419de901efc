"""POST /api/chat/insert/batch: per-item verdicts, replays, order, races, round trips."""

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import ServiceClient, make_settings, unique
from tests.integration.rows import conversation_row, count_rows, file_rows, message_rows

pytestmark = pytest.mark.asyncio

JSON = {"content-type": "application/json"}


def item(app_id: str, **fields: Any) -> dict[str, Any]:
    return {"app_id": app_id, "user_id": "u", "query": "q", "answer": "a"} | fields


async def batch(client: httpx.AsyncClient, items: list[Any]) -> dict[str, Any]:
    response = await client.post("/api/chat/insert/batch", json={"items": items})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_bad_items_fail_alone(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    app_id, conversation_id = unique("app"), unique("conv")
    owned = await client.post("/api/chat/insert", json=item("other-app", conversation_id="taken"))
    assert owned.status_code in (200, 409)
    result = await batch(
        client,
        [
            item(app_id, conversation_id=conversation_id, files=[{"url": "/a.pdf"}]),
            item(app_id, query=""),  # blank
            "not an object",
            item(app_id, conversation_id="taken"),  # another app's conversation
            item(app_id, conversation_id=conversation_id, created_at="1960-01-01T00:00:00Z"),
            item(app_id, conversation_id=conversation_id, query="second"),
        ],
    )
    statuses = [r["status"] for r in result["results"]]
    assert [r["index"] for r in result["results"]] == list(range(6))
    assert statuses[:4] == [200, 400, 400, 409] and statuses[5] == 200
    assert statuses[4] in (200, 400)  # 1960 is outside MySQL's TIMESTAMP range only
    assert result["results"][1]["error"].startswith("Invalid item: query")
    assert result["failed"] == sum(s != 200 for s in statuses)
    assert result["inserted"] == sum(s == 200 for s in statuses) and result["duplicates"] == 0
    conversation = await conversation_row(engine, conversation_id)
    assert conversation is not None and conversation["dialogue_count"] == result["inserted"]
    assert len(await file_rows(engine, result["results"][0]["message_id"])) == 1
    assert await count_rows(engine, app_id) == (1, result["inserted"])


async def test_replayed_batch_is_all_duplicates(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    app_id = unique("app")
    items = [
        item(app_id, conversation_id=unique("conv"), client_message_id=f"m{i}") for i in range(30)
    ]
    first, again = await batch(client, items), await batch(client, items)
    assert (first["inserted"], first["duplicates"], first["failed"]) == (30, 0, 0)
    assert (again["inserted"], again["duplicates"], again["failed"]) == (0, 30, 0)
    assert [r["message_id"] for r in again["results"]] == [
        r["message_id"] for r in first["results"]
    ]
    assert not any(r["created"] for r in again["results"])
    assert await count_rows(engine, app_id) == (30, 30)


async def test_repeated_key_within_a_batch(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    app_id, conversation_id = unique("app"), unique("conv")
    same = item(app_id, conversation_id=conversation_id, client_message_id="k")
    result = await batch(client, [same, same, same | {"answer": "different"}])
    first, echo, clash = result["results"]
    assert first["created"] and not echo["created"] and echo["message_id"] == first["message_id"]
    assert clash["status"] == 409
    assert (result["inserted"], result["duplicates"], result["failed"]) == (1, 1, 1)
    conversation = await conversation_row(engine, conversation_id)
    assert conversation is not None and conversation["dialogue_count"] == 1


async def test_items_of_a_conversation_land_in_list_order(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    app_id, conversation_id = unique("app"), unique("conv")
    await client.post("/api/chat/insert", json=item(app_id, conversation_id=conversation_id))
    others = [unique("conv") for _ in range(3)]
    items = [
        item(app_id, conversation_id=conv, query=f"{conv} turn {turn}")
        for turn in range(4)
        for conv in [conversation_id, *others]
    ]
    result = await batch(client, items)
    assert result["inserted"] == 16
    for conv in [conversation_id, *others]:
        queries = [m["query"] for m in await message_rows(engine, conv)]
        assert queries[-4:] == [f"{conv} turn {turn}" for turn in range(4)]
        conversation = await conversation_row(engine, conv)
        assert conversation is not None
        assert conversation["dialogue_count"] == len(queries)


async def test_backfilled_batch_moves_updated_at_of_existing_conversations(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    app_id, conversation_id = unique("app"), unique("conv")
    fields = {"conversation_id": conversation_id, "created_at": "2020-01-01T00:00:00Z"}
    await client.post("/api/chat/insert", json=item(app_id, **fields))
    stamps = ["2020-03-01T00:00:00Z", "2020-02-01T00:00:00Z"]
    await batch(
        client, [item(app_id, conversation_id=conversation_id, created_at=t) for t in stamps]
    )
    conversation = await conversation_row(engine, conversation_id)
    assert conversation is not None and conversation["dialogue_count"] == 3
    assert conversation["updated_at"].isoformat() == "2020-03-01T00:00:00+00:00"


async def test_racing_batches_on_the_same_keys(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    app_id = unique("app")
    conversations = [unique("conv") for _ in range(5)]
    items = [
        item(app_id, conversation_id=conv, client_message_id=f"k{turn}", query=f"{conv}-{turn}")
        for conv in conversations
        for turn in range(4)
    ]
    results = await asyncio.gather(*(batch(client, items[::step]) for step in (1, 1, 2, 3)))
    assert all(r["failed"] == 0 for r in results)
    assert sum(r["inserted"] for r in results) == 20
    for conv in conversations:
        conversation = await conversation_row(engine, conv)
        assert conversation is not None and conversation["dialogue_count"] == 4
    assert await count_rows(engine, app_id) == (5, 20)


@pytest.mark.parametrize(
    "body",
    [b"{", b"[]", b'{"items": []}', b'{"items": {"a": 1}}', b'{"nope": [1]}', b"null"],
)
async def test_malformed_batch_is_400(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post("/api/chat/insert/batch", content=body, headers=JSON)
    assert response.status_code == 400
    assert response.json()["success"] is False and response.json()["detail"]


async def test_batch_limits(database_url: str) -> None:
    settings = make_settings(database_url, max_batch_items=3, max_body_bytes=4096)
    async with ServiceClient(settings) as http:
        too_many = await http.post("/api/chat/insert/batch", json={"items": [item("a")] * 4})
        assert too_many.status_code == 400
        too_big = await http.post(
            "/api/chat/insert/batch", json={"items": [item("a", answer="x" * 5000)]}
        )
        assert too_big.status_code == 413


async def test_a_batch_is_a_handful_of_statements(database_url: str) -> None:
    service = ServiceClient(make_settings(database_url))
    statements: list[str] = []
    app_id = unique("app")
    existing = [unique("conv") for _ in range(20)]
    async with service as http:
        for conv in existing:
            await http.post("/api/chat/insert", json=item(app_id, conversation_id=conv))
        engine = service.app.state.database.engine

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def count(*args: Any) -> None:
            statements.append(args[2])

        items = [
            item(app_id, conversation_id=conv, files=[{"url": "/f"}], client_message_id=f"{n}")
            for n, conv in enumerate([*existing, *(unique("conv") for _ in range(180))] * 2)
        ]
        result = await batch(http, items)
    assert result["inserted"] == 400
    on_our_tables = [s for s in statements if "conversations" in s or "messages" in s]
    assert len(on_our_tables) <= 8, on_our_tables
