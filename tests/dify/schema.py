"""A Dify-shaped schema for the tests, written from ``DIFY.md`` §1 (and checked against the
DDL that Dify 1.15's own migrations produce on PostgreSQL 15): the tables the Dify layout
touches, with Dify's NOT NULL columns, server defaults and indexes, and no foreign keys.

One template for both backends: ``uuid`` ids with ``uuid_generate_v4()`` on PostgreSQL,
``char(36)`` without a default on MySQL; ``text``/``longtext``; ``json``/``JSON``; naive
``timestamp``/``datetime``.
"""

import re
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from chat_ingest.db.engine import create_engine
from tests.conftest import DatabaseFactory

_TYPES = {
    "postgresql": {
        "uuid": "uuid",
        "id": "uuid DEFAULT uuid_generate_v4() NOT NULL",
        "text": "text",
        "json": "json",
        "bool": "boolean",
        "false": "false",
        "true": "true",
        "ts": "timestamp without time zone",
        "now": "CURRENT_TIMESTAMP(0)",
        "float": "double precision",
        "desc": " DESC",
        "where_live": " WHERE (is_deleted IS FALSE)",
    },
    "mysql": {
        "uuid": "char(36)",
        "id": "char(36) NOT NULL",
        "text": "longtext",
        "json": "json",
        "bool": "tinyint(1)",
        "false": "0",
        "true": "1",
        "ts": "datetime",
        "now": "current_timestamp()",
        "float": "float",
        "desc": "",
        "where_live": "",
    },
}

TABLES = {
    "tenants": """
        id {id}, name varchar(255) NOT NULL, encrypt_public_key {text},
        plan varchar(255) DEFAULT 'basic' NOT NULL, status varchar(255) DEFAULT 'normal' NOT NULL,
        created_at {ts} DEFAULT {now} NOT NULL, updated_at {ts} DEFAULT {now} NOT NULL,
        custom_config {text}, CONSTRAINT tenant_pkey PRIMARY KEY (id)""",
    "apps": """
        id {id}, tenant_id {uuid} NOT NULL, name varchar(255) NOT NULL,
        mode varchar(255) NOT NULL, icon varchar(255), icon_background varchar(255),
        app_model_config_id {uuid}, status varchar(255) DEFAULT 'normal' NOT NULL,
        enable_site {bool} NOT NULL, enable_api {bool} NOT NULL,
        api_rpm integer DEFAULT 0 NOT NULL, api_rph integer DEFAULT 0 NOT NULL,
        is_demo {bool} DEFAULT {false} NOT NULL, is_public {bool} DEFAULT {false} NOT NULL,
        created_at {ts} DEFAULT {now} NOT NULL, updated_at {ts} DEFAULT {now} NOT NULL,
        is_universal {bool} DEFAULT {false} NOT NULL, workflow_id {uuid},
        description {text} NOT NULL, tracing {text}, max_active_requests integer,
        icon_type varchar(255), created_by {uuid}, updated_by {uuid},
        use_icon_as_answer_icon {bool} DEFAULT {false} NOT NULL, maintainer {uuid},
        CONSTRAINT app_pkey PRIMARY KEY (id)""",
    "app_model_configs": """
        id {id}, app_id {uuid} NOT NULL, provider varchar(255), model_id varchar(255),
        configs {json}, created_at {ts} DEFAULT {now} NOT NULL,
        updated_at {ts} DEFAULT {now} NOT NULL, opening_statement {text}, model {text},
        user_input_form {text}, pre_prompt {text},
        prompt_type varchar(255) DEFAULT 'simple' NOT NULL, created_by {uuid}, updated_by {uuid},
        CONSTRAINT app_model_config_pkey PRIMARY KEY (id)""",
    "api_tokens": """
        id {id}, app_id {uuid}, type varchar(16) NOT NULL, token varchar(255) NOT NULL,
        last_used_at {ts}, created_at {ts} DEFAULT {now} NOT NULL, tenant_id {uuid},
        CONSTRAINT api_token_pkey PRIMARY KEY (id)""",
    "end_users": """
        id {id}, tenant_id {uuid} NOT NULL, app_id {uuid}, type varchar(255) NOT NULL,
        external_user_id varchar(255), name varchar(255),
        is_anonymous {bool} DEFAULT {true} NOT NULL, session_id varchar(255) NOT NULL,
        created_at {ts} DEFAULT {now} NOT NULL, updated_at {ts} DEFAULT {now} NOT NULL,
        CONSTRAINT end_user_pkey PRIMARY KEY (id)""",
    "conversations": """
        id {id}, app_id {uuid} NOT NULL, app_model_config_id {uuid},
        model_provider varchar(255), override_model_configs {text}, model_id varchar(255),
        mode varchar(255) NOT NULL, name varchar(255) NOT NULL, summary {text},
        inputs {json} NOT NULL, introduction {text}, system_instruction {text},
        system_instruction_tokens integer DEFAULT 0 NOT NULL, status varchar(255) NOT NULL,
        from_source varchar(255) NOT NULL, from_end_user_id {uuid}, from_account_id {uuid},
        read_at {ts}, read_account_id {uuid},
        created_at {ts} DEFAULT {now} NOT NULL, updated_at {ts} DEFAULT {now} NOT NULL,
        is_deleted {bool} DEFAULT {false} NOT NULL, invoke_from varchar(255),
        dialogue_count integer DEFAULT 0 NOT NULL,
        CONSTRAINT conversation_pkey PRIMARY KEY (id)""",
    "messages": """
        id {id}, app_id {uuid} NOT NULL, model_provider varchar(255), model_id varchar(255),
        override_model_configs {text}, conversation_id {uuid} NOT NULL, inputs {json} NOT NULL,
        query {text} NOT NULL, message {json} NOT NULL, message_tokens integer DEFAULT 0 NOT NULL,
        message_unit_price numeric(10,4) NOT NULL, answer {text} NOT NULL,
        answer_tokens integer DEFAULT 0 NOT NULL, answer_unit_price numeric(10,4) NOT NULL,
        provider_response_latency {float} DEFAULT 0 NOT NULL, total_price numeric(10,7),
        currency varchar(255) NOT NULL, from_source varchar(255) NOT NULL,
        from_end_user_id {uuid}, from_account_id {uuid},
        created_at {ts} DEFAULT {now} NOT NULL, updated_at {ts} DEFAULT {now} NOT NULL,
        agent_based {bool} DEFAULT {false} NOT NULL,
        message_price_unit numeric(10,7) DEFAULT 0.001 NOT NULL,
        answer_price_unit numeric(10,7) DEFAULT 0.001 NOT NULL, workflow_run_id {uuid},
        status varchar(255) DEFAULT 'normal' NOT NULL, error {text}, message_metadata {text},
        invoke_from varchar(255), parent_message_id {uuid}, app_mode varchar(255),
        CONSTRAINT message_pkey PRIMARY KEY (id)""",
    "message_files": """
        id {id}, message_id {uuid} NOT NULL, type varchar(255) NOT NULL,
        transfer_method varchar(255) NOT NULL, url {text}, upload_file_id {uuid},
        created_by_role varchar(255) NOT NULL, created_by {uuid} NOT NULL,
        created_at {ts} DEFAULT {now} NOT NULL, belongs_to varchar(255),
        CONSTRAINT message_file_pkey PRIMARY KEY (id)""",
}

