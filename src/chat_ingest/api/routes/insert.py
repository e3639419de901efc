"""POST /api/chat/insert and /api/chat/insert/batch.

Bodies are read as bytes and validated by ``schemas.parse_*`` (pydantic's Rust JSON parser)
rather than through FastAPI's body parameter, so that every malformed body, however hostile
(invalid UTF-8, deep nesting, a non-object), becomes our 400 and never a 500, and a batch
item is judged on its own.
"""

from typing import Any

from fastapi import APIRouter, Request

from chat_ingest import metrics
from chat_ingest.api.deps import (
    CallerDep,
    DatabaseDep,
    InsertCountDep,
    InsertPolicyDep,
    JsonBodyDep,
    SettingsDep,
    SingleInsertsDep,
    StoreDep,
    note_app_id,
)
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
async def insert(
    count: InsertCountDep,
    request: Request,
    caller: CallerDep,
    body: JsonBodyDep,
    inserts: SingleInsertsDep,
) -> Any:
    payload = parse_insert(body)
    note_app_id(request, payload.app_id)
    caller.require_app(payload.app_id)
    outcome = await inserts.insert(payload)  # in a transaction shared with its neighbours
    count.settle(succeeded=1, failed=0)
    metrics.active_conversations.touch(outcome.conversation_id)
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
    count: InsertCountDep,
    caller: CallerDep,
    body: JsonBodyDep,
    database: DatabaseDep,
    store: StoreDep,
    policy: InsertPolicyDep,
    settings: SettingsDep,
) -> Any:
    items = parse_batch(body, settings.max_batch_items)
    count.expect(len(items))
    results = await insert_service.store_items(database, store, items, policy, caller)
    result = batch_result(results)
    count.settle(succeeded=result.inserted + result.duplicates, failed=result.failed)
    metrics.active_conversations.touch(
        *(item.conversation_id for item in result.results if item.conversation_id is not None)
    )
    return result


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
