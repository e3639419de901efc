"""The async client against the real app on each backend (the sync one runs in tests/e2e)."""

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
import pytest_asyncio

from chat_ingest.client import (
    AsyncChatIngestClient,
    ConflictError,
    NotFoundError,
    ValidationError,
)
from tests.conftest import ServiceClient, make_settings, unique

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture(scope="session")
async def ingest(database_url: str) -> AsyncIterator[AsyncChatIngestClient]:
    service = ServiceClient(make_settings(database_url))
    async with service:
        transport = httpx.ASGITransport(app=service.app)
        async with AsyncChatIngestClient("http://service", transport=transport) as client:
            yield client


async def test_insert_list_and_walk_every_page(ingest: AsyncChatIngestClient) -> None:
    app_id = unique("app")
    first = await ingest.insert(app_id=app_id, user_id="u", query="q0", answer="a", files=[])
    assert first.created and first.conversation_created
    for i in range(1, 45):
        await ingest.insert(
            app_id=app_id,
            user_id="u",
            conversation_id=first.conversation_id,
            query=f"q{i}",
            answer="a",
            metadata={"latency": 0.25},
        )
    page = await ingest.list_messages(first.conversation_id, limit=20)
    assert len(page.data) == 20 and page.has_more and page.next_cursor
    queries = [m.query async for m in ingest.iter_messages(first.conversation_id, page_size=20)]
    assert queries == [f"q{i}" for i in range(45)]
    oldest = (await ingest.list_messages(first.conversation_id, limit=1)).data[0]
    assert oldest.provider_response_latency == Decimal("0.000")
    assert oldest.files == [] and oldest.client_message_id is not None

    conversation = await ingest.get_conversation(first.conversation_id)
    assert conversation.dialogue_count == 45 and conversation.app_id == app_id
    listing = await ingest.list_conversations(app_id, user_id="u")
    assert [c.id for c in listing.data] == [first.conversation_id]
    assert (await ingest.list_conversations(app_id, user_id="someone-else")).data == []


async def test_replayed_insert_returns_the_first_message(ingest: AsyncChatIngestClient) -> None:
    fields = {"app_id": unique("app"), "user_id": "u", "query": "q", "answer": "a"}
    first = await ingest.insert(**fields, client_message_id="k", conversation_id=unique("c"))
    again = await ingest.insert(
        **fields, client_message_id="k", conversation_id=first.conversation_id
    )
    assert (again.message_id, again.created) == (first.message_id, False)
    with pytest.raises(ConflictError) as conflict:
        await ingest.insert(
            **fields | {"answer": "other"},
            client_message_id="k",
            conversation_id=first.conversation_id,
        )
    assert conflict.value.status == 409 and "client_message_id" in conflict.value.error


async def test_errors_map_to_the_documented_exceptions(ingest: AsyncChatIngestClient) -> None:
    with pytest.raises(ValidationError) as invalid:
        await ingest.insert(app_id="a", user_id="u", query=" ", answer="a")
    assert invalid.value.status == 400 and invalid.value.detail[0]["loc"] == ["body", "query"]
    with pytest.raises(NotFoundError):
        await ingest.get_conversation(unique("missing"))
    with pytest.raises(NotFoundError):
        await ingest.list_messages("no/such id")
    with pytest.raises(ValidationError):
        await ingest.list_conversations("a", cursor="forged.cursor")


async def test_insert_batch_is_safe_to_resend(ingest: AsyncChatIngestClient) -> None:
    app_id, conversation_id = unique("app"), unique("conv")
    items = [
        {"app_id": app_id, "user_id": "u", "query": "q1", "answer": "a1", "client_message_id": "1"},
        {"app_id": app_id, "user_id": "u", "query": "", "answer": "a2"},
        {"app_id": app_id, "user_id": "u", "query": "q3", "answer": "a3"},  # new conversation
    ]
    items[0]["conversation_id"] = conversation_id
    first = await ingest.insert_batch(items)
    assert (first.inserted, first.duplicates, first.failed) == (2, 0, 1)
    assert [r.status for r in first.results] == [200, 400, 200]
    again = await ingest.insert_batch([items[0]])
    assert again.duplicates == 1
    assert again.results[0].message_id == first.results[0].message_id