INDEXES = (
    "CREATE INDEX api_token_app_id_type_idx ON api_tokens (app_id, type)",
    "CREATE INDEX api_token_tenant_idx ON api_tokens (tenant_id, type)",
    "CREATE INDEX api_token_token_idx ON api_tokens (token, type)",
    "CREATE INDEX app_app_id_idx ON app_model_configs (app_id)",
    "CREATE INDEX app_tenant_id_idx ON apps (tenant_id)",
    "CREATE INDEX conversation_app_created_at_idx ON conversations (app_id, created_at{desc})"
    "{where_live}",
    "CREATE INDEX conversation_app_from_user_idx ON conversations"
    " (app_id, from_source, from_end_user_id)",
    "CREATE INDEX conversation_app_updated_at_idx ON conversations (app_id, updated_at{desc})"
    "{where_live}",
    "CREATE INDEX end_user_session_id_idx ON end_users (session_id, type)",
    "CREATE INDEX end_user_tenant_session_id_idx ON end_users (tenant_id, session_id, type)",
    "CREATE INDEX message_account_idx ON messages (app_id, from_source, from_account_id)",
    "CREATE INDEX message_app_id_idx ON messages (app_id, created_at)",
    "CREATE INDEX message_app_mode_idx ON messages (app_mode)",
    "CREATE INDEX message_conversation_id_idx ON messages (conversation_id)",
    "CREATE INDEX message_created_at_id_idx ON messages (created_at, id)",
    "CREATE INDEX message_end_user_idx ON messages (app_id, from_source, from_end_user_id)",
    "CREATE INDEX message_file_created_by_idx ON message_files (created_by)",
    "CREATE INDEX message_file_message_idx ON message_files (message_id)",
    "CREATE INDEX message_workflow_run_id_idx ON messages (conversation_id, workflow_run_id)",
)


def ddl(dialect: str) -> Iterable[str]:
    """The statements that create the schema on ``dialect`` (``postgresql`` or ``mysql``)."""
    types = _TYPES[dialect]
    if dialect == "postgresql":
        yield 'CREATE EXTENSION IF NOT EXISTS "uuid-ossp"'
    suffix = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4" if dialect == "mysql" else ""
    for name, columns in TABLES.items():
        body = columns.format(**types)
        if dialect == "mysql":  # MySQL ignores primary key names (and warns about them)
            body = re.sub(r"CONSTRAINT \w+ PRIMARY KEY", "PRIMARY KEY", body)
        yield f"CREATE TABLE {name} ({body}){suffix}"
    for index in INDEXES:
        yield index.format(**types)


async def create_dify_database(factory: DatabaseFactory) -> str:
    """A new database on ``factory``'s server holding an empty Dify schema; its URL."""
    url = await factory.new_url()
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            for statement in ddl(connection.dialect.name.replace("mariadb", "mysql")):
                await connection.execute(text(statement))
    finally:
        await engine.dispose()
    return url


async def snapshot(connection: AsyncConnection) -> list[tuple[str, ...]]:
    """Every table, column (type, nullability, default) and index of the connected schema, to
    show that nothing was created, altered or dropped."""
    if connection.dialect.name == "postgresql":
        columns = (
            "SELECT table_name, column_name, data_type, is_nullable, column_default"
            " FROM information_schema.columns WHERE table_schema = current_schema()"
        )
        indexes = (
            "SELECT tablename, indexname, indexdef FROM pg_indexes"
            " WHERE schemaname = current_schema()"
        )
    else:
        columns = (
            "SELECT table_name, column_name, column_type, is_nullable, column_default"
            " FROM information_schema.columns WHERE table_schema = DATABASE()"
        )
        indexes = (
            "SELECT table_name, index_name, column_name FROM information_schema.statistics"
            " WHERE table_schema = DATABASE()"
        )
    rows = [*await connection.execute(text(columns)), *await connection.execute(text(indexes))]
    return sorted(tuple(str(value) for value in row) for row in rows)
