"""Messages with equal ``created_at`` keep the order they came in (issue 9): ids are decided
before the retried unit of work, so chunks racing to create a conversation cannot reorder it."""

import logging
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from chat_ingest.db.unit_of_work import Database
from chat_ingest.importer import Line, RejectFile, import_lines
from chat_ingest.runtime import insert_policy, open_store
from chat_ingest.sinks import DatabaseSink
from tests.conftest import make_settings, unique
from tests.integration.rows import conversation_row, message_rows

pytestmark = pytest.mark.asyncio
CONVERSATIONS, TURNS = 120, 5
AT = datetime(2024, 3, 1, 8, tzinfo=UTC).isoformat()


async def test_imported_turns_with_equal_created_at_keep_file_order(
    database_url: str, engine: AsyncEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Each conversation's lines span two chunks in flight, which race to create it."""
    settings = make_settings(database_url)
    sink = DatabaseSink(
        Database(engine), await open_store(settings, engine), insert_policy(settings)
    )
    app_id = unique("order")
    conversation_ids = [unique("c") for _ in range(CONVERSATIONS)]
    lines = [
        Line(
            number,
            orjson.dumps(
                {
                    "app_id": app_id,
                    "user_id": "u",
                    "conversation_id": conversation_id,
                    "client_message_id": f"turn-{turn}",
                    "query": f"q{turn}",
                    "answer": f"a{turn}",
                    "created_at": AT,
                }
            ),
        )
        for number, (conversation_id, turn) in enumerate(
            ((c, t) for c in conversation_ids for t in range(TURNS)), start=1
        )
    ]
    rejects = RejectFile(tmp_path / "rejects.jsonl")
    with caplog.at_level(logging.DEBUG, logger="chat_ingest.db.unit_of_work"):
        tally = await import_lines(lines, sink, rejects, chunk_size=3)
    rejects.close()
    assert (tally.inserted, tally.duplicates, tally.rejected) == (CONVERSATIONS * TURNS, 0, 0)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    for conversation_id in conversation_ids:
        stored = await message_rows(engine, conversation_id)
        assert [m["query"] for m in stored] == [f"q{t}" for t in range(TURNS)], conversation_id
        conversation = await conversation_row(engine, conversation_id)
        assert conversation is not None
        assert conversation["dialogue_count"] == TURNS


async def test_a_new_conversation_takes_its_oldest_message_in_the_batch(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    conversation_id = unique("c")
    common = {"app_id": unique("app"), "user_id": "u", "conversation_id": conversation_id}
    items = [
        common | {"query": "later", "answer": "a", "created_at": "2024-03-02T00:00:00Z"},
        common
        | {
            "query": "older",
            "answer": "a",
            "created_at": "2024-03-01T00:00:00Z",
            "conversation_name": "from the oldest",
            "inputs": {"oldest": True},
        },
    ]
    response = await client.post("/api/chat/insert/batch", json={"items": items})
    assert response.json()["inserted"] == 2, response.text
    conversation = await conversation_row(engine, conversation_id)
    assert conversation is not None
    assert conversation["created_at"] == datetime(2024, 3, 1, tzinfo=UTC)
    assert conversation["updated_at"] == datetime(2024, 3, 2, tzinfo=UTC)
    assert (conversation["name"], conversation["inputs"]) == ("from the oldest", {"oldest": True})
    assert [m["query"] for m in await message_rows(engine, conversation_id)] == ["older", "later"]
