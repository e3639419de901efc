"""Indexes for listing an app's conversations newest first.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

``GET /api/chat/conversations`` pages by ``(updated_at, id)`` within an app, optionally for
one end user; the design's indexes are on ``created_at`` and cannot serve that order.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("idx_conv_app_updated", "conversations", ["app_id", "updated_at"])
    op.create_index(
        "idx_conv_app_user_updated", "conversations", ["app_id", "from_end_user_id", "updated_at"]
    )


def downgrade() -> None:
    op.drop_index("idx_conv_app_user_updated", "conversations")
    op.drop_index("idx_conv_app_updated", "conversations")
