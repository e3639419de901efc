"""POST /api/chat/insert against each real backend: contract, reuse, idempotency, races."""

import asyncio
import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import ServiceClient, make_settings, unique
from tests.integration.rows import conversation_row, count_rows, file_rows, message_rows

pytestmark = pytest.mark.asyncio


def body(**fields: Any) -> dict[str, Any]:
    base = {"app_id": fields.pop("app_id", unique("app")), "user_id": "user-1"}
    return base | {"query": "你好，今天天气如何？", "answer": "晴朗，20 到 25 度。"} | fields


async def insert(client: httpx.AsyncClient, **fields: Any) -> httpx.Response:
    return await client.post("/api/chat/insert", json=body(**fields))


async def test_insert_stores_conversation_message_and_files(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    response = await insert(
        client,
        model_provider="openai",
        model_id="gpt-4o",
        inputs={"topic": "weather"},
        metadata={"latency": 1.2345, "temperature": 0.7},
        files=[
            {"url": "https://example.com/a.png", "type": "image", "transfer_method": "remote_url"},
            {"url": "/uploads/report.pdf", "belongs_to": "assistant", "upload_file_id": "f-1"},
            {"url": "/uploads/sys.txt", "belongs_to": "system", "unknown": "ignored"},
        ],
        surprise_field="ignored",
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["success"] is True and result["error"] is None
    assert result["created"] is True and result["conversation_created"] is True
    assert len(result["conversation_id"]) == 36 and len(result["message_id"]) == 36

    conversation = await conversation_row(engine, result["conversation_id"])
    assert conversation is not None
    assert conversation["dialogue_count"] == 1
    assert conversation["inputs"] == {"topic": "weather"}
    assert conversation["from_source"] == "api" and conversation["status"] == "normal"
    assert conversation["name"].startswith("Conversation ")
    assert conversation["created_at"].tzinfo is not None

    [message] = await message_rows(engine, result["conversation_id"])
    assert message["id"] == result["message_id"]
    assert message["query"] == "你好，今天天气如何？" and message["answer"] == "晴朗，20 到 25 度。"
    assert (message["model_provider"], message["model_id"]) == ("openai", "gpt-4o")
    assert message["provider_response_latency"] == Decimal("1.235")
    assert message["message_metadata"] == {"latency": 1.2345, "temperature": 0.7}
    assert message["message"] == {"content": "你好，今天天气如何？"}
    assert (message["message_tokens"], message["answer_tokens"]) == (0, 0)
    assert message["total_price"] == 0 and message["currency"] == "USD"

    files = {f["url"]: f for f in await file_rows(engine, result["message_id"])}
    assert files["https://example.com/a.png"]["type"] == "image"
    assert files["https://example.com/a.png"]["transfer_method"] == "remote_url"
    assert files["https://example.com/a.png"]["created_by_role"] == "end_user"
    assert files["/uploads/report.pdf"]["created_by_role"] == "assistant"
    assert files["/uploads/report.pdf"]["upload_file_id"] == "f-1"
    assert files["/uploads/sys.txt"]["created_by_role"] == "system"
    assert {f["created_by"] for f in files.values()} == {"user-1"}


async def test_defaults_for_model_and_name(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    result = (await insert(client, conversation_name="天气闲聊")).json()
    [message] = await message_rows(engine, result["conversation_id"])
    assert (message["model_provider"], message["model_id"]) == ("custom", "custom-model")
    conversation = await conversation_row(engine, result["conversation_id"])
    assert conversation is not None and conversation["name"] == "天气闲聊"


async def test_reuses_a_given_conversation_and_counts_messages(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    app_id, conversation_id = unique("app"), unique("conv")
    first = (await insert(client, app_id=app_id, conversation_id=conversation_id)).json()
    second = (await insert(client, app_id=app_id, conversation_id=conversation_id)).json()
    assert first["conversation_id"] == second["conversation_id"] == conversation_id
    assert first["conversation_created"] is True and second["conversation_created"] is False
    assert second["created"] is True
    conversation = await conversation_row(engine, conversation_id)
    assert conversation is not None and conversation["dialogue_count"] == 2
    assert await count_rows(engine, app_id) == (1, 2)


@pytest.mark.parametrize("other", [{"app_id": "another-app"}, {"user_id": "another-user"}])
async def test_conversation_of_another_owner_is_409_and_writes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, other: dict[str, str]
) -> None:
    app_id, conversation_id = unique("app"), unique("conv")
    await insert(client, app_id=app_id, conversation_id=conversation_id)
    fields = {"app_id": app_id, "conversation_id": conversation_id} | other
    response = await insert(client, **fields)
    assert response.status_code == 409
    assert response.json()["success"] is False and response.json()["error"]
    conversation = await conversation_row(engine, conversation_id)
    assert conversation is not None and conversation["dialogue_count"] == 1
    assert len(await message_rows(engine, conversation_id)) == 1


async def test_replay_returns_first_message_and_writes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    fields = {
        "app_id": unique("app"),
        "conversation_id": unique("conv"),
        "client_message_id": unique("msg"),
        "files": [{"url": "/a.pdf"}],
    }
    first = (await insert(client, **fields)).json()
    replay = (await insert(client, **fields)).json()
    assert replay["message_id"] == first["message_id"]
    assert (replay["created"], replay["conversation_created"]) == (False, False)
    conversation = await conversation_row(engine, fields["conversation_id"])
    assert conversation is not None and conversation["dialogue_count"] == 1
    assert len(await file_rows(engine, first["message_id"])) == 1


@pytest.mark.parametrize("changed", [{"query": "another question"}, {"answer": "another answer"}])
async def test_replay_with_other_content_is_409(
    client: httpx.AsyncClient, engine: AsyncEngine, changed: dict[str, str]
) -> None:
    fields = {"app_id": unique("app"), "conversation_id": unique("conv"), "client_message_id": "m1"}
    await insert(client, **fields)
    response = await insert(client, **(fields | changed))
    assert response.status_code == 409
    assert len(await message_rows(engine, fields["conversation_id"])) == 1


async def test_client_message_ids_are_case_sensitive(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    conversation_id = unique("conv")
    fields = {"app_id": unique("app"), "conversation_id": conversation_id}
    await insert(client, **fields, client_message_id="Msg-1")
    response = await insert(client, **fields, client_message_id="msg-1", query="other")
    assert response.status_code == 200 and response.json()["created"] is True
    assert len(await message_rows(engine, conversation_id)) == 2


async def test_fifty_concurrent_inserts_into_one_new_conversation(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    app_id, conversation_id = unique("app"), unique("conv")
    responses = await asyncio.gather(
        *(
            insert(client, app_id=app_id, conversation_id=conversation_id, query=f"q{i}")
            for i in range(50)
        )
    )
    assert [r.status_code for r in responses] == [200] * 50
    assert sum(r.json()["conversation_created"] for r in responses) == 1
    conversation = await conversation_row(engine, conversation_id)
    assert conversation is not None and conversation["dialogue_count"] == 50
    assert await count_rows(engine, app_id) == (1, 50)


async def test_twenty_concurrent_replays_store_one_message(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    fields = {"app_id": unique("app"), "conversation_id": unique("conv"), "client_message_id": "k"}
    responses = await asyncio.gather(*(insert(client, **fields) for _ in range(20)))
    assert [r.status_code for r in responses] == [200] * 20
    assert len({r.json()["message_id"] for r in responses}) == 1
    assert sum(r.json()["created"] for r in responses) == 1
    assert sum(r.json()["conversation_created"] for r in responses) == 1
    conversation = await conversation_row(engine, fields["conversation_id"])
    assert conversation is not None and conversation["dialogue_count"] == 1
    assert await count_rows(engine, fields["app_id"]) == (1, 1)


async def test_backfilled_created_at(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    app_id, conversation_id = unique("app"), unique("conv")
    fields = {"app_id": app_id, "conversation_id": conversation_id}
    await insert(client, **fields, created_at="2021-03-04T05:06:07.890+08:00")
    conversation = await conversation_row(engine, conversation_id)
    assert conversation is not None
    first = datetime(2021, 3, 3, 21, 6, 7, tzinfo=UTC)
    assert conversation["created_at"] == conversation["updated_at"] == first
    assert conversation["name"] == "Conversation 20210303_210607"

    await insert(client, **fields, created_at="2021-05-01T00:00:00")  # naive means UTC
    await insert(client, **fields, created_at="2020-01-01T00:00:00Z")  # older: no move back
    conversation = await conversation_row(engine, conversation_id)
    assert conversation is not None
    assert conversation["created_at"] == first
    assert conversation["updated_at"] == datetime(2021, 5, 1, tzinfo=UTC)
    stored = [m["created_at"] for m in await message_rows(engine, conversation_id)]
    assert stored == sorted(stored) and stored[0] == datetime(2020, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("field", ["created_at", "conversation_created_at"])
async def test_created_at_outside_mysql_timestamp_range(
    client: httpx.AsyncClient, engine: AsyncEngine, backend: str, field: str
) -> None:
    app_id = unique("app")
    response = await insert(client, app_id=app_id, **{field: "1969-12-31T00:00:00Z"})
    if backend == "mysql":
        assert response.status_code == 400
        assert response.json()["detail"][0]["loc"] == ["body", field]
        assert await count_rows(engine, app_id) == (0, 0)
    else:
        assert response.status_code == 200


async def test_explicit_tokens_and_price_are_stored(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    result = (
        await insert(
            client, message_tokens=12, answer_tokens=34, total_price="0.123456", currency="CNY"
        )
    ).json()
    [message] = await message_rows(engine, result["conversation_id"])
    assert (message["message_tokens"], message["answer_tokens"]) == (12, 34)
    assert message["total_price"] == Decimal("0.123456") and message["currency"] == "CNY"


async def test_get_conversation(client: httpx.AsyncClient) -> None:
    created = (await insert(client, inputs={"k": [1, 2]})).json()
    response = await client.get(f"/api/chat/{created['conversation_id']}")
    assert response.status_code == 200
    conversation = response.json()
    assert set(conversation) == {
        "id", "app_id", "name", "status", "inputs", "from_end_user_id", "from_source",
        "dialogue_count", "created_at", "updated_at",
    }  # fmt: skip
    assert conversation["inputs"] == {"k": [1, 2]} and conversation["dialogue_count"] == 1
    assert conversation["created_at"].endswith(("Z", "+00:00"))


@pytest.mark.parametrize("conversation_id", ["no-such-conversation", "bad.id", "x" * 40])
async def test_get_missing_conversation_is_404(
    client: httpx.AsyncClient, conversation_id: str
) -> None:
    response = await client.get(f"/api/chat/{conversation_id}")
    assert response.status_code == 404
    assert response.json() == {"success": False, "error": "Conversation not found.", "detail": None}


async def test_token_estimation_and_pricing_when_enabled(
    database_url: str, engine: AsyncEngine
) -> None:
    settings = make_settings(
        database_url, token_estimation_enabled=True, price_per_1000_tokens=Decimal("2")
    )
    async with ServiceClient(settings) as http:
        estimated = (await insert(http, query="你好世界", answer="hello big world")).json()
        given = (await insert(http, query="你好世界", answer="hi", answer_tokens=100)).json()
    [message] = await message_rows(engine, estimated["conversation_id"])
    assert (message["message_tokens"], message["answer_tokens"]) == (6, 3)
    assert message["total_price"] == Decimal("0.018")  # 9 tokens at 2 per 1000
    [message] = await message_rows(engine, given["conversation_id"])
    assert (message["message_tokens"], message["answer_tokens"]) == (6, 100)
    assert message["total_price"] == Decimal("0.212")


async def test_decimals_are_exact_on_every_backend(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    biggest = (await insert(client, total_price="999999999999.999999")).json()
    rounded = (await insert(client, total_price="0.0000005", metadata={"latency": 0.0005})).json()
    [message] = await message_rows(engine, biggest["conversation_id"])
    assert message["total_price"] == Decimal("999999999999.999999")
    [message] = await message_rows(engine, rounded["conversation_id"])
    assert message["total_price"] == Decimal("0.000001")
    assert message["provider_response_latency"] == Decimal("0.001")


async def test_json_documents_come_back_as_sent(client: httpx.AsyncClient) -> None:
    inputs = {"zeta": 1, "alpha": [-0.0, 1e19, 2**63], "中文": {"b": None, "a": True}}
    created = (await insert(client, inputs=inputs)).json()
    stored = (await client.get(f"/api/chat/{created['conversation_id']}")).json()["inputs"]
    assert stored == inputs
    assert list(stored) == ["zeta", "alpha", "中文"]
    assert math.copysign(1, stored["alpha"][0]) == -1 and isinstance(stored["alpha"][1], float)
