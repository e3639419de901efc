"""Start-up in the Dify layout: the schema check (one line naming the first missing table or
column), nothing created or altered, and the commands that would change the schema."""

import asyncio

import pytest
from sqlalchemy import text

from chat_ingest.config import Settings
from chat_ingest.db.engine import create_engine
from chat_ingest.errors import DifySchemaMismatch
from tests.conftest import DatabaseFactory, ServiceClient, make_settings
from tests.dify.schema import create_dify_database, snapshot
from tests.e2e.servers import run_cli

pytestmark = pytest.mark.asyncio


async def _execute(url: str, *statements: str) -> list[tuple[str, ...]]:
    """Run ``statements``; return the schema's snapshot after them."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            for statement in statements:
                await connection.execute(text(statement))
            return await snapshot(connection)
    finally:
        await engine.dispose()


async def test_starts_on_a_dify_database_without_changing_it(dify_url: str) -> None:
    before = await _execute(dify_url)
    settings = Settings(database_url=dify_url, table_layout="dify", auto_migrate=True)
    async with ServiceClient(settings) as http:
        assert (await http.get("/api/chat/ready")).status_code == 200
    result = await asyncio.to_thread(
        run_cli, "db", "upgrade", env={"DATABASE_URL": dify_url, "TABLE_LAYOUT": "dify"}
    )
    assert result.returncode == 0
    assert "nothing to do" in result.stdout
    assert await _execute(dify_url) == before


@pytest.mark.parametrize(
    ("statement", "missing"),
    [
        ("ALTER TABLE messages DROP COLUMN query", "column messages.query"),
        ("DROP TABLE end_users", "table end_users"),
    ],
)
async def test_a_missing_table_or_column_stops_the_service_with_one_line(
    dify_factory: DatabaseFactory, statement: str, missing: str
) -> None:
    url = await create_dify_database(dify_factory)
    await _execute(url, statement)
    with pytest.raises(DifySchemaMismatch, match=missing):
        async with ServiceClient(make_settings(url, table_layout="dify")):
            pass
    result = await asyncio.to_thread(
        run_cli, "serve", env={"DATABASE_URL": url, "TABLE_LAYOUT": "dify"}
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert missing in lines[0] and "Traceback" not in result.stderr


async def test_an_empty_database_is_not_a_dify_database(dify_factory: DatabaseFactory) -> None:
    url = await dify_factory.new_url()
    result = await asyncio.to_thread(
        run_cli, "serve", env={"DATABASE_URL": url, "TABLE_LAYOUT": "dify"}
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "chat-ingest: TABLE_LAYOUT=dify: the database has no table apps; is DATABASE_URL a "
        "Dify (1.10 or later) database?"
    ]
    assert await _execute(url) == []


async def test_keys_commands_refuse_in_the_dify_layout(dify_url: str) -> None:
    result = await asyncio.to_thread(
        run_cli, "keys", "list", env={"DATABASE_URL": dify_url, "TABLE_LAYOUT": "dify"}
    )
    assert result.returncode == 2
    assert "TABLE_LAYOUT=dify" in result.stderr


async def test_the_dify_layout_needs_a_server_database() -> None:
    result = await asyncio.to_thread(run_cli, "db", "current", env={"TABLE_LAYOUT": "dify"})
    assert result.returncode == 2
    assert "TABLE_LAYOUT=dify needs DATABASE_URL" in result.stderr
