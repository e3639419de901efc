"""Identifier generation.

UUIDv7 ids are time-ordered: InnoDB inserts stay append-only on the primary key, and rows
with equal ``created_at`` still sort in creation order.
"""

import uuid_utils


def new_id() -> str:
    """Return a new UUIDv7 as its 36-character string form."""
    return str(uuid_utils.uuid7())
