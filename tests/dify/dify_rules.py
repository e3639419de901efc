"""Dify's own rules, restated so that tests can apply them to what chat-ingest wrote.

Each function says which Dify code it restates (paths in langgenius/dify @ 76391b0383, see
DIFY.md §3 and §1.6). They read with plain SQL, as Dify's queries do, so a row that Dify would
not show is not shown here either.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

UUID_NIL = "00000000-0000-0000-0000-000000000000"

# api/models/enums.py (§1.6); FileType/FileTransferMethod from graphon 0.5.3. Dify's EnumText
# raises when it loads a value outside these sets.
ACCEPTED_VALUES: dict[tuple[str, str], frozenset[str | None]] = {
    ("conversations", "from_source"): frozenset({"api", "console"}),
    ("messages", "from_source"): frozenset({"api", "console"}),
    ("conversations", "invoke_from"): frozenset(
        {
            None,
            "service-api",
            "web-app",
            "trigger",
            "explore",
            "debugger",
            "published",
            "validation",
            "openapi",
        }
    ),
    ("messages", "invoke_from"): frozenset(
        {
            None,
            "service-api",
            "web-app",
            "trigger",
            "explore",
            "debugger",
            "published",
            "validation",
            "openapi",
        }
    ),
    ("conversations", "status"): frozenset({"normal"}),
    ("messages", "status"): frozenset({"normal", "paused", "error"}),
    ("conversations", "mode"): frozenset(
        {
            "completion",
            "workflow",
            "chat",
            "advanced-chat",
            "agent-chat",
            "agent",
            "channel",
            "rag-pipeline",
        }
    ),
    ("messages", "app_mode"): frozenset(
        {
            None,
            "completion",
            "workflow",
            "chat",
            "advanced-chat",
            "agent-chat",
            "agent",
            "channel",
            "rag-pipeline",
        }
    ),
    ("end_users", "type"): frozenset({"browser", "mcp", "openapi", "service-api", "trigger"}),
    ("message_files", "created_by_role"): frozenset({"account", "end_user", "end-user"}),
    ("message_files", "belongs_to"): frozenset({None, "user", "assistant"}),
    ("message_files", "type"): frozenset({"image", "document", "audio", "video", "custom"}),
    ("message_files", "transfer_method"): frozenset(
        {"remote_url", "local_file", "tool_file", "datasource_file"}
    ),
}


async def unaccepted_values(connection: AsyncConnection) -> list[tuple[str, str, Any]]:
    """Every stored enum value Dify would refuse to load, as ``(table, column, value)``."""
    found = []
    for (table, column), accepted in ACCEPTED_VALUES.items():
        rows = await connection.execute(text(f"SELECT DISTINCT {column} FROM {table}"))
        found += [(table, column, v) for (v,) in rows if v not in accepted]
    return found


def _ids(rows: Any) -> list[str]:
    return [str(row[0]) for row in rows]


async def console_list(connection: AsyncConnection, app_id: str, mode: str) -> list[str]:
    """Console "Logs": ``ChatConversationApi.get`` (controllers/console/app/conversation.py
    L210-319): the app's conversations not deleted, newest ``updated_at`` first; chatflow apps
    also drop ``invoke_from != 'debugger'`` rows, which in SQL drops NULL too."""
    sql = "SELECT id FROM conversations WHERE app_id = :app AND is_deleted = false"
    if mode == "advanced-chat":
        sql += " AND invoke_from != 'debugger'"
    rows = await connection.execute(text(sql + " ORDER BY updated_at DESC"), {"app": app_id})
    return _ids(rows)


async def console_message_count(connection: AsyncConnection, conversation_id: str) -> int:
    """The console list's ``message_count`` column: ``COUNT(messages)``."""
    return int(
        await connection.scalar(
            text("SELECT COUNT(*) FROM messages WHERE conversation_id = :c"),
            {"c": conversation_id},
        )
        or 0
    )


async def service_api_end_user(
    connection: AsyncConnection, tenant_id: str, app_id: str, user: str
) -> str | None:
    """``EndUserService.get_or_create_end_user`` (services/end_user_service.py L39-97), without
    the create: the app's end user with ``session_id = user``, ``service-api`` type first."""
    row = (
        await connection.execute(
            text(
                "SELECT id FROM end_users WHERE tenant_id = :tenant AND app_id = :app"
                " AND session_id = :user"
                " ORDER BY CASE WHEN type = 'service-api' THEN 0 ELSE 1 END LIMIT 1"
            ),
            {"tenant": tenant_id, "app": app_id, "user": user},
        )
    ).first()
    return None if row is None else str(row[0])


