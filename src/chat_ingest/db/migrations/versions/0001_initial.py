"""The design document's three tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

A migration is a frozen record of the schema at one point in time, so it spells the tables
out instead of importing ``db.models`` (which will move on); a test keeps the two equal.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from chat_ingest.db.types import ExactDecimal, Json, LongText, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL_TABLE_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}
ENUMS = {
    "conversation_status": ("normal", "archived", "deleted"),
    "message_status": ("normal", "error"),
    "message_file_type": ("document", "image", "audio", "video", "other"),
    "message_file_transfer_method": ("local_file", "remote_url"),
    "message_file_belongs_to": ("user", "assistant", "system"),
    "message_file_created_by_role": ("end_user", "assistant", "system"),
}


def _enum(name: str) -> sa.Enum:
    return sa.Enum(*ENUMS[name], name=name, create_constraint=True)


def _timestamps(on_update: bool = True) -> list[sa.Column[Any]]:
    """created_at and updated_at as the design has them (MySQL refreshes updated_at itself)."""
    now = sa.text("CURRENT_TIMESTAMP")
    is_mysql = op.get_context().dialect.name in ("mysql", "mariadb")
    touched = sa.text("CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP") if is_mysql else now
    columns: list[sa.Column[Any]] = [
        sa.Column("created_at", UTCDateTime(), nullable=False, server_default=now)
    ]
    if on_update:
        columns.append(
            sa.Column("updated_at", UTCDateTime(), nullable=False, server_default=touched)
        )
    return columns


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("app_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("status", _enum("conversation_status"), nullable=False, server_default="normal"),
        sa.Column("inputs", Json, nullable=False),
        sa.Column("from_end_user_id", sa.String(64), nullable=False),
        sa.Column("from_source", sa.String(32), nullable=False, server_default="api"),
        sa.Column("dialogue_count", sa.Integer(), nullable=False, server_default="0"),
        *_timestamps(),
        sa.Index("idx_conv_app_created", "app_id", "created_at"),
        sa.Index("idx_conv_user_created", "from_end_user_id", "created_at"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("conversation_id", sa.String(36), nullable=False),
        sa.Column("app_id", sa.String(64), nullable=False),
        sa.Column("model_provider", sa.String(64), nullable=False),
        sa.Column("model_id", sa.String(128), nullable=False),
        sa.Column("inputs", Json, nullable=False),
        sa.Column("query", LongText, nullable=False),
        sa.Column("message", Json, nullable=True),
        sa.Column("message_tokens", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("answer", LongText, nullable=False),
        sa.Column("answer_tokens", sa.Integer(), nullable=False, server_default="0"),
        sa.Column(
            "provider_response_latency",
            ExactDecimal(10, 3),
            nullable=False,
            server_default="0.000",
        ),
        sa.Column("total_price", ExactDecimal(18, 6), nullable=False, server_default="0.000000"),
        sa.Column("currency", sa.String(8), nullable=False, server_default="USD"),
        sa.Column("status", _enum("message_status"), nullable=False, server_default="normal"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("message_metadata", Json, nullable=True),
        sa.Column("client_message_id", sa.String(64), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"], name="fk_msg_conv", ondelete="CASCADE"
        ),
        sa.Index("idx_msg_conv_created", "conversation_id", "created_at"),
        sa.UniqueConstraint("conversation_id", "client_message_id", name="ux_msg_conv_client"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "message_files",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("type", _enum("message_file_type"), nullable=False, server_default="document"),
        sa.Column(
            "transfer_method",
            _enum("message_file_transfer_method"),
            nullable=False,
            server_default="local_file",
        ),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column(
            "belongs_to", _enum("message_file_belongs_to"), nullable=False, server_default="user"
        ),
        sa.Column("upload_file_id", sa.String(128), nullable=True),
        sa.Column(
            "created_by_role",
            _enum("message_file_created_by_role"),
            nullable=False,
            server_default="end_user",
        ),
        sa.Column("created_by", sa.String(64), nullable=False),
        *_timestamps(on_update=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name="fk_file_msg", ondelete="CASCADE"
        ),
        sa.Index("idx_file_msg", "message_id"),
        **MYSQL_TABLE_OPTIONS,
    )


def downgrade() -> None:
    op.drop_table("message_files")
    op.drop_table("messages")
    op.drop_table("conversations")
    if op.get_context().dialect.name == "postgresql":
        for name in ENUMS:
            sa.Enum(name=name).drop(op.get_bind(), checkfirst=True)
