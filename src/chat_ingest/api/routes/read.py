"""Read routes: a conversation by id, a conversation's messages, an app's conversations.

``/conversations`` is declared before ``/{conversation_id}`` so that it is not taken for an id
(``conversations`` is a reserved word, never a conversation id).
"""

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import AfterValidator

from chat_ingest.api.deps import CallerDep, CursorSignerDep, DatabaseDep, StoreDep, note_app_id
from chat_ingest.api.openapi import error_responses
from chat_ingest.errors import NotFound
from chat_ingest.schemas import (
    CONVERSATION_ID_PATTERN,
    ConversationOut,
    MessageOut,
    Page,
    check_identifier,
)
from chat_ingest.service import read as read_service
from chat_ingest.service.read import PageRequest

router = APIRouter(prefix="/api/chat", tags=["read"])
_CONVERSATION_ID = re.compile(CONVERSATION_ID_PATTERN)
READ_ERRORS = error_responses(400, 401, 404, 429, 503)


def _optional_identifier(value: str | None) -> str | None:
    return None if value is None else check_identifier(value)


Limit = Annotated[int, Query(ge=1, le=100, description="Page size, 1 to 100.")]
Cursor = Annotated[
    str | None,
    Query(max_length=512, description="The previous page's `next_cursor`, unchanged."),
]
# The same rule as in insert bodies: "appA " must not pass a key scoped to appA and then match
# appA's rows under MySQL's PAD SPACE collation; a NUL must not reach PostgreSQL.
AppId = Annotated[str, Query(min_length=1, max_length=64), AfterValidator(check_identifier)]
UserId = Annotated[
    str | None, Query(min_length=1, max_length=64), AfterValidator(_optional_identifier)
]


def _known_shape(conversation_id: str) -> str:
    """An id that could never have been stored is simply not found."""
    if not _CONVERSATION_ID.match(conversation_id):
        raise NotFound("Conversation not found.")
    return conversation_id


@router.get(
    "/conversations",
    response_model=Page[ConversationOut],
    summary="List an app's conversations, most recently updated first",
    responses=error_responses(400, 401, 403, 429, 503),
)
async def list_conversations(
    request: Request,
    caller: CallerDep,
    database: DatabaseDep,
    store: StoreDep,
    signer: CursorSignerDep,
    app_id: AppId,
    user_id: UserId = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Any:
    note_app_id(request, app_id)
    caller.require_app(app_id)
    page = PageRequest(limit, cursor)
    return await database.run(
        lambda connection: read_service.list_conversations(
            connection, store, app_id, user_id, page, signer
        )
    )


@router.get(
    "/{conversation_id}",
    response_model=ConversationOut,
    summary="Get a conversation",
    responses=READ_ERRORS,
)
async def get_conversation(
    conversation_id: str,
    request: Request,
    caller: CallerDep,
    database: DatabaseDep,
    store: StoreDep,
) -> Any:
    conversation_id = _known_shape(conversation_id)
    conversation = await database.run(
        lambda connection: read_service.get_conversation(connection, store, conversation_id)
    )
    caller.require_visible(conversation["app_id"])
    note_app_id(request, conversation["app_id"])
    return conversation


@router.get(
    "/{conversation_id}/messages",
    response_model=Page[MessageOut],
    summary="List a conversation's messages, oldest first, with their files",
    responses=READ_ERRORS,
)
async def list_messages(
    conversation_id: str,
    caller: CallerDep,
    database: DatabaseDep,
    store: StoreDep,
    signer: CursorSignerDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Any:
    conversation_id = _known_shape(conversation_id)
    page = PageRequest(limit, cursor)
    return await database.run(
        lambda connection: read_service.list_messages(
            connection, store, conversation_id, page, signer, caller
        )
    )
