"""Chunks large enough for the bulk path (COPY on PostgreSQL, LOAD DATA LOCAL INFILE on
MySQL/MariaDB, each straight into the table inside a savepoint, and on a duplicate or a bad
value undone and written the exact way) keep every duplicate and conflict rule exact:
replays count as duplicates, conflicts are rejected with their line numbers, dialogue_count is
exact, and a chunk that fails leaves nothing behind. LOAD DATA never sends a local file, and a
connection that refuses it falls back to multi-row INSERTs."""

import logging
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chat_ingest.db import migrate
from chat_ingest.db.engine import create_engine
from chat_ingest.db.models import conversations, message_files, messages
from chat_ingest.db.unit_of_work import Database
from chat_ingest.importer import Line, RejectFile, Tally, import_lines
from chat_ingest.runtime import insert_policy, open_store
from chat_ingest.sinks import DatabaseSink
from chat_ingest.stores import copy, load_data, sql
from tests.conftest import POSTGRES_URL, DatabaseFactory, make_settings, unique

pytestmark = pytest.mark.asyncio
CHUNK = 400


def body(app_id: str, c: int, t: int, **fields: Any) -> dict[str, Any]:
    return {
        "app_id": app_id,
        "user_id": "u",
        "conversation_id": f"{app_id}-{c}",
        "client_message_id": f"t{t}",
        "query": f"q{t}",
        "answer": f"a{t}",
        "files": [{"url": f"/f/{c}/{t}"}],
    } | fields


async def run_import(
    database_url: str, engine: AsyncEngine, bodies: list[dict[str, Any]], rejects: Path
) -> Tally:
    settings = make_settings(database_url)
    sink = DatabaseSink(
        Database(engine), await open_store(settings, engine), insert_policy(settings)
    )
    lines = [Line(n, orjson.dumps(b)) for n, b in enumerate(bodies, start=1)]
    reject_file = RejectFile(rejects)
    try:
        return await import_lines(lines, sink, reject_file, CHUNK)
    finally:
        reject_file.close()


