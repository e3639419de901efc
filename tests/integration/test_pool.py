"""Pooled connections come back clean, with no extra ROLLBACK round trip after a commit."""

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from chat_ingest.db.engine import EngineOptions, create_engine
from chat_ingest.db.unit_of_work import Database

pytestmark = pytest.mark.asyncio


async def test_a_leaked_transaction_is_rolled_back_on_return(mysql_engine: AsyncEngine) -> None:
    engine = create_engine(mysql_engine.url.render_as_string(hide_password=False))
    try:
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            cursor = raw.driver_connection.cursor()
            await cursor.execute(
                "INSERT INTO conversations (id, app_id, name, inputs, from_end_user_id) "
                "VALUES ('leaked-tx', 'a', 'n', '{}', 'u')"
            )
            assert raw.driver_connection.get_transaction_status()
        async with engine.connect() as connection:
            found = await connection.scalar(
                text("SELECT COUNT(*) FROM conversations WHERE id = 'leaked-tx'")
            )
        assert found == 0
    finally:
        await engine.dispose()


async def test_no_rollback_round_trip_after_a_commit(mysql_engine: AsyncEngine) -> None:
    url = mysql_engine.url.render_as_string(hide_password=False)
    engine = create_engine(url, EngineOptions(pool_size=1, max_overflow=0))
    count_rollbacks = text("SHOW SESSION STATUS LIKE 'Com_rollback'")
    try:
        async with engine.begin() as connection:  # the one pooled connection, every time
            before = int((await connection.execute(count_rollbacks)).one()[1])
        for _ in range(3):
            async with engine.begin() as connection:
                await connection.execute(text("SELECT 1"))
        async with engine.begin() as connection:
            after = int((await connection.execute(count_rollbacks)).one()[1])
        assert after == before
    finally:
        await engine.dispose()


async def test_without_pre_ping_a_killed_connection_is_retried_on_a_new_one(
    mysql_engine: AsyncEngine,
) -> None:
    url = mysql_engine.url.render_as_string(hide_password=False)
    engine = create_engine(url, EngineOptions(pool_size=1, max_overflow=0, pre_ping=False))
    database = Database(engine, attempts=3, time_budget=10)
    try:
        doomed = await database.run(lambda c: c.scalar(text("SELECT CONNECTION_ID()")))
        async with mysql_engine.connect() as admin:
            await admin.execute(text(f"KILL {int(doomed)}"))
        fresh = await database.run(lambda c: c.scalar(text("SELECT CONNECTION_ID()")))
        assert fresh != doomed
    finally:
        await engine.dispose()
