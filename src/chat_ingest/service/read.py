"""Reading stored records back: a conversation, and pages of messages or conversations.

Pages are keyset pages (``WHERE (t, id) after the cursor ORDER BY t, id LIMIT n+1``), never
OFFSET: each page costs the same however deep the listing, and rows inserted meanwhile do not
shift the pages that follow.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from chat_ingest.cursors import CursorSigner, InvalidCursor, Position
from chat_ingest.errors import InvalidInput, NotFound
from chat_ingest.service.access import Caller
from chat_ingest.stores import sql
from chat_ingest.stores.base import Store


@dataclass(frozen=True)
class PageRequest:
    limit: int
    cursor: str | None = None


@dataclass(frozen=True)
class Page:
    data: list[dict[str, Any]]
    has_more: bool
    next_cursor: str | None


async def get_conversation(
    connection: AsyncConnection, store: Store, conversation_id: str
) -> dict[str, Any]:
    row = await store.get_conversation(connection, conversation_id)
    if row is None:
        raise NotFound("Conversation not found.")
    return row


def _position(signer: CursorSigner, scope: str, cursor: str | None) -> tuple[Any, str] | None:
    if cursor is None:
        return None
    try:
        position = signer.read(scope, cursor)
    except InvalidCursor as exc:
        raise InvalidInput(
            "Invalid cursor: pass back the next_cursor of the same listing unchanged.",
            detail=[{"loc": ["query", "cursor"], "msg": str(exc), "type": "value_error"}],
        ) from None
    return position.timestamp, position.id


def _page(
    rows: Sequence[dict[str, Any]], limit: int, signer: CursorSigner, scope: str, sort_column: str
) -> Page:
    """The first ``limit`` of ``rows`` (fetched as limit + 1 to learn whether more follow)."""
    data = list(rows[:limit])
    has_more = len(rows) > limit
    next_cursor = None
    if has_more:
        last = data[-1]
        next_cursor = signer.issue(scope, Position(last[sort_column], last["id"]))
    return Page(data, has_more, next_cursor)


async def list_messages(
    connection: AsyncConnection,
    store: Store,
    conversation_id: str,
    page: PageRequest,
    signer: CursorSigner,
    caller: Caller,
) -> Page:
    """A conversation's messages oldest first, each with its ``files``; another app's
    conversation is not found."""
    scope = orjson.dumps(["messages", conversation_id]).decode()
    after = _position(signer, scope, page.cursor)
    conversation = await get_conversation(connection, store, conversation_id)
    caller.require_visible(conversation["app_id"])
    rows = await store.list_messages(connection, conversation_id, after, page.limit + 1)
    result = _page(rows, page.limit, signer, scope, "created_at")
    files = await store.files_of(connection, [message["id"] for message in result.data])
    for message in result.data:
        message["files"] = files.get(message["id"], [])
    return result


async def list_conversations(
    connection: AsyncConnection,
    store: Store,
    app_id: str,
    user_id: str | None,
    page: PageRequest,
    signer: CursorSigner,
) -> Page:
    """An app's conversations (optionally one end user's), most recently updated first."""
    scope = orjson.dumps(["conversations", app_id, user_id]).decode()
    before = _position(signer, scope, page.cursor)
    rows = await store.list_conversations(connection, app_id, user_id, before, page.limit + 1)
    return _page(rows, page.limit, signer, scope, "updated_at")


async def check_database(connection: AsyncConnection) -> None:
    await sql.ping(connection)
