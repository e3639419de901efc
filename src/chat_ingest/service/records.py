"""Turning one validated request into the rows it stores.

Everything here is pure: per-record rules that can reject a record (created_at range,
price range, size) run before any SQL, so a rejected record never touches the database.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from chat_ingest import pricing, repository
from chat_ingest.db.engine import TimestampRange
from chat_ingest.errors import InvalidInput, RecordTooLarge
from chat_ingest.ids import new_id
from chat_ingest.schemas import MAX_PRICE, BelongsTo, InsertRequest, utc_timestamp

CREATED_BY_ROLE = {
    BelongsTo.user: "end_user",
    BelongsTo.assistant: "assistant",
    BelongsTo.system: "system",
}
STATEMENT_HEADROOM_BYTES = 64 * 1024  # column names, keywords and the other values


@dataclass(frozen=True)
class InsertPolicy:
    """The settings that shape a stored message, passed in by the edge that read them."""

    default_model_provider: str
    default_model_id: str
    currency: str
    token_estimation_enabled: bool
    price_per_1000_tokens: Decimal
    timestamps: TimestampRange


@dataclass
class Record:
    """One request, planned: the ids it will use and the rows it would write."""

    request: InsertRequest
    conversation_id: str
    conversation_id_given: bool
    created_at: datetime
    message: dict[str, Any]

    @property
    def owner(self) -> tuple[str, str]:
        return (self.request.app_id, self.request.user_id)

    @property
    def key(self) -> tuple[str, str] | None:
        """The idempotency key, when the caller gave one."""
        client_message_id = self.request.client_message_id
        return None if client_message_id is None else (self.conversation_id, client_message_id)

    def same_content(self, query: str, answer: str) -> bool:
        return (self.request.query, self.request.answer) == (query, answer)

    def conversation_row(self, dialogue_count: int, updated_at: datetime) -> dict[str, Any]:
        """The conversation this record starts, already counting its messages."""
        name = self.request.conversation_name
        if name is None:
            name = f"Conversation {self.created_at:%Y%m%d_%H%M%S}"
        return {
            "id": self.conversation_id,
            "app_id": self.request.app_id,
            "name": name,
            "status": "normal",
            "inputs": self.request.inputs,
            "from_end_user_id": self.request.user_id,
            "from_source": "api",
            "dialogue_count": dialogue_count,
            "created_at": self.created_at,
            "updated_at": updated_at,
        }

    def file_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "id": new_id(),
                "message_id": self.message["id"],
                "type": file.type.value,
                "transfer_method": file.transfer_method.value,
                "url": file.url,
                "belongs_to": file.belongs_to.value,
                "upload_file_id": file.upload_file_id,
                "created_by_role": CREATED_BY_ROLE[file.belongs_to],
                "created_by": self.request.user_id,
                "created_at": self.created_at,
            }
            for file in self.request.files
        ]


def plan_record(
    request: InsertRequest, policy: InsertPolicy, max_statement_bytes: int | None
) -> Record:
    """Plan ``request``'s rows; raise a domain error if this record cannot be stored."""
    created_at = _created_at(request, policy.timestamps)
    conversation_id = request.conversation_id or new_id()
    message = _message_row(request, conversation_id, created_at, policy)
    _check_fits(message, max_statement_bytes)
    return Record(
        request, conversation_id, request.conversation_id is not None, created_at, message
    )


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


def _check_fits(message: dict[str, Any], max_statement_bytes: int | None) -> None:
    """Refuse, as too large, a message the database would drop the connection over.

    The exact size costs an encode per value, so it is only worked out for the rare message
    whose cheap upper bound (8 bytes a character: 4 in UTF-8, doubled by escaping) is close."""
    if max_statement_bytes is None:
        return
    characters = len(message["query"]) * 2 + len(message["answer"])  # query is also in message
    documents = len(orjson.dumps(message["inputs"])) + len(
        orjson.dumps(message["message_metadata"])
    )
    if 8 * characters + 2 * documents + 2 * STATEMENT_HEADROOM_BYTES < max_statement_bytes:
        return
    size = repository.mysql_literal_bytes(message) + STATEMENT_HEADROOM_BYTES
    if size > max_statement_bytes:
        raise RecordTooLarge(
            "The record is too large for this database: its statement would be about "
            f"{size} bytes, over the server's max_allowed_packet of {max_statement_bytes}.",
            detail={"statement_bytes": size, "max_allowed_packet": max_statement_bytes},
        )
