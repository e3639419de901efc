"""The three tables of the design document, plus ``api_keys``, as SQLAlchemy Core tables.

Core tables rather than ORM classes: every statement the service runs is an explicit
insert/update/select, so the unit-of-work machinery would only add per-row overhead.

MySQL tables use ``utf8mb4_bin``: ids, app ids and client_message_ids are case-sensitive
identifiers, and the server's default case-insensitive collation would make ``Conv-A`` and
``conv-a`` the same primary key (and let one app's listing match another app's id).
"""

from typing import Any

from sqlalchemy import (
    Column,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from chat_ingest.db.types import ExactDecimal, Json, LongText, UTCDateTime

MYSQL_TABLE_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}
NOW = text("CURRENT_TIMESTAMP")

metadata = MetaData()

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("app_id", String(64), nullable=False),
    Column("name", String(255), nullable=False),
    Column(
        "status",
        Enum("normal", "archived", "deleted", name="conversation_status", create_constraint=True),
        nullable=False,
        server_default="normal",
    ),
    Column("inputs", Json, nullable=False),
    Column("from_end_user_id", String(64), nullable=False),
    Column("from_source", String(32), nullable=False, server_default="api"),
    Column("dialogue_count", Integer, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False, server_default=NOW),
    Column("updated_at", UTCDateTime, nullable=False, server_default=NOW),
    Index("idx_conv_app_created", "app_id", "created_at"),
    Index("idx_conv_user_created", "from_end_user_id", "created_at"),
    Index("idx_conv_app_updated", "app_id", "updated_at"),
    Index("idx_conv_app_user_updated", "app_id", "from_end_user_id", "updated_at"),
    **MYSQL_TABLE_OPTIONS,
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "conversation_id",
        String(36),
        ForeignKey("conversations.id", ondelete="CASCADE", name="fk_msg_conv"),
        nullable=False,
    ),
    Column("app_id", String(64), nullable=False),
    Column("model_provider", String(64), nullable=False),
    Column("model_id", String(128), nullable=False),
    Column("inputs", Json, nullable=False),
    Column("query", LongText, nullable=False),
    Column("message", Json, nullable=True),
    Column("message_tokens", Integer, nullable=False, server_default="0"),
    Column("answer", LongText, nullable=False),
    Column("answer_tokens", Integer, nullable=False, server_default="0"),
    Column(
        "provider_response_latency", ExactDecimal(10, 3), nullable=False, server_default="0.000"
    ),
    Column("total_price", ExactDecimal(18, 6), nullable=False, server_default="0.000000"),
    Column("currency", String(8), nullable=False, server_default="USD"),
    Column(
        "status",
        Enum("normal", "error", name="message_status", create_constraint=True),
        nullable=False,
        server_default="normal",
    ),
    Column("error", Text, nullable=True),
    Column("message_metadata", Json, nullable=True),
    Column("client_message_id", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=False, server_default=NOW),
    Column("updated_at", UTCDateTime, nullable=False, server_default=NOW),
    Index("idx_msg_conv_created", "conversation_id", "created_at"),
    UniqueConstraint("conversation_id", "client_message_id", name="ux_msg_conv_client"),
    **MYSQL_TABLE_OPTIONS,
)

FILE_TYPES = ("document", "image", "audio", "video", "other")

message_files = Table(
    "message_files",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "message_id",
        String(36),
        ForeignKey("messages.id", ondelete="CASCADE", name="fk_file_msg"),
        nullable=False,
    ),
    Column(
        "type",
        Enum(*FILE_TYPES, name="message_file_type", create_constraint=True),
        nullable=False,
        server_default="document",
    ),
    Column(
        "transfer_method",
        Enum(
            "local_file", "remote_url", name="message_file_transfer_method", create_constraint=True
        ),
        nullable=False,
        server_default="local_file",
    ),
    Column("url", String(2048), nullable=False),
    Column(
        "belongs_to",
        Enum("user", "assistant", "system", name="message_file_belongs_to", create_constraint=True),
        nullable=False,
        server_default="user",
    ),
    Column("upload_file_id", String(128), nullable=True),
    Column(
        "created_by_role",
        Enum(
            "end_user",
            "assistant",
            "system",
            name="message_file_created_by_role",
            create_constraint=True,
        ),
        nullable=False,
        server_default="end_user",
    ),
    Column("created_by", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False, server_default=NOW),
    Index("idx_file_msg", "message_id"),
    **MYSQL_TABLE_OPTIONS,
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("key_hash", String(64), nullable=False),
    Column("app_ids", Json, nullable=False),
    Column("name", String(255), nullable=True),
    Column("created_at", UTCDateTime, nullable=False, server_default=NOW),
    Column("revoked_at", UTCDateTime, nullable=True),
    UniqueConstraint("key_hash", name="ux_api_keys_hash"),
    **MYSQL_TABLE_OPTIONS,
)
