"""Reads of Dify's tables (also rows Dify wrote), export from a seed-layout database and import
into a Dify database, and a Dify schema that lacks an optional column."""

import asyncio
import uuid
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from chat_ingest.db import migrate
from chat_ingest.db.engine import create_engine
from tests.conftest import DatabaseFactory, ServiceClient, make_settings
from tests.dify import dify_rules
from tests.dify.conftest import OPERATOR, dify_settings
from tests.dify.schema import create_dify_database
from tests.dify.seed import DifyApp, create_dify_app, create_dify_conversation, create_end_user
from tests.dify.test_writes import body, insert
from tests.e2e.servers import run_cli

pytestmark = pytest.mark.asyncio


async def test_reads_of_rows_dify_wrote(
    dify_client: httpx.AsyncClient, dify_engine: AsyncEngine, dify_app: DifyApp
) -> None:
    async with dify_engine.begin() as connection:
        end_user = await create_end_user(connection, dify_app, "erin")
        conversation = await create_dify_conversation(connection, dify_app, end_user, turns=3)
    headers = {"Authorization": f"Bearer {dify_app.token}"}
    got = await dify_client.get(f"/api/chat/{conversation.id}", headers=headers)
    assert got.status_code == 200, got.text
    assert got.json()["from_end_user_id"] == "erin"
    assert (got.json()["app_id"], got.json()["dialogue_count"]) == (dify_app.id, 3)
    page = await dify_client.get(f"/api/chat/{conversation.id}/messages?limit=2", headers=headers)
    assert page.status_code == 200, page.text
    first = page.json()
    assert [m["query"] for m in first["data"]] == ["Dify question 1", "Dify question 2"]
    assert first["data"][0]["message_metadata"]["retriever_resources"] == []
    assert first["data"][0]["client_message_id"] is None
    rest = await dify_client.get(
        f"/api/chat/{conversation.id}/messages?cursor={first['next_cursor']}", headers=headers
    )
    assert [m["query"] for m in rest.json()["data"]] == ["Dify question 3"]
    listing = await dify_client.get(
        f"/api/chat/conversations?app_id={dify_app.id}&user_id=erin", headers=headers
    )
    assert [c["id"] for c in listing.json()["data"]] == [conversation.id]
    assert (await dify_client.get("/api/chat/not-a-uuid", headers=OPERATOR)).status_code == 404


async def test_written_records_read_back_with_their_files(
    dify_client: httpx.AsyncClient, dify_app: DifyApp
) -> None:
    conversation_id = str(uuid.uuid4())
    files = [{"url": "https://example.com/q.png", "type": "image"}]
    response = await insert(dify_client, dify_app, conversation_id=conversation_id, files=files)
    assert response.status_code == 200, response.text
    page = await dify_client.get(f"/api/chat/{conversation_id}/messages", headers=OPERATOR)
    [message] = page.json()["data"]
    assert message["id"] == response.json()["message_id"]
    assert message["message_metadata"] == {"retriever_resources": []}
    assert [(f["type"], f["url"], f["belongs_to"]) for f in message["files"]] == [
        ("image", "https://example.com/q.png", "user")
    ]


async def test_export_from_a_seed_database_and_import_into_dify(
    dify_factory: DatabaseFactory, dify_url: str, dify_engine: AsyncEngine, tmp_path: Path
) -> None:
    async with dify_engine.begin() as connection:
        app = await create_dify_app(connection)
    seed_url = await dify_factory.new_url()
    engine = create_engine(seed_url)
    await migrate.upgrade(engine)
    await engine.dispose()
    conversation_id = str(uuid.uuid4())
    async with ServiceClient(make_settings(seed_url)) as seed:
        for i in range(3):
            response = await seed.post(
                "/api/chat/insert",
                json=body(
                    app,
                    user="frank",
                    query=f"q{i}",
                    answer=f"a{i}",
                    conversation_id=conversation_id,
                    created_at=f"2026-10-0{i + 1}T08:00:00Z",
                    files=[
                        {"url": f"https://example.com/{i}.txt", "transfer_method": "remote_url"}
                    ],
                ),
            )
            assert response.status_code == 200, response.text
    exported = tmp_path / "history.jsonl"
    out = await asyncio.to_thread(
        run_cli,
        "export",
        "--app-id",
        app.id,
        "--output",
        str(exported),
        env={"DATABASE_URL": seed_url},
    )
    assert out.returncode == 0, out.stderr
    dify_env = {"DATABASE_URL": dify_url, "TABLE_LAYOUT": "dify"}
    for expected in ("inserted 3, duplicates 0", "inserted 0, duplicates 3"):
        imported = await asyncio.to_thread(run_cli, "import", str(exported), env=dify_env)
        assert imported.returncode == 0, imported.stderr
        assert expected in imported.stdout
    async with dify_engine.connect() as connection:
        end_user = await dify_rules.service_api_end_user(connection, app.tenant_id, app.id, "frank")
        assert end_user is not None
        listed = await dify_rules.service_api_messages(
            connection, app.id, end_user, conversation_id
        )
        history = await dify_rules.memory_history(connection, conversation_id, "q3")
        count = await connection.scalar(
            text("SELECT dialogue_count FROM conversations WHERE id = :id"),
            {"id": conversation_id},
        )
        assert await dify_rules.unaccepted_values(connection) == []
    assert listed is not None
    assert [(m["query"], m["answer"]) for m in listed] == [(f"q{i}", f"a{i}") for i in range(3)]
    assert history == [(f"q{i}", f"a{i}") for i in range(3)]
    assert count == 3
    seed_lines = [orjson.loads(line) for line in exported.read_bytes().splitlines()]
    again = await asyncio.to_thread(run_cli, "export", "--app-id", app.id, env=dify_env)
    dify_lines = [orjson.loads(line) for line in again.stdout.splitlines()]
    keys = ("message_id", "conversation_id", "query", "answer", "created_at", "user_id")
    assert [[line[k] for k in keys] for line in dify_lines] == [
        [line[k] for k in keys] for line in seed_lines
    ]
    assert [line["files"][0]["url"] for line in dify_lines] == [
        f"https://example.com/{i}.txt" for i in range(3)
    ]


async def test_a_column_an_older_dify_lacks_is_not_written(
    dify_factory: DatabaseFactory,
) -> None:
    url = await create_dify_database(dify_factory)
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("ALTER TABLE messages DROP COLUMN app_mode"))
            app = await create_dify_app(connection)
        async with ServiceClient(dify_settings(url)) as http:
            response = await insert(http, app)
        assert response.status_code == 200, response.text
        async with engine.connect() as connection:
            stored = await connection.scalar(
                text("SELECT COUNT(*) FROM messages WHERE app_id = :a"), {"a": app.id}
            )
        assert stored == 1
    finally:
        await engine.dispose()
