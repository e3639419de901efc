"""The migrations produce the models' schema, and on MySQL the design document's DDL."""

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import JSON, Connection, text
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.asyncio import AsyncEngine

from chat_ingest.db import migrate
from chat_ingest.db.models import metadata

pytestmark = pytest.mark.asyncio


def _same_type(context: Any, inspected: Any, metadata_column: Any, *_: Any) -> bool | None:
    """MariaDB stores JSON as LONGTEXT with a json_valid() check; treat that as equal."""
    if isinstance(metadata_column.type.dialect_impl(context.dialect), JSON) and isinstance(
        inspected.type, mysql.LONGTEXT
    ):
        return False
    return None  # let Alembic decide


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": _same_type, "target_metadata": metadata}
    )
    return [
        diff for diff in compare_metadata(context, metadata) if "alembic_version" not in str(diff)
    ]


async def test_migrations_match_models(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        assert await connection.run_sync(_differences) == []


async def test_upgrade_is_idempotent_and_current_is_head(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)
    assert await migrate.current_revision(engine) == migrate.head_revision()


async def test_mysql_tables_follow_the_design_ddl(mysql_engine: AsyncEngine) -> None:
    async with mysql_engine.connect() as connection:
        ddl = {
            table: (await connection.execute(text(f"SHOW CREATE TABLE {table}"))).one()[1]
            for table in ("conversations", "messages", "message_files")
        }
    for create in ddl.values():
        assert "ENGINE=InnoDB" in create and "CHARSET=utf8mb4" in create
    conversations, messages, files = ddl["conversations"], ddl["messages"], ddl["message_files"]
    assert "enum('normal','archived','deleted')" in conversations
    assert "KEY `idx_conv_app_created` (`app_id`,`created_at`)" in conversations
    assert "KEY `idx_conv_user_created` (`from_end_user_id`,`created_at`)" in conversations
    assert "ON UPDATE current_timestamp()" in conversations
    assert "`query` longtext" in messages and "`answer` longtext" in messages
    assert "decimal(10,3)" in messages and "decimal(18,6)" in messages
    assert "UNIQUE KEY `ux_msg_conv_client` (`conversation_id`,`client_message_id`)" in messages
    assert "KEY `idx_msg_conv_created` (`conversation_id`,`created_at`)" in messages
    assert (
        "CONSTRAINT `fk_msg_conv` FOREIGN KEY (`conversation_id`) REFERENCES `conversations` (`id`)"
        " ON DELETE CASCADE" in messages
    )
    assert "enum('document','image','audio','video','other')" in files
    assert "enum('end_user','assistant','system')" in files
    assert "FOREIGN KEY (`message_id`) REFERENCES `messages` (`id`) ON DELETE CASCADE" in files


async def test_deleting_a_conversation_cascades(engine: AsyncEngine) -> None:
    """Foreign keys are enforced on every backend (SQLite needs a pragma per connection)."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO conversations (id, app_id, name, inputs, from_end_user_id, "
                "dialogue_count) VALUES ('cascade-1', 'a', 'n', '{}', 'u', 0)"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO messages (id, conversation_id, app_id, model_provider, model_id, "
                "inputs, query, answer) VALUES ('cascade-m', 'cascade-1', 'a', 'p', 'm', '{}', "
                "'q', 'a')"
            )
        )
        await connection.execute(text("DELETE FROM conversations WHERE id = 'cascade-1'"))
        left = await connection.scalar(text("SELECT COUNT(*) FROM messages WHERE id = 'cascade-m'"))
    assert left == 0
