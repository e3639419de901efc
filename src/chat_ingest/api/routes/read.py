"""Read routes: a conversation by id."""

import re
from typing import Any

from fastapi import APIRouter, Request

from chat_ingest.api.deps import CallerDep, DatabaseDep, note_app_id
from chat_ingest.api.openapi import ERROR_RESPONSES
from chat_ingest.errors import NotFound
from chat_ingest.schemas import CONVERSATION_ID_PATTERN, ConversationOut
from chat_ingest.service import read as read_service

router = APIRouter(prefix="/api/chat", tags=["read"])
_CONVERSATION_ID = re.compile(CONVERSATION_ID_PATTERN)


@router.get(
    "/{conversation_id}",
    response_model=ConversationOut,
    summary="Get a conversation",
    responses=ERROR_RESPONSES,
)
async def get_conversation(
    conversation_id: str, request: Request, caller: CallerDep, database: DatabaseDep
) -> Any:
    if not _CONVERSATION_ID.match(conversation_id):
        raise NotFound("Conversation not found.")
    conversation = await database.run(
        lambda connection: read_service.get_conversation(connection, conversation_id)
    )
    caller.require_visible(conversation["app_id"])
    note_app_id(request, conversation["app_id"])
    return conversation
