"""On MySQL/MariaDB the listing queries are served by their indexes (the EXPLAIN in docs/api.md)."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chat_ingest.db.models import conversations, messages
from chat_ingest.ids import new_id
from chat_ingest.stores.seed import SeedStore

pytestmark = pytest.mark.asyncio
START = datetime(2024, 1, 1, tzinfo=UTC)
store = SeedStore()


def _conversation(app_id: str, user_id: str, at: datetime) -> dict[str, Any]:
    return {
        "id": new_id(),
        "app_id": app_id,
        "name": "c",
        "inputs": {},
        "from_end_user_id": user_id,
        "created_at": at,
        "updated_at": at,
    }


def _message(conversation: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {
        "id": new_id(),
        "conversation_id": conversation["id"],
        "app_id": conversation["app_id"],
        "model_provider": "p",
        "model_id": "m",
        "inputs": {},
        "query": "q",
        "answer": "a",
        "created_at": at,
        "updated_at": at,
    }


async def _seed(engine: AsyncEngine) -> dict[str, Any]:
    """600 conversations over 6 apps and 30 users, 10 messages each; return one of them."""
    rows = [
        _conversation(f"plan-app-{i % 6}", f"user-{i % 30}", START + timedelta(minutes=i))
        for i in range(600)
    ]
    async with engine.begin() as connection:
        await connection.execute(conversations.insert(), rows)
        await connection.execute(
            messages.insert(),
            [_message(c, START + timedelta(seconds=s)) for c in rows for s in range(10)],
        )
        for table in ("conversations", "messages"):
            await connection.execute(text(f"ANALYZE TABLE {table}"))
    return rows[0]


async def _explain(
    engine: AsyncEngine, listing: Callable[[AsyncConnection], Awaitable[Any]]
) -> list[dict[str, Any]]:
    """EXPLAIN of the statement ``listing`` sends (captured as the driver receives it)."""
    sent: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    async with engine.connect() as connection:
        event.listen(connection.sync_connection, "before_cursor_execute", capture)
        await listing(connection)
        event.remove(connection.sync_connection, "before_cursor_execute", capture)
        [(statement, parameters)] = sent
        cursor = await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        return [dict(row._mapping) for row in cursor]


async def test_listings_use_their_indexes_on_mysql(mysql_engine: AsyncEngine) -> None:
    conversation = await _seed(mysql_engine)
    position = (START + timedelta(seconds=4), "0")
    plans = {
        "idx_msg_conv_created": await _explain(
            mysql_engine,
            lambda c: store.list_messages(c, conversation["id"], position, 21),
        ),
        "idx_conv_app_updated": await _explain(
            mysql_engine,
            lambda c: store.list_conversations(
                c, "plan-app-1", None, (START + timedelta(hours=5), "f"), 21
            ),
        ),
        "idx_conv_app_user_updated": await _explain(
            mysql_engine,
            lambda c: store.list_conversations(
                c, "plan-app-1", "user-7", (START + timedelta(hours=5), "f"), 21
            ),
        ),
    }
    for index, [plan] in plans.items():
        assert plan["key"] == index, plan
        assert plan["type"] == "range", plan
        assert "filesort" not in (plan["Extra"] or ""), plan