async def end_user_rows(
    connection: AsyncConnection, tenant_id: str, app_id: str, user: str
) -> list[dict[str, Any]]:
    rows = await connection.execute(
        text(
            "SELECT * FROM end_users WHERE tenant_id = :tenant AND app_id = :app"
            " AND session_id = :user"
        ),
        {"tenant": tenant_id, "app": app_id, "user": user},
    )
    return [dict(row._mapping) for row in rows]


_SERVICE_API_CONVERSATION = (
    "is_deleted = false AND app_id = :app AND from_source = 'api'"
    " AND from_end_user_id = :end_user AND from_account_id IS NULL"
)


async def service_api_conversations(
    connection: AsyncConnection, app_id: str, end_user_id: str
) -> list[str]:
    """``GET /v1/conversations``: ``ConversationService.pagination_by_last_id`` with
    ``invoke_from=SERVICE_API`` (services/conversation_service.py L35-101), ``-updated_at``."""
    rows = await connection.execute(
        text(
            f"SELECT id FROM conversations WHERE {_SERVICE_API_CONVERSATION}"
            " AND (invoke_from IS NULL OR invoke_from = 'service-api')"
            " ORDER BY updated_at DESC"
        ),
        {"app": app_id, "end_user": end_user_id},
    )
    return _ids(rows)


async def service_api_messages(
    connection: AsyncConnection, app_id: str, end_user_id: str, conversation_id: str
) -> list[dict[str, Any]] | None:
    """``GET /v1/messages``: ``ConversationService.get_conversation`` (L164-181; None means
    404 "Conversation Not Exists.") then every message of the conversation, newest first and
    reversed, with ``retriever_resources`` taken from ``message_metadata`` as
    ``MessageListItem`` needs it (a list; None fails the whole page)."""
    found = await connection.scalar(
        text(f"SELECT id FROM conversations WHERE id = :id AND {_SERVICE_API_CONVERSATION}"),
        {"id": conversation_id, "app": app_id, "end_user": end_user_id},
    )
    if found is None:
        return None
    rows = await connection.execute(
        text("SELECT * FROM messages WHERE conversation_id = :c ORDER BY created_at DESC"),
        {"c": conversation_id},
    )
    messages = [dict(row._mapping) for row in rows]
    for message in messages:
        metadata = message["message_metadata"]
        message["retriever_resources"] = (
            [] if metadata is None else orjson.loads(metadata).get("retriever_resources")
        )
    return list(reversed(messages))


@dataclass(frozen=True)
class ThreadMessage:
    id: str
    parent_message_id: str | None
    query: str
    answer: str
    answer_tokens: int


def extract_thread_messages(messages: Sequence[ThreadMessage]) -> list[ThreadMessage]:
    """core/prompt/utils/extract_thread_messages.py, verbatim in logic: newest first; a falsy
    parent ends the thread; afterwards only the awaited parent (or UUID_NIL) joins."""
    thread: list[ThreadMessage] = []
    next_message = None
    for message in messages:
        if not message.parent_message_id:
            thread.append(message)
            break
        if not next_message or next_message in {message.id, UUID_NIL}:
            thread.append(message)
            next_message = message.parent_message_id
    return thread


async def memory_history(
    connection: AsyncConnection, conversation_id: str, new_query: str | None = None
) -> list[tuple[str, str]]:
    """``TokenBufferMemory.get_history_prompt_messages`` (core/memory/token_buffer_memory.py
    L122-205) as (query, answer) pairs oldest first, when the conversation is continued with
    ``POST /v1/chat-messages``: Dify first writes the new message (answer "", parent UUID_NIL,
    created now), then reads the 500 newest messages, extracts the thread and drops the new,
    unanswered one. ``new_query=None`` reads the history without that new message."""
    rows = await connection.execute(
        text(
            "SELECT id, parent_message_id, query, answer, answer_tokens FROM messages"
            " WHERE conversation_id = :c ORDER BY created_at DESC LIMIT 500"
        ),
        {"c": conversation_id},
    )
    messages = [
        ThreadMessage(
            str(row.id),
            None if row.parent_message_id is None else str(row.parent_message_id),
            row.query,
            row.answer,
            row.answer_tokens,
        )
        for row in rows
    ]
    if new_query is not None:
        messages.insert(0, ThreadMessage("in-flight", UUID_NIL, new_query, "", 0))
    thread = extract_thread_messages(messages)
    if thread and thread[0].answer == "" and thread[0].answer_tokens == 0:
        thread = thread[1:]
    return [(message.query, message.answer) for message in reversed(thread)]
