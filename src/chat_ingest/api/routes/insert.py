"""POST /api/chat/insert.

The body is read as bytes and validated with ``model_validate_json`` (one pass in Rust)
rather than through FastAPI's body parameter, so that every malformed body, however hostile
(invalid UTF-8, deep nesting, a non-object), becomes our 400 and never a 500.
"""

from typing import Any, TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError

from chat_ingest import metrics
from chat_ingest.api.deps import CallerDep, DatabaseDep, InsertPolicyDep, note_app_id
from chat_ingest.api.errors import invalid_body
from chat_ingest.api.openapi import ERROR_RESPONSES, json_body
from chat_ingest.schemas import InsertRequest, InsertResult
from chat_ingest.service import insert as insert_service

router = APIRouter(prefix="/api/chat", tags=["insert"])
M = TypeVar("M", bound=BaseModel)


def parse_body(model: type[M], body: bytes) -> M:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise invalid_body(exc) from None


@router.post(
    "/insert",
    response_model=InsertResult,
    summary="Insert one question/answer record",
    responses=ERROR_RESPONSES,
    openapi_extra=json_body(InsertRequest),
)
async def insert(
    request: Request, caller: CallerDep, database: DatabaseDep, policy: InsertPolicyDep
) -> Any:
    with metrics.observing_insert():
        payload = parse_body(InsertRequest, await request.body())
        note_app_id(request, payload.app_id)
        caller.require_app(payload.app_id)
        outcome = await database.run(
            lambda connection: insert_service.insert_message(connection, payload, policy)
        )
    metrics.active_conversations.touch(outcome.conversation_id)
    return InsertResult(
        conversation_id=outcome.conversation_id,
        message_id=outcome.message_id,
        created=outcome.created,
        conversation_created=outcome.conversation_created,
    )
