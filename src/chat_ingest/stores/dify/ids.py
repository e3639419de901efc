"""Ids in the Dify layout: every id is a UUID (Dify's columns are ``uuid``/``char(36)``), and
the ids that must be the same on every instance are derived, not drawn."""

import re
import uuid

from chat_ingest.errors import InvalidInput

# Fixed namespaces, so that every instance derives the same ids.
_MESSAGE_NAMESPACE = uuid.UUID("0b5f3c52-6a55-4e0e-9d0c-6d1f3a0e8f01")
_END_USER_NAMESPACE = uuid.UUID("5c1a9e07-2f4b-4f7e-8a53-7f2d9b6c4e02")


_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def canonical_uuid(value: str, loc: list[str | int]) -> str:
    """``value`` as a lower-case hyphenated UUID; anything else is a 400 naming ``loc``."""
    if _CANONICAL.fullmatch(value):
        return value
    try:
        return str(uuid.UUID(value))
    except ValueError:
        field = str(loc[-1])
        raise InvalidInput(
            f"Invalid request body: {field} must be a UUID in the Dify layout.",
            detail=[{"loc": loc, "msg": "must be a UUID", "type": "uuid_parsing"}],
        ) from None


def derived_message_id(conversation_id: str, client_message_id: str) -> str:
    """The message id of ``(conversation_id, client_message_id)``: Dify has no column for the
    idempotency key, so the key is the primary key."""
    return str(uuid.uuid5(_MESSAGE_NAMESPACE, f"{conversation_id}\x00{client_message_id}"))


def derived_end_user_id(app_id: str, session_id: str) -> str:
    """The id this service gives a new end user: racing creators (several requests, several
    instances) all insert the same primary key, so exactly one row lands."""
    return str(uuid.uuid5(_END_USER_NAMESPACE, f"{app_id}\x00{session_id}"))


def derived_file_id(message_id: str, index: int) -> str:
    """The id of a message's ``index``-th file: the same when a transaction runs again."""
    return str(uuid.uuid5(_MESSAGE_NAMESPACE, f"{message_id}\x00file\x00{index}"))


def as_uuid(value: str) -> str | None:
    """``value`` in canonical form, or None when it is not a UUID (so it names no row)."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None