async def test_replays_and_conflicts_in_bulk_chunks_are_exact(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    app_id = unique("bulk")
    first = [body(app_id, c, t) for c in range(60) for t in range(5)]
    tally = await run_import(database_url, engine, first, tmp_path / "r1.jsonl")
    assert (tally.inserted, tally.duplicates, tally.rejected) == (300, 0, 0)

    # Again, with 200 new turns and every 10th old line changed (same key, other answer).
    second = [b | {"answer": "changed"} if n % 10 == 0 else b for n, b in enumerate(first)] + [
        body(app_id, c, t) for c in range(40) for t in range(5, 10)
    ]
    tally = await run_import(database_url, engine, second, tmp_path / "r2.jsonl")
    assert (tally.inserted, tally.duplicates, tally.rejected) == (200, 270, 30)
    rejects = [orjson.loads(x) for x in (tmp_path / "r2.jsonl").read_bytes().splitlines()]
    assert [r["line"] for r in rejects] == list(range(1, 301, 10))
    assert all("client_message_id" in r["error"] for r in rejects)

    async with engine.connect() as connection:
        counts = await connection.execute(
            select(conversations.c.dialogue_count, func.count(messages.c.id))
            .join(messages, messages.c.conversation_id == conversations.c.id)
            .where(conversations.c.app_id == app_id)
            .group_by(conversations.c.id, conversations.c.dialogue_count)
        )
        assert sorted(tuple(row) for row in counts) == [(5, 5)] * 20 + [(10, 10)] * 40
        files = await connection.scalar(
            select(func.count())
            .select_from(message_files.join(messages))
            .where(messages.c.app_id == app_id)
        )
        assert files == 500


async def test_a_failed_bulk_write_leaves_nothing(engine: AsyncEngine) -> None:
    """The staged rows go with the transaction that staged them (PostgreSQL's bulk path; the
    other backends' multi-row INSERTs keep the same promise)."""
    app_id = unique("rollback")
    rows = [
        {"id": unique("c")[:36], "app_id": app_id, "name": "n", "status": "normal", "inputs": {},
         "from_end_user_id": "u", "from_source": "api", "dialogue_count": 0}
        for _ in range(copy.COPY_MIN_ROWS)
    ]  # fmt: skip

    async def write_then_fail() -> None:
        async with engine.begin() as connection:
            assert await sql.insert_ignoring_duplicates(connection, conversations, rows) == 100
            raise RuntimeError("the unit of work fails after the write")

    with pytest.raises(RuntimeError):
        await write_then_fail()
    async with engine.begin() as connection:
        stored = select(func.count()).where(conversations.c.app_id == app_id)
        assert await connection.scalar(stored) == 0
        assert await sql.insert_ignoring_duplicates(connection, conversations, rows) == 100
        assert await sql.insert_ignoring_duplicates(connection, conversations, rows) == 0
        if engine.dialect.name == "postgresql":  # the bulk path ran, and emptied its stage
            staged = await connection.scalar(text("SELECT count(*) FROM stage_conversations"))
            assert staged == 0


def conversation_rows(app_id: str, count: int) -> list[dict[str, Any]]:
    return [
        {"id": str(uuid.uuid4()), "app_id": app_id, "name": "n\t\\N\n\\", "status": "normal",
         "inputs": {"k": "tab\there"}, "from_end_user_id": "u", "from_source": "api",
         "dialogue_count": 0}
        for _ in range(count)
    ]  # fmt: skip


async def loads_so_far(connection: AsyncConnection) -> int:
    status = await connection.execute(text("SHOW SESSION STATUS LIKE 'Com_load'"))
    return int(status.one()[1])


@pytest.mark.backends("mysql")
async def test_load_data_stores_new_rows_exactly_and_undoes_what_it_would_bend(
    engine: AsyncEngine,
) -> None:
    """New rows go through LOAD DATA; a load that meets a duplicate or a value the server
    would cut short is undone, and the multi-row INSERT gives it its exact meaning."""
    app_id = unique("load")
    rows = conversation_rows(app_id, load_data.LOAD_MIN_ROWS)
    rows[-1]["inputs"] = {"large": "大" * 1_000_000}  # 3 MB: the rows go in many packets
    async with engine.begin() as connection:
        before = await loads_so_far(connection)
        assert await sql.insert_ignoring_duplicates(connection, conversations, rows) == 100
        assert await loads_so_far(connection) == before + 1
        stored = await connection.execute(
            select(conversations.c.name, conversations.c.inputs).where(
                conversations.c.id == rows[0]["id"]
            )
        )
        assert tuple(stored.one()) == ("n\t\\N\n\\", {"k": "tab\there"})
        large = select(conversations.c.inputs).where(conversations.c.id == rows[-1]["id"])
        assert await connection.scalar(large) == rows[-1]["inputs"]
        again = rows[:50] + conversation_rows(app_id, 50)
        assert await sql.insert_ignoring_duplicates(connection, conversations, again) == 50
        assert await loads_so_far(connection) == before + 2  # tried, undone, then INSERTed
    too_long = conversation_rows(app_id, load_data.LOAD_MIN_ROWS)
    too_long[-1]["from_end_user_id"] = "u" * 1000
    with pytest.raises(DBAPIError, match="1406"):  # an error, as in an INSERT: not cut short
        async with engine.begin() as connection:
            await sql.insert_ignoring_duplicates(connection, conversations, too_long)
    async with engine.connect() as connection:
        count = select(func.count()).where(conversations.c.app_id == app_id)
        assert await connection.scalar(count) == 150


@pytest.mark.backends("mysql")
async def test_load_data_sends_no_local_file(engine: AsyncEngine, tmp_path: Path) -> None:
    """A server may ask for any file in answer to any statement; the driver sends none."""
    secret = tmp_path / "secret.tsv"
    secret.write_text(f"{unique('leak')}\tsecret\n")
    async with engine.connect() as connection:
        with pytest.raises(DBAPIError, match="not offered"):
            await connection.exec_driver_sql(
                f"LOAD DATA LOCAL INFILE '{secret}' INTO TABLE conversations (id, name)"
            )
        leaked = select(func.count()).where(conversations.c.name == "secret")
        assert await connection.scalar(leaked) == 0
        assert await connection.scalar(text("SELECT 1")) == 1  # the connection is still fine


@pytest.mark.backends("mysql")
async def test_a_connection_refusing_local_falls_back_to_inserts(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    refusing = create_engine(database_url)

    @event.listens_for(refusing.sync_engine, "do_connect")
    def _without_local_infile(dialect: Any, record: Any, cargs: Any, cparams: Any) -> None:
        cparams["local_infile"] = False  # the server then refuses LOAD DATA LOCAL

    app_id = unique("no-local")
    try:
        with caplog.at_level(logging.WARNING, logger="chat_ingest.stores.load_data"):
            async with refusing.begin() as connection:
                rows = conversation_rows(app_id, load_data.LOAD_MIN_ROWS)
                inserted = await sql.insert_ignoring_duplicates(connection, conversations, rows)
                assert inserted == load_data.LOAD_MIN_ROWS
                assert connection.info[load_data.MAY_LOAD_KEY] is False
        assert "multi-row INSERTs" in caplog.text
        async with refusing.connect() as connection:
            stored = select(func.count()).where(conversations.c.app_id == app_id)
            assert await connection.scalar(stored) == load_data.LOAD_MIN_ROWS
    finally:
        await refusing.dispose()


async def test_a_role_without_temporary_tables_falls_back_to_inserts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    factory = DatabaseFactory("postgresql", tmp_path)
    url = make_url(await factory.new_url())
    role = f"no_temp_{uuid.uuid4().hex[:8]}"
    owner = create_engine(url.render_as_string(hide_password=False))
    await migrate.upgrade(owner)
    async with owner.begin() as connection:
        for statement in (
            f'REVOKE TEMPORARY ON DATABASE "{url.database}" FROM PUBLIC',
            f"CREATE ROLE {role} LOGIN",
            f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {role}",
        ):
            await connection.execute(text(statement))
    restricted_url = url.set(username=role).render_as_string(hide_password=False)
    restricted = create_engine(restricted_url)
    app_id = unique("no-temp")
    try:
        with caplog.at_level(logging.WARNING, logger="chat_ingest.stores.copy"):
            bodies = [body(app_id, c, 0) for c in range(CHUNK)]
            tally = await run_import(restricted_url, restricted, bodies, tmp_path / "r.jsonl")
        assert (tally.inserted, tally.rejected) == (CHUNK, 0)
        assert "multi-row INSERTs" in caplog.text
    finally:
        await restricted.dispose()
        await owner.dispose()
        await factory.drop_all()
        server = create_engine(POSTGRES_URL)
        async with server.begin() as connection:
            await connection.execute(text(f"DROP ROLE IF EXISTS {role}"))
        await server.dispose()
