"""What one record becomes in Dify's tables (SPEC §8), and the checks that only this layout
makes. Pure: no SQL here."""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from chat_ingest.errors import InvalidInput
from chat_ingest.schemas import BelongsTo, FileIn, FileType, InsertRequest, TransferMethod
from chat_ingest.stores.dify.directory import DifyApp
from chat_ingest.stores.dify.ids import canonical_uuid

UUID_NIL = "00000000-0000-0000-0000-000000000000"
MAX_TOTAL_PRICE = Decimal("999.9999999")  # messages.total_price is numeric(10,7)
NAME_PREFIX_LENGTH = 20  # Dify names a conversation after its first query's first characters


def _invalid(loc: list[str | int], message: str) -> InvalidInput:
    return InvalidInput(
        f"Invalid request body: {'.'.join(str(p) for p in loc[1:])}: {message}.",
        detail=[{"loc": loc, "msg": message, "type": "value_error"}],
    )


def check_for_dify(request: InsertRequest) -> InsertRequest:
    """The request with its ids in canonical UUID form; a 400 naming the field for what
    Dify's columns or Dify's readers cannot take."""
    updates: dict[str, Any] = {}
    for field in ("app_id", "conversation_id", "message_id"):
        value = getattr(request, field)
        if value is not None and (canonical := canonical_uuid(value, ["body", field])) != value:
            updates[field] = canonical
    if request.total_price is not None and request.total_price > MAX_TOTAL_PRICE:
        raise _invalid(["body", "total_price"], f"must be at most {MAX_TOTAL_PRICE} in Dify")
    resources = request.metadata.get("retriever_resources", [])
    if not isinstance(resources, list):
        raise _invalid(
            ["body", "metadata", "retriever_resources"], "must be a list (Dify reads it as one)"
        )
    files = [_checked_file(file, index) for index, file in enumerate(request.files)]
    if any(new is not old for new, old in zip(files, request.files, strict=True)):
        updates["files"] = files
    return request.model_copy(update=updates) if updates else request


def _checked_file(file: FileIn, index: int) -> FileIn:
    if file.belongs_to is BelongsTo.system:
        raise _invalid(["body", "files", index, "belongs_to"], "must be user or assistant in Dify")
    if file.upload_file_id is None:
        return file
    upload_file_id = canonical_uuid(file.upload_file_id, ["body", "files", index, "upload_file_id"])
    if upload_file_id == file.upload_file_id:
        return file
    return file.model_copy(update={"upload_file_id": upload_file_id})


def conversation_name(request: InsertRequest) -> str:
    if request.conversation_name is not None:
        return request.conversation_name
    query = request.query
    if len(query) > NAME_PREFIX_LENGTH:
        return query[:NAME_PREFIX_LENGTH] + "..."
    return query


def metadata_text(metadata: dict[str, Any]) -> str:
    """``message_metadata`` as Dify reads it: JSON text with a ``retriever_resources`` list
    (``/v1/messages`` fails for the whole conversation without one)."""
    if "retriever_resources" not in metadata:
        metadata = {**metadata, "retriever_resources": []}
    return orjson.dumps(metadata).decode()


def message_document(query: str, answer: str) -> list[dict[str, Any]]:
    """``messages.message``, the prompt as chat apps record it."""
    return [
        {"role": "user", "text": query, "files": []},
        {"role": "assistant", "text": answer, "files": []},
    ]


def stored_file_type(file: FileIn) -> str:
    return "custom" if file.type is FileType.other else file.type.value


def stored_transfer_method(file: FileIn) -> str:
    """A ``local_file`` without an upload id is stored as ``remote_url``: Dify reads a local
    file only through its ``upload_files`` row, and fails the whole message list without one."""
    if file.transfer_method is TransferMethod.local_file and file.upload_file_id is None:
        return TransferMethod.remote_url.value
    return file.transfer_method.value


def file_rows(
    file_ids: Sequence[str],
    files: Sequence[FileIn],
    message_id: str,
    end_user_id: str,
    created_at: datetime,
) -> list[dict[str, Any]]:
    return [
        {
            "id": file_id,
            "message_id": message_id,
            "type": stored_file_type(file),
            "transfer_method": stored_transfer_method(file),
            "url": file.url,
            "upload_file_id": file.upload_file_id,
            "belongs_to": file.belongs_to.value,
            "created_by_role": "end_user",
            "created_by": end_user_id,
            "created_at": created_at,
        }
        for file_id, file in zip(file_ids, files, strict=True)
    ]


def conversation_row(
    app: DifyApp,
    conversation_id: str,
    end_user_id: str,
    first: InsertRequest,
    model: tuple[str, str],
    created_at: datetime,
) -> dict[str, Any]:
    return {
        "id": conversation_id,
        "app_id": app.id,
        "app_model_config_id": app.app_model_config_id,
        "model_provider": model[0],
        "model_id": model[1],
        "mode": app.mode,
        "name": conversation_name(first),
        "inputs": first.inputs,
        "status": "normal",
        "from_source": "api",
        "from_end_user_id": end_user_id,
        "from_account_id": None,
        "invoke_from": "service-api",
        "is_deleted": False,
        "created_at": created_at,
    }
