"""GET .../messages and GET /conversations on each real backend: keyset pages, signed cursors."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import unique

pytestmark = pytest.mark.asyncio


async def _insert(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"user_id": "u-1", "query": "q", "answer": "a"} | fields
    response = await client.post("/api/chat/insert", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _walk(client: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every row of a listing, following next_cursor to the end."""
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = params | ({"cursor": cursor} if cursor else {})
        response = await client.get(path, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        rows += page["data"]
        assert page["has_more"] is (page["next_cursor"] is not None)
        if not page["has_more"]:
            return rows
        cursor = page["next_cursor"]


async def test_45_messages_over_pages_of_20_come_back_once_each_in_order(
    client: httpx.AsyncClient,
) -> None:
    app_id, conversation_id = unique("app"), unique("conv")
    start = datetime(2024, 5, 1, tzinfo=UTC)
    ids = []
    for i in range(45):  # three per second: ties on created_at are broken by id
        at = start + timedelta(seconds=i // 3)
        result = await _insert(
            client,
            app_id=app_id,
            conversation_id=conversation_id,
            query=f"q{i}",
            created_at=at.isoformat(),
        )
        ids.append(result["message_id"])

    first = (await client.get(f"/api/chat/{conversation_id}/messages?limit=20")).json()
    assert len(first["data"]) == 20 and first["has_more"] is True
    messages = await _walk(client, f"/api/chat/{conversation_id}/messages", limit=20)
    assert [m["id"] for m in messages] == ids
    assert [m["query"] for m in messages] == [f"q{i}" for i in range(45)]


async def test_messages_carry_every_column_and_their_files(client: httpx.AsyncClient) -> None:
    conversation_id = unique("conv")
    await _insert(
        client,
        app_id=unique("app"),
        conversation_id=conversation_id,
        client_message_id="turn-1",
        metadata={"latency": 1.2345},
        total_price="0.5",
        files=[
            {"url": "https://example.com/a.png", "type": "image"},
            {"url": "/doc.pdf", "belongs_to": "assistant", "upload_file_id": "f-1"},
        ],
    )
    response = await client.get(f"/api/chat/{conversation_id}/messages")
    page = response.json()
    assert page["has_more"] is False and page["next_cursor"] is None
    [message] = page["data"]
    assert message["provider_response_latency"] == "1.235"
    assert message["total_price"] == "0.500000"
    assert message["message_metadata"] == {"latency": 1.2345}
    assert message["message"] == {"content": "q"}
    assert message["client_message_id"] == "turn-1"
    assert message["created_at"].endswith(("Z", "+00:00"))
    assert {f["url"]: f["created_by_role"] for f in message["files"]} == {
        "https://example.com/a.png": "end_user",
        "/doc.pdf": "assistant",
    }
    assert all(f["message_id"] == message["id"] for f in message["files"])


async def test_conversations_newest_first_scoped_to_app_and_user(
    client: httpx.AsyncClient,
) -> None:
    app_id = unique("app")
    start = datetime(2024, 6, 1, tzinfo=UTC)
    mine = []
    for i in range(7):
        at = (start + timedelta(seconds=i // 2)).isoformat()
        result = await _insert(client, app_id=app_id, user_id="alice", created_at=at)
        mine.append(result["conversation_id"])
    await _insert(client, app_id=app_id, user_id="bob")
    await _insert(client, app_id=unique("other-app"), user_id="alice")

    alice = await _walk(client, "/api/chat/conversations", app_id=app_id, user_id="alice", limit=3)
    assert [c["id"] for c in alice] == mine[::-1]
    everyone = await _walk(client, "/api/chat/conversations", app_id=app_id, limit=2)
    assert len(everyone) == 8 and {c["app_id"] for c in everyone} == {app_id}
    assert {c["from_end_user_id"] for c in everyone} == {"alice", "bob"}


async def test_a_later_message_moves_its_conversation_to_the_top(
    client: httpx.AsyncClient,
) -> None:
    app_id = unique("app")
    old = await _insert(client, app_id=app_id, created_at="2024-01-01T00:00:00Z")
    await _insert(client, app_id=app_id, created_at="2024-01-02T00:00:00Z")
    await _insert(client, app_id=app_id, conversation_id=old["conversation_id"])
    page = (await client.get("/api/chat/conversations", params={"app_id": app_id})).json()
    assert page["data"][0]["id"] == old["conversation_id"]
    assert page["data"][0]["dialogue_count"] == 2


@pytest.mark.parametrize("limit", ["0", "101", "abc", "1.5", ""])
async def test_bad_limit_is_400(client: httpx.AsyncClient, limit: str) -> None:
    response = await client.get("/api/chat/conversations", params={"app_id": "a", "limit": limit})
    assert response.status_code == 400
    assert response.json()["success"] is False


async def test_cursors_are_signed_and_bound_to_their_listing(client: httpx.AsyncClient) -> None:
    app_id, conversation_id = unique("app"), unique("conv")
    for _ in range(3):
        await _insert(client, app_id=app_id, conversation_id=conversation_id)
    await _insert(client, app_id=app_id)
    messages_cursor = (
        await client.get(f"/api/chat/{conversation_id}/messages", params={"limit": 1})
    ).json()["next_cursor"]
    list_path = "/api/chat/conversations"
    conversations_cursor = (
        await client.get(list_path, params={"app_id": app_id, "limit": 1})
    ).json()["next_cursor"]
    payload, signature = messages_cursor.split(".")
    forged = [
        "garbage",
        "a.b.c",
        f"{payload}.{signature[:-2]}AA",
        f"{payload[:-2]}AA.{signature}",
        "é" * 10,
        "x" * 600,
        conversations_cursor,  # another listing's cursor
    ]
    for cursor in forged:
        response = await client.get(
            f"/api/chat/{conversation_id}/messages", params={"cursor": cursor}
        )
        assert response.status_code == 400, (cursor, response.text)
    other_user = await client.get(
        list_path, params={"app_id": app_id, "user_id": "someone", "cursor": conversations_cursor}
    )
    assert other_user.status_code == 400
    assert other_user.json()["detail"][0]["loc"] == ["query", "cursor"]


async def test_messages_of_an_unknown_conversation_are_404(client: httpx.AsyncClient) -> None:
    for conversation_id in (unique("conv"), "not%20an%20id", "x" * 40):
        response = await client.get(f"/api/chat/{conversation_id}/messages")
        assert response.status_code == 404, conversation_id


async def test_app_id_is_required_to_list_conversations(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/chat/conversations")
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["query", "app_id"]
