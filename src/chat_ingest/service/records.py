"""Planning one validated request: its ids, timestamp and usage, before any transaction.

Everything here is pure: per-record rules that can reject a record (created_at range, price
range) run before any SQL, so a rejected record never touches the database. Ids are decided
here, outside the retried unit of work, so that a retry writes the same ids: UUIDv7 message
ids break ties between equal ``created_at`` in the order the records came.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from chat_ingest import pricing
from chat_ingest.db.engine import TimestampRange
from chat_ingest.errors import InvalidInput
from chat_ingest.ids import new_id
from chat_ingest.schemas import MAX_PRICE, InsertRequest, utc_timestamp
from chat_ingest.stores.base import PlannedRecord


@dataclass(frozen=True)
class InsertPolicy:
    """The settings that shape a stored message, passed in by the edge that read them."""

    default_model_provider: str
    default_model_id: str
    currency: str
    token_estimation_enabled: bool
    price_per_1000_tokens: Decimal
    timestamps: TimestampRange


def plan_record(request: InsertRequest, policy: InsertPolicy) -> PlannedRecord:
    """Plan ``request``; raise a domain error if this record cannot be stored."""
    created_at = _created_at(request, policy.timestamps)
    message_tokens, answer_tokens, total_price = _usage(request, policy)
    return PlannedRecord(
        request=request,
        conversation_id=request.conversation_id or new_id(),
        conversation_id_given=request.conversation_id is not None,
        message_id=request.message_id or new_id(),
        message_id_given=request.message_id is not None,
        created_at=created_at,
        model_provider=request.model_provider or policy.default_model_provider,
        model_id=request.model_id or policy.default_model_id,
        message_tokens=message_tokens,
        answer_tokens=answer_tokens,
        total_price=total_price,
        currency=request.currency or policy.currency,
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
