"""POST /api/chat/insert and /api/chat/insert/batch.

Bodies are read as bytes and validated by ``schemas.parse_*`` (pydantic's Rust JSON parser)
rather than through FastAPI's body parameter, so that every malformed body, however hostile
(invalid UTF-8, deep nesting, a non-object), becomes our 400 and never a 500, and a batch
item is judged on its own.
"""

from typing import Any

from fastapi import APIRouter, Request

from chat_ingest.api.deps import DatabaseDep, InsertPolicyDep, SettingsDep
from chat_ingest.api.errors import STATUS_OF
from chat_ingest.api.openapi import ERROR_RESPONSES, json_body
from chat_ingest.schemas import (
    BatchItemResult,
    BatchRequest,
    BatchResult,
    InsertRequest,
    InsertResult,
    parse_batch,
    parse_insert,
)
from chat_ingest.service import insert as insert_service
from chat_ingest.service.insert import InsertOutcome, ItemResult

router = APIRouter(prefix="/api/chat", tags=["insert"])


@router.post(
    "/insert",
    response_model=InsertResult,
    summary="Insert one question/answer record",
    responses=ERROR_RESPONSES,
    openapi_extra=json_body(InsertRequest),
)
async def insert(request: Request, database: DatabaseDep, policy: InsertPolicyDep) -> Any:
    payload = parse_insert(await request.body())
    outcome = await database.run(
        lambda connection: insert_service.insert_message(connection, payload, policy)
    )
    return InsertResult(
        conversation_id=outcome.conversation_id,
        message_id=outcome.message_id,
        created=outcome.created,
        conversation_created=outcome.conversation_created,
    )


@router.post(
    "/insert/batch",
    response_model=BatchResult,
    summary="Insert up to MAX_BATCH_ITEMS records, each judged on its own",
    responses=ERROR_RESPONSES,
    openapi_extra=json_body(BatchRequest),
)
async def insert_batch(
    request: Request, database: DatabaseDep, policy: InsertPolicyDep, settings: SettingsDep
) -> Any:
    items = parse_batch(await request.body(), settings.max_batch_items)
    return batch_result(await insert_service.store_items(database, items, policy))


def batch_result(results: list[ItemResult]) -> BatchResult:
    items = [_item_result(index, result) for index, result in enumerate(results)]
    created = sum(item.created for item in items)
    failed = sum(not item.success for item in items)
    return BatchResult(
        inserted=created, duplicates=len(items) - created - failed, failed=failed, results=items
    )


def _item_result(index: int, result: ItemResult) -> BatchItemResult:
    if isinstance(result, InsertOutcome):
        return BatchItemResult(
            index=index,
            success=True,
            status=200,
            conversation_id=result.conversation_id,
            message_id=result.message_id,
            created=result.created,
        )
    return BatchItemResult(
        index=index, success=False, status=STATUS_OF.get(type(result), 500), error=result.message
    )
