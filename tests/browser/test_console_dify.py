"""The console on a Dify database (``TABLE_LAYOUT=dify``, docs/dify.md) read with Dify's own
app keys: Dify's rows and the service's rows side by side, and another app's key sees nothing.

The database is made with the Dify tests' schema and seed (tests/dify/), in a thread of its own:
Playwright's event loop may already run in this one.
"""

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import text

from chat_ingest.db.engine import create_engine
from tests.browser.conftest import Service, snapshot
from tests.conftest import DatabaseFactory
from tests.dify.schema import create_dify_database
from tests.dify.seed import (
    DifyApp,
    DifyConversation,
    create_dify_app,
    create_dify_conversation,
    create_end_user,
)
from tests.e2e.servers import serving

Result = TypeVar("Result")
DIFY_USER = "dify-customer-7"
WRITTEN_ANSWER = "Written by chat-ingest: 您的退款已处理 ✅"


def _in_own_thread(work: Callable[[], Coroutine[Any, Any, Result]]) -> Result:
    """Run ``work`` on a fresh event loop in another thread (pytest failures included)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(work())).result()


@dataclass(frozen=True)
class DifyDatabase:
    url: str
    app: DifyApp
    other_app: DifyApp
    conversation: DifyConversation  # written by Dify itself


@dataclass(frozen=True)
class Written:
    database: DifyDatabase
    message_id: str  # of the message written through the service


async def _seed_dify_database(factory: DatabaseFactory) -> DifyDatabase:
    url = await create_dify_database(factory)
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            app = await create_dify_app(connection, mode="advanced-chat")
            other_app = await create_dify_app(connection)
            end_user = await create_end_user(connection, app, DIFY_USER)
            conversation = await create_dify_conversation(connection, app, end_user)
            await connection.execute(  # as Dify's chatflow leaves them: no model named
                text(
                    "UPDATE messages SET model_provider = NULL, model_id = NULL"
                    " WHERE conversation_id = :id"
                ),
                {"id": conversation.id},
            )
    finally:
        await engine.dispose()
    return DifyDatabase(url, app, other_app, conversation)


@pytest.fixture(scope="module")
def dify(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Written]]:
    """``chat-ingest serve`` in the Dify layout on a seeded Dify PostgreSQL database, after one
    message written through it with the app's Dify key into Dify's own conversation."""
    directory: Path = tmp_path_factory.mktemp("console-dify")
    factory = DatabaseFactory("postgresql", directory)
    try:
        database = _in_own_thread(lambda: _seed_dify_database(factory))
        env = {"DATABASE_URL": database.url, "TABLE_LAYOUT": "dify"}
        with serving(env, cwd=directory) as [url]:
            service = Service(url)
            written = service.post(
                "/api/chat/insert",
                {
                    "app_id": database.app.id,
                    "user_id": DIFY_USER,
                    "conversation_id": database.conversation.id,
                    "client_message_id": "console-dify-1",
                    "query": "Is my refund done?",
                    "answer": WRITTEN_ANSWER,
                },
                database.app.token,
            )
            assert written["conversation_id"] == database.conversation.id
            assert written["conversation_created"] is False
            yield service, Written(database, written["message_id"])
    finally:
        _in_own_thread(factory.drop_all)


def _enter_key(page: Page, key: str) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text("An API key is needed")
    page.get_by_label("API key").fill(key)
    page.keyboard.press("Enter")


def test_a_dify_app_key_reads_difys_and_the_services_rows(
    dify: tuple[Service, Written], page: Page
):
    service, written = dify
    database = written.database
    conversation = database.conversation
    page.goto(f"{service.url}/ui/apps/{database.app.id}")
    _enter_key(page, database.app.token)
    item = page.locator("li.conversation")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("Dify conversation")
    expect(item).to_contain_text(f"user {DIFY_USER}")
    expect(item).to_contain_text("3 messages")
    page.goto(f"{service.url}/ui/conversations/{conversation.id}")  # same tab: key kept
    expect(page.get_by_role("heading", level=1)).to_have_text("Dify conversation")
    turns = page.locator("li.turn")
    expect(turns).to_have_count(3)
    expect(turns.locator(".answer .text")).to_have_text(
        ["Dify answer 1", "Dify answer 2", WRITTEN_ANSWER]
    )
    difys = turns.nth(0).locator("dl.meta")
    expect(difys).to_contain_text("Model—")
    expect(turns.nth(0).locator(".answer .who")).to_have_text("Assistant")
    expect(difys).to_contain_text("Price0.0000000 USD")  # Dify's numeric(10,7), not "0E-7"
    expect(difys).to_contain_text(f"Message id{conversation.message_ids[0]}")
    # Dify has no column for client_message_id: the page says so with a dash (docs/dify.md).
    expect(page.locator("dl.meta", has_text="Client message id—")).to_have_count(3)
    expect(turns.nth(2).locator("dl.meta")).to_contain_text(f"Message id{written.message_id}")
    expect(page.locator("dl.header")).to_contain_text(DIFY_USER)
    snapshot(page, "dify-conversation")


def test_another_dify_apps_key_sees_none_of_the_data(dify: tuple[Service, Written], page: Page):
    service, written = dify
    database = written.database
    page.goto(f"{service.url}/ui/apps/{database.app.id}")
    _enter_key(page, database.other_app.token)
    expect(page.get_by_role("heading", level=1)).to_have_text("This key may not read this data")
    page.goto(f"{service.url}/ui/conversations/{database.conversation.id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Conversation not found")
    text = page.locator("body").inner_text()
    assert "Dify answer" not in text and "chat-ingest:" not in text and DIFY_USER not in text
    page.goto(f"{service.url}/ui/apps/{database.other_app.id}")  # its own (empty) app works
    expect(page.get_by_role("heading", level=2)).to_have_text("No conversations found for this app")
