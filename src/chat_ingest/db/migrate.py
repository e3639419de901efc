"""Alembic, driven programmatically so that the service, the CLI and the tests share one path.

``upgrade`` serialises concurrent starters (several instances or workers booting on one empty
database) with a lock held for the whole upgrade: a named lock on MySQL, an advisory lock on
PostgreSQL, and SQLite's own write lock.
"""

import io
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, redirect_stdout
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chat_ingest.db.unit_of_work import is_transient
from chat_ingest.errors import DatabaseUnavailable

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
LOCK_NAME = "chat_ingest_migrations"
POSTGRES_LOCK_KEY = 0x636861745F696E67  # "chat_ing" as a bigint
LOCK_TIMEOUT_SECONDS = 120


def alembic_config(database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url is not None:
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


@asynccontextmanager
async def _migration_lock(connection: AsyncConnection) -> AsyncIterator[None]:
    dialect = connection.dialect.name
    if dialect in ("mysql", "mariadb"):
        got = await connection.scalar(
            text("SELECT GET_LOCK(:name, :timeout)"),
            {"name": LOCK_NAME, "timeout": LOCK_TIMEOUT_SECONDS},
        )
        if got != 1:
            raise TimeoutError("another process held the migration lock for too long")
        try:
            yield
        finally:
            await connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": LOCK_NAME})
    elif dialect == "postgresql":
        await connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": POSTGRES_LOCK_KEY})
        try:
            yield
        finally:
            await connection.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": POSTGRES_LOCK_KEY}
            )
    else:
        await connection.exec_driver_sql("BEGIN IMMEDIATE")
        yield


def _upgrade_on(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


@asynccontextmanager
async def _reachable(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection; a database that cannot be reached is a ``DatabaseUnavailable``."""
    try:
        connection = await engine.connect()
    except (DBAPIError, OSError) as exc:
        if not is_transient(exc):
            raise
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        raise DatabaseUnavailable(
            f"Cannot reach the database ({type(cause).__name__}); is it running?"
        ) from exc
    try:
        yield connection
    finally:
        await connection.close()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest)."""
    async with _reachable(engine) as connection, _migration_lock(connection):
        await connection.run_sync(_upgrade_on, revision)
        await connection.commit()


async def probe(engine: AsyncEngine) -> None:
    """Connect once: a database that refuses us (password, unknown database) raises its
    ``DBAPIError``; one that is only down is let through (it may come back)."""
    try:
        async with _reachable(engine):
            pass
    except DatabaseUnavailable:
        log.warning("the database cannot be reached yet; starting anyway")


def _current_on(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with _reachable(engine) as connection:
        return await connection.run_sync(_current_on)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def offline_sql(database_url: str) -> str:
    """The DDL that ``upgrade`` would run on this backend, as SQL text."""
    buffer = io.StringIO()
    config = alembic_config(database_url)
    config.output_buffer = buffer
    with redirect_stdout(buffer):
        command.upgrade(config, "head", sql=True)
    return buffer.getvalue()
