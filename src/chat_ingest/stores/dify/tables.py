"""Dify's tables as this service sees them: the columns it reads and writes, which of them
must exist, and ``Table`` objects built from the columns the connected schema actually has
(a column an older Dify lacks is simply left out of every statement).

These ``Table`` objects belong to their own ``MetaData``: nothing ever creates, alters or
migrates them.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeEngine

from chat_ingest.stores.dify.types import NaiveUTC, StringUUID

_uuid, _time, _text, _name = StringUUID(), NaiveUTC(), Text(), String(255)

COLUMNS: dict[str, dict[str, TypeEngine[Any]]] = {
    "apps": {
        "id": _uuid,
        "tenant_id": _uuid,
        "mode": _name,
        "status": _name,
        "app_model_config_id": _uuid,
    },
    "api_tokens": {"id": _uuid, "app_id": _uuid, "type": String(16), "token": _name},
    "end_users": {
        "id": _uuid,
        "tenant_id": _uuid,
        "app_id": _uuid,
        "type": _name,
        "external_user_id": _name,
        "is_anonymous": Boolean(),
        "session_id": _name,
        "created_at": _time,
        "updated_at": _time,
    },
    "conversations": {
        "id": _uuid,
        "app_id": _uuid,
        "app_model_config_id": _uuid,
        "model_provider": _name,
        "model_id": _name,
        "mode": _name,
        "name": _name,
        "inputs": JSON(),
        "status": _name,
        "from_source": _name,
        "from_end_user_id": _uuid,
        "from_account_id": _uuid,
        "invoke_from": _name,
        "is_deleted": Boolean(),
        "dialogue_count": Integer(),
        "created_at": _time,
        "updated_at": _time,
    },
    "messages": {
        "id": _uuid,
        "app_id": _uuid,
        "model_provider": _name,
        "model_id": _name,
        "conversation_id": _uuid,
        "inputs": JSON(),
        "query": _text,
        "message": JSON(),
        "message_tokens": Integer(),
        "message_unit_price": Numeric(10, 4),
        "answer": _text,
        "answer_tokens": Integer(),
        "answer_unit_price": Numeric(10, 4),
        "provider_response_latency": Float(),
        "total_price": Numeric(10, 7),
        "currency": _name,
        "from_source": _name,
        "from_end_user_id": _uuid,
        "from_account_id": _uuid,
        "invoke_from": _name,
        "status": _name,
        "error": _text,
        "message_metadata": _text,
        "parent_message_id": _uuid,
        "app_mode": _name,
        "agent_based": Boolean(),
        "created_at": _time,
        "updated_at": _time,
    },
    "message_files": {
        "id": _uuid,
        "message_id": _uuid,
        "type": _name,
        "transfer_method": _name,
        "url": _text,
        "upload_file_id": _uuid,
        "belongs_to": _name,
        "created_by_role": _name,
        "created_by": _uuid,
        "created_at": _time,
    },
}

# Columns without which the layout cannot work: Dify's NOT NULL columns without a default,
# the ids, and what ownership and visibility are decided on. Every other column in COLUMNS is
# written (or read) only when the connected schema has it.
REQUIRED: dict[str, tuple[str, ...]] = {
    "apps": ("id", "tenant_id", "mode", "status", "app_model_config_id"),
    "api_tokens": ("id", "app_id", "type", "token"),
    "end_users": ("id", "tenant_id", "app_id", "type", "session_id"),
    "conversations": (
        "id", "app_id", "mode", "name", "inputs", "status", "from_source",
        "from_end_user_id", "from_account_id", "is_deleted", "created_at", "updated_at",
    ),
    "messages": (
        "id", "app_id", "conversation_id", "inputs", "query", "message", "message_unit_price",
        "answer", "answer_unit_price", "currency", "from_source", "from_end_user_id",
        "created_at",
    ),
    "message_files": (
        "id", "message_id", "type", "transfer_method", "created_by_role", "created_by",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class DifyTables:
    apps: Table
    api_tokens: Table
    end_users: Table
    conversations: Table
    messages: Table
    message_files: Table

    def has(self, table: str, column: str) -> bool:
        return column in getattr(self, table).c


class MissingInDify(Exception):
    """The connected database lacks a table or column the layout needs."""


def present(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    """``row`` without the columns that the connected schema lacks (usually none)."""
    absent = table.info["absent"]
    return {name: value for name, value in row.items() if name not in absent} if absent else row


def first_missing(present: Mapping[str, set[str]]) -> str | None:
    """``table`` or ``table.column`` of the first required one ``present`` lacks."""
    for table, columns in REQUIRED.items():
        if table not in present:
            return table
        for column in columns:
            if column not in present[table]:
                return f"{table}.{column}"
    return None


def build_tables(present: Mapping[str, set[str]]) -> DifyTables:
    """The tables with the known columns that ``present`` (table → column names) has."""
    missing = first_missing(present)
    if missing is not None:
        raise MissingInDify(missing)
    metadata = MetaData()
    tables = {
        name: Table(
            name,
            metadata,
            *(
                Column(column, type_, primary_key=column == "id")
                for column, type_ in columns.items()
                if column in present[name]
            ),
            info={"absent": frozenset(columns) - present[name]},
        )
        for name, columns in COLUMNS.items()
    }
    return DifyTables(**tables)
