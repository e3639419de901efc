"""The restated Dify rules and the test schema agree with what DIFY.md reports of Dify: a
conversation that Dify's Service API wrote is visible everywhere, and the thread extraction
gives the results DIFY.md §3c measured by running Dify's code."""

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.dify import dify_rules
from tests.dify.dify_rules import UUID_NIL, ThreadMessage, extract_thread_messages
from tests.dify.seed import DifyApp, create_dify_conversation, create_end_user


def _messages(parents: list[str | None]) -> list[ThreadMessage]:
    """m1..mn oldest first, returned newest first (as Dify reads them)."""
    made = [ThreadMessage(f"m{i}", p, f"q{i}", f"a{i}", 1) for i, p in enumerate(parents, 1)]
    return list(reversed(made))


@pytest.mark.parametrize(
    ("parents", "expected"),
    [
        ([None, None, None], ["m3"]),
        ([UUID_NIL, UUID_NIL, UUID_NIL], ["m3", "m2", "m1"]),
        ([None, "m1", "m2"], ["m3", "m2", "m1"]),
        ([UUID_NIL, "m1", "m2"], ["m3", "m2", "m1"]),
    ],
)
def test_thread_extraction_matches_dify_md(parents: list[str | None], expected: list[str]) -> None:
    new = ThreadMessage("new", UUID_NIL, "q", "", 0)
    thread = extract_thread_messages([new, *_messages(parents)])
    assert [m.id for m in thread] == ["new", *expected]


@pytest.mark.asyncio
async def test_dify_written_conversation_is_visible(
    dify_engine: AsyncEngine, dify_app: DifyApp
) -> None:
    async with dify_engine.begin() as connection:
        end_user = await create_end_user(connection, dify_app, "dify-user")
        conversation = await create_dify_conversation(connection, dify_app, end_user, turns=3)
    async with dify_engine.connect() as connection:
        assert await dify_rules.console_list(connection, dify_app.id, "chat") == [conversation.id]
        found = await dify_rules.service_api_end_user(
            connection, dify_app.tenant_id, dify_app.id, "dify-user"
        )
        assert found == end_user
        listed = await dify_rules.service_api_conversations(connection, dify_app.id, end_user)
        assert listed == [conversation.id]
        messages = await dify_rules.service_api_messages(
            connection, dify_app.id, end_user, conversation.id
        )
        assert messages is not None
        assert [m["query"] for m in messages] == [f"Dify question {i}" for i in (1, 2, 3)]
        assert all(m["retriever_resources"] == [] for m in messages)
        history = await dify_rules.memory_history(connection, conversation.id, "next")
        assert [q for q, _ in history] == [f"Dify question {i}" for i in (1, 2, 3)]
        assert await dify_rules.unaccepted_values(connection) == []


@pytest.mark.asyncio
async def test_rules_hide_what_dify_hides(dify_engine: AsyncEngine, dify_app: DifyApp) -> None:
    """A deleted conversation leaves every list; another user's is not the user's."""
    async with dify_engine.begin() as connection:
        end_user = await create_end_user(connection, dify_app, "hidden-user")
        other = await create_end_user(connection, dify_app, "other-user")
        conversation = await create_dify_conversation(connection, dify_app, end_user)
        await connection.execute(
            text("UPDATE conversations SET is_deleted = true WHERE id = :id"),
            {"id": conversation.id},
        )
    async with dify_engine.connect() as connection:
        assert await dify_rules.console_list(connection, dify_app.id, "chat") == []
        assert await dify_rules.service_api_conversations(connection, dify_app.id, end_user) == []
        assert (
            await dify_rules.service_api_messages(connection, dify_app.id, other, conversation.id)
            is None
        )
