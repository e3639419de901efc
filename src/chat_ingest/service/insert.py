"""Storing one question/answer record."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from chat_ingest import pricing, repository
from chat_ingest.db.engine import TimestampRange
from chat_ingest.db.models import conversations, messages
from chat_ingest.errors import (
    IdempotencyConflict,
    InvalidInput,
    NotFound,
    OwnershipConflict,
    RecordTooLarge,
)
from chat_ingest.ids import new_id
from chat_ingest.schemas import MAX_PRICE, BelongsTo, InsertRequest, utc_timestamp

CREATED_BY_ROLE = {
    BelongsTo.user: "end_user",
    BelongsTo.assistant: "assistant",
    BelongsTo.system: "system",
}


@dataclass(frozen=True)
class InsertPolicy:
    """The settings that shape a stored message, passed in by the edge that read them."""

    default_model_provider: str
    default_model_id: str
    currency: str
    token_estimation_enabled: bool
    price_per_1000_tokens: Decimal
    timestamps: TimestampRange


@dataclass(frozen=True)
class InsertOutcome:
    conversation_id: str
    message_id: str
    created: bool
    conversation_created: bool


def _created_at(request: InsertRequest, timestamps: TimestampRange) -> datetime:
    created_at = request.created_at or utc_timestamp(None)
    if not timestamps.earliest <= created_at <= timestamps.latest:
        raise InvalidInput(
            f"created_at must be between {timestamps.earliest.isoformat()} and "
            f"{timestamps.latest.isoformat()} on this database.",
            detail=[{"loc": ["body", "created_at"], "msg": "out of range", "type": "value_error"}],
        )
    return created_at


def _usage(request: InsertRequest, policy: InsertPolicy) -> tuple[int, int, Decimal]:
    """Tokens and price: given values win, then estimation (when on), then 0."""
    estimate = policy.token_estimation_enabled
    message_tokens = request.message_tokens
    if message_tokens is None:
        message_tokens = pricing.estimate_tokens(request.query) if estimate else 0
    answer_tokens = request.answer_tokens
    if answer_tokens is None:
        answer_tokens = pricing.estimate_tokens(request.answer) if estimate else 0
    total_price = request.total_price
    if total_price is None:
        total_price = pricing.price(message_tokens + answer_tokens, policy.price_per_1000_tokens)
    if total_price > MAX_PRICE:
        raise InvalidInput(
            "The computed total_price is too large to store.",
            detail=[{"loc": ["body", "total_price"], "msg": "out of range", "type": "value_error"}],
        )
    return message_tokens, answer_tokens, total_price


def _conversation_row(
    request: InsertRequest, conversation_id: str, created_at: datetime
) -> dict[str, Any]:
    """A new conversation, born with its first message already counted."""
    name = request.conversation_name
    if name is None:
        name = f"Conversation {created_at:%Y%m%d_%H%M%S}"
    return {
        "id": conversation_id,
        "app_id": request.app_id,
        "name": name,
        "status": "normal",
        "inputs": request.inputs,
        "from_end_user_id": request.user_id,
        "from_source": "api",
        "dialogue_count": 1,
        "created_at": created_at,
        "updated_at": created_at,
    }


def _message_row(
    request: InsertRequest, conversation_id: str, created_at: datetime, policy: InsertPolicy
) -> dict[str, Any]:
    message_tokens, answer_tokens, total_price = _usage(request, policy)
    return {
        "id": new_id(),
        "conversation_id": conversation_id,
        "app_id": request.app_id,
        "model_provider": request.model_provider or policy.default_model_provider,
        "model_id": request.model_id or policy.default_model_id,
        "inputs": request.inputs,
        "query": request.query,
        "message": {"content": request.query},
        "message_tokens": message_tokens,
        "answer": request.answer,
        "answer_tokens": answer_tokens,
        "provider_response_latency": request.latency,
        "total_price": total_price,
        "currency": request.currency or policy.currency,
        "status": "normal",
        "error": None,
        "message_metadata": request.metadata,
        "client_message_id": request.client_message_id,
        "created_at": created_at,
        "updated_at": created_at,
    }


def _file_rows(
    request: InsertRequest, message_id: str, created_at: datetime
) -> list[dict[str, Any]]:
    return [
        {
            "id": new_id(),
            "message_id": message_id,
            "type": file.type.value,
            "transfer_method": file.transfer_method.value,
            "url": file.url,
            "belongs_to": file.belongs_to.value,
            "upload_file_id": file.upload_file_id,
            "created_by_role": CREATED_BY_ROLE[file.belongs_to],
            "created_by": request.user_id,
            "created_at": created_at,
        }
        for file in request.files
    ]


STATEMENT_HEADROOM_BYTES = 64 * 1024  # column names, keywords and the other values


def _check_fits(connection: AsyncConnection, message: dict[str, Any]) -> None:
    """Refuse, as too large, a message the database would drop the connection over."""
    max_statement_bytes = repository.max_statement_bytes(connection)
    if max_statement_bytes is None:
        return
    size = repository.mysql_literal_bytes(message) + STATEMENT_HEADROOM_BYTES
    if size > max_statement_bytes:
        raise RecordTooLarge(
            "The record is too large for this database: its statement would be about "
            f"{size} bytes, over the server's max_allowed_packet of {max_statement_bytes}.",
            detail={"statement_bytes": size, "max_allowed_packet": max_statement_bytes},
        )


async def _claim_conversation(
    connection: AsyncConnection, request: InsertRequest, row: dict[str, Any]
) -> bool:
    """Create the conversation or lock the existing one; return whether it was created.

    Raises ``OwnershipConflict`` when it exists for another app or end user.
    """
    if await repository.insert_ignoring_duplicates(connection, conversations, [row]):
        return True
    owner = await repository.lock_conversation_owner(connection, row["id"])
    if owner is None:  # only if someone deleted it between the two statements
        raise NotFound("The conversation was deleted while this message was being written.")
    if owner.app_id != request.app_id or owner.from_end_user_id != request.user_id:
        raise OwnershipConflict(
            "conversation_id already exists for another app_id or user_id.",
            detail={"conversation_id": row["id"]},
        )
    return False


async def _replayed_message_id(
    connection: AsyncConnection, request: InsertRequest, conversation_id: str
) -> str:
    """The id of the message stored earlier under the same client_message_id."""
    assert request.client_message_id is not None  # only keyed messages can be duplicates
    existing = await repository.find_message_by_client_id(
        connection, conversation_id, request.client_message_id
    )
    if existing is None:
        raise AssertionError("a duplicate message key without a stored message")
    if existing.query != request.query or existing.answer != request.answer:
        raise IdempotencyConflict(
            "client_message_id was already used in this conversation for another query or answer.",
            detail={"conversation_id": conversation_id, "message_id": existing.id},
        )
    return str(existing.id)


async def insert_message(
    connection: AsyncConnection, request: InsertRequest, policy: InsertPolicy
) -> InsertOutcome:
    """Store one question/answer record: conversation (created or reused), message, files and
    the conversation's counters, all in the caller's transaction."""
    created_at = _created_at(request, policy.timestamps)
    conversation_id = request.conversation_id or new_id()
    message = _message_row(request, conversation_id, created_at, policy)
    _check_fits(connection, message)
    conversation_row = _conversation_row(request, conversation_id, created_at)
    conversation_created = await _claim_conversation(connection, request, conversation_row)
    if not await repository.insert_ignoring_duplicates(connection, messages, [message]):
        replayed_id = await _replayed_message_id(connection, request, conversation_id)
        return InsertOutcome(conversation_id, replayed_id, False, False)
    await repository.insert_files(connection, _file_rows(request, message["id"], created_at))
    if not conversation_created:
        await repository.count_new_messages(connection, conversation_id, 1, created_at)
    return InsertOutcome(conversation_id, message["id"], True, conversation_created)
