"""Transient database errors are retried as a whole transaction; others are not."""

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chat_ingest.db.unit_of_work import Database

pytestmark = pytest.mark.asyncio


async def _seed(engine: AsyncEngine, conversation_id: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO conversations (id, app_id, name, inputs, from_end_user_id) "
                "VALUES (:id, 'a', 'n', '{}', 'u')"
            ),
            {"id": conversation_id},
        )


async def test_lock_wait_timeout_is_retried_until_the_lock_is_free(
    mysql_engine: AsyncEngine,
) -> None:
    await _seed(mysql_engine, "retry-lock")
    attempts = 0

    async def bump(connection: AsyncConnection) -> None:
        nonlocal attempts
        attempts += 1
        await connection.execute(text("SET SESSION innodb_lock_wait_timeout = 1"))
        await connection.execute(
            text("UPDATE conversations SET dialogue_count = dialogue_count + 1 WHERE id = :id"),
            {"id": "retry-lock"},
        )

    async with mysql_engine.connect() as holder:
        await holder.execute(
            text("SELECT id FROM conversations WHERE id = 'retry-lock' FOR UPDATE")
        )
        database = Database(mysql_engine, attempts=5, time_budget=20)
        task = asyncio.create_task(database.run(bump))
        await asyncio.sleep(1.5)  # long enough for the first attempt to hit error 1205
        await holder.rollback()
        await task
    assert attempts >= 2
    async with mysql_engine.connect() as connection:
        count = await connection.scalar(
            text("SELECT dialogue_count FROM conversations WHERE id = 'retry-lock'")
        )
    assert count == 1  # the failed attempts left nothing behind


async def test_integrity_errors_are_not_retried(mysql_engine: AsyncEngine) -> None:
    await _seed(mysql_engine, "retry-dup")
    attempts = 0

    async def duplicate(connection: AsyncConnection) -> None:
        nonlocal attempts
        attempts += 1
        await connection.execute(
            text(
                "INSERT INTO conversations (id, app_id, name, inputs, from_end_user_id) "
                "VALUES ('retry-dup', 'a', 'n', '{}', 'u')"
            )
        )

    with pytest.raises(IntegrityError):
        await Database(mysql_engine, attempts=5).run(duplicate)
    assert attempts == 1
