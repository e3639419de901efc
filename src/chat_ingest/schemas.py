"""Wire models (pydantic v2) for requests and responses.

Validation here is the guard that keeps bad input a 400: every value that reaches the
database fits its column on every backend (lengths, numeric ranges, JSON depth, no NUL
characters or lone surrogates).
"""

import math
import re
import uuid
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    StringConstraints,
    ValidationError,
)
from pydantic_core import ErrorDetails, from_json

from chat_ingest.errors import InvalidInput

RESERVED_CONVERSATION_IDS = frozenset({"health", "ready", "conversations"})
CONVERSATION_ID_PATTERN = r"^[A-Za-z0-9_-]{1,36}$"
MAX_JSON_DEPTH = 30  # MariaDB's JSON check refuses documents nested 32 levels deep.
INT32_MAX = 2**31 - 1
INT64_RANGE = (-(2**63), 2**64 - 1)
MAX_LATENCY_SECONDS = Decimal("9999999.999")  # DECIMAL(10,3)
MAX_PRICE = Decimal("999999999999.999999")  # DECIMAL(18,6)


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def check_storable_text(value: str) -> str:
    """Refuse text that some backend cannot store: NUL (PostgreSQL) and lone surrogates."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return value
    if found.group() == "\x00":
        raise ValueError("must not contain the NUL character")
    raise ValueError("must be valid Unicode text (no lone surrogates)")


def _check_json_value(value: Any, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"must not be nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        check_storable_text(value)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not INT64_RANGE[0] <= value <= INT64_RANGE[1]:
            raise ValueError("integers must fit in 64 bits")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("numbers must be finite")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_storable_text(key)
            _check_json_value(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json_value(item, depth + 1)


def check_json_object(value: dict[str, Any]) -> dict[str, Any]:
    _check_json_value(value, 1)
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _trimmed(value: str) -> str:
    """Identifiers may not start or end with whitespace: MySQL compares ``'k'`` and ``'k '`` as
    equal (PAD SPACE collations), so such ids would collide there and not elsewhere."""
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    return value


def check_identifier(value: str) -> str:
    """The rule for app, user and message ids wherever they arrive (bodies, query parameters,
    key scopes): storable, not blank, no leading or trailing whitespace."""
    return _trimmed(_not_blank(check_storable_text(value)))


def _file_location(value: str) -> str:
    """An http(s) URL or an absolute path; ``//host/x`` (and ``/\\host/x``, which browsers
    read the same way) is a URL to another host without a scheme, not a path."""
    is_path = value.startswith("/") and not value.startswith(("//", "/\\"))
    if not (value.startswith(("http://", "https://")) or is_path):
        raise ValueError("must be an http(s) URL or an absolute path")
    return value


def _as_utc(value: datetime) -> datetime:
    try:
        return utc_timestamp(value)
    except OverflowError:
        raise ValueError("is out of the supported range once converted to UTC") from None


def _not_reserved(value: str) -> str:
    if value in RESERVED_CONVERSATION_IDS:
        raise ValueError(f"'{value}' is a reserved word and cannot be a conversation_id")
    return value


StorableText = Annotated[str, Strict(), AfterValidator(check_storable_text)]
Count = Annotated[int, Strict(), Field(ge=0, le=INT32_MAX)]
RequiredText = Annotated[StorableText, AfterValidator(_not_blank)]
Identifier = Annotated[str, Strict(), AfterValidator(check_identifier)]
JsonObject = Annotated[dict[str, Any], AfterValidator(check_json_object)]


def _without_negative_zero(value: Decimal) -> Decimal:
    """``-0`` is stored as ``0`` on MySQL and PostgreSQL; make SQLite agree."""
    return value + 0


def _as_latency(raw: float) -> Decimal:
    quantized = Decimal(str(raw)).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    return _without_negative_zero(quantized)


def _check_latency(metadata: dict[str, Any]) -> dict[str, Any]:
    """``metadata.latency`` fills provider_response_latency, a DECIMAL(10,3) of seconds."""
    raw = metadata.get("latency")
    if raw is None:
        return metadata
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError("metadata.latency must be a number of seconds")
    if not 0 <= raw < MAX_LATENCY_SECONDS + 1 or _as_latency(raw) > MAX_LATENCY_SECONDS:
        raise ValueError(f"metadata.latency must be between 0 and {MAX_LATENCY_SECONDS} seconds")
    return metadata


Metadata = Annotated[JsonObject, AfterValidator(_check_latency)]


def _canonical_uuid(value: str) -> str:
    """A UUID in its 36-character hyphenated form, lower case (how ids are stored)."""
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise ValueError("must be a UUID such as 0190c6a2-5b1e-7c3d-9f00-1234567890ab") from None
    if len(value) != 36:
        raise ValueError("must be a UUID in its 36-character form")
    return str(parsed)


MessageId = Annotated[str, Strict(), AfterValidator(_canonical_uuid)]
ConversationId = Annotated[
    str, Strict(), StringConstraints(pattern=CONVERSATION_ID_PATTERN), AfterValidator(_not_reserved)
]


class FileType(StrEnum):
    document = "document"
    image = "image"
    audio = "audio"
    video = "video"
    other = "other"


class TransferMethod(StrEnum):
    local_file = "local_file"
    remote_url = "remote_url"


class BelongsTo(StrEnum):
    user = "user"
    assistant = "assistant"
    system = "system"


class _Body(BaseModel):
    """Unknown fields are ignored. Strings and integers are strict (no 5 for "5", no "5" or
    true for 5), per field rather than model-wide so that validating an already parsed JSON
    object (a batch item) gives exactly the same verdict as validating JSON text."""

    model_config = ConfigDict(extra="ignore")


class FileIn(_Body):
    type: FileType = FileType.document
    transfer_method: TransferMethod = TransferMethod.local_file
    url: Annotated[
        RequiredText, Field(min_length=1, max_length=2048), AfterValidator(_file_location)
    ]
    belongs_to: BelongsTo = BelongsTo.user
    upload_file_id: Annotated[StorableText, Field(max_length=128)] | None = None


class InsertRequest(_Body):
    """One question/answer record, as POSTed to /api/chat/insert."""

    app_id: Annotated[Identifier, Field(min_length=1, max_length=64)]
    user_id: Annotated[Identifier, Field(min_length=1, max_length=64)]
    query: Annotated[RequiredText, Field(min_length=1)]
    answer: Annotated[RequiredText, Field(min_length=1)]
    model_provider: Annotated[RequiredText, Field(max_length=64)] | None = None
    model_id: Annotated[RequiredText, Field(max_length=128)] | None = None
    conversation_id: ConversationId | None = None
    client_message_id: Annotated[Identifier, Field(min_length=1, max_length=64)] | None = None
    message_id: MessageId | None = None
    conversation_name: Annotated[StorableText, Field(max_length=255)] | None = None
    files: Annotated[list[FileIn], Field(max_length=100)] = Field(default_factory=list)
    inputs: JsonObject = Field(default_factory=dict)
    metadata: Metadata = Field(default_factory=dict)
    created_at: Annotated[datetime, AfterValidator(_as_utc)] | None = None
    message_tokens: Count | None = None
    answer_tokens: Count | None = None
    total_price: (
        Annotated[
            Decimal,
            Field(ge=0, le=MAX_PRICE, allow_inf_nan=False),
            AfterValidator(_without_negative_zero),
        ]
        | None
    ) = None
    currency: Annotated[RequiredText, Field(max_length=8)] | None = None

    @property
    def latency(self) -> Decimal:
        """``metadata.latency`` (already checked) as a DECIMAL(10,3) value; 0 when absent."""
        raw = self.metadata.get("latency")
        return Decimal(0) if raw is None else _as_latency(raw)


def utc_timestamp(value: datetime | None) -> datetime:
    """An aware UTC datetime at whole-second precision (the DDL's TIMESTAMP); naive means UTC."""
    if value is None:
        value = datetime.now(UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0)


class InsertResult(BaseModel):
    success: bool = True
    conversation_id: str
    message_id: str
    error: str | None = None
    created: bool
    conversation_created: bool


class ConversationOut(BaseModel):
    id: str
    app_id: str
    name: str
    status: str
    inputs: dict[str, Any]
    from_end_user_id: str | None
    from_source: str
    dialogue_count: int
    created_at: datetime
    updated_at: datetime


class FileOut(BaseModel):
    id: str
    message_id: str
    type: str
    transfer_method: str
    url: str | None
    belongs_to: str | None
    upload_file_id: str | None
    created_by_role: str
    created_by: str
    created_at: datetime


# Decimals in JSON as plain digits: str() would give "0E-7" for a zero numeric(10,7) (Dify's
# total_price) and "1E-7" for its smallest price, which people and some clients misread.
PlainDecimal = Annotated[
    Decimal, PlainSerializer(lambda value: f"{value:f}", return_type=str, when_used="json")
]


class MessageOut(BaseModel):
    """A stored message with the DDL's column names. Decimals are JSON strings (exact)."""

    id: str
    conversation_id: str
    app_id: str
    model_provider: str | None
    model_id: str | None
    inputs: dict[str, Any]
    query: str
    message: dict[str, Any] | list[Any] | str | None
    message_tokens: int
    answer: str
    answer_tokens: int
    provider_response_latency: PlainDecimal
    total_price: PlainDecimal | None
    currency: str
    status: str
    error: str | None
    message_metadata: dict[str, Any] | None
    client_message_id: str | None
    created_at: datetime
    updated_at: datetime
    files: list[FileOut]


Item = TypeVar("Item", bound=BaseModel)


class Page(BaseModel, Generic[Item]):
    """One page of a listing; pass ``next_cursor`` back to get the next one."""

    data: list[Item]
    has_more: bool
    next_cursor: str | None


class HealthOut(BaseModel):
    status: str
    service: str


class ReadyOut(BaseModel):
    status: str
    database: str


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorOut(BaseModel):
    success: bool = False
    error: str
    detail: Any = None


class BatchRequest(BaseModel):
    """POST /api/chat/insert/batch (documentation model). Each item is an ``InsertRequest``
    judged on its own: an invalid item fails alone (status 400 in its result), so the schema
    only asks for objects."""

    items: list[dict[str, Any]] = Field(
        min_length=1,
        description="Insert bodies (see InsertRequest), 1 to MAX_BATCH_ITEMS; each is "
        "validated and stored on its own terms.",
    )


class BatchItemResult(BaseModel):
    index: int
    success: bool
    status: int
    conversation_id: str | None = None
    message_id: str | None = None
    created: bool = False
    error: str | None = None


class BatchResult(BaseModel):
    success: bool = True
    inserted: int
    duplicates: int
    failed: int
    results: list[BatchItemResult]


def problems(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[dict[str, Any]]:
    """pydantic errors as ``{loc, msg, type}``, without echoing the offending input back."""
    return [
        {"loc": [*prefix, *error["loc"]], "msg": _message(error), "type": error["type"]}
        for error in exc.errors()
    ]


def _message(error: ErrorDetails) -> str:
    """pydantic's message, except that a length checked after a custom validator reads "items";
    for text it is characters."""
    context = error.get("ctx") or {}
    if error["type"] == "too_long" and isinstance(error.get("input"), str):
        return f"String should have at most {context['max_length']} characters"
    if error["type"] == "too_short" and isinstance(error.get("input"), str):
        return f"String should have at least {context['min_length']} characters"
    return error["msg"]


def _invalid(details: list[dict[str, Any]], what: str, skip: int) -> InvalidInput:
    first = details[0]
    where = ".".join(str(part) for part in first["loc"][skip:]) or "body"
    return InvalidInput(f"Invalid {what}: {where}: {first['msg']}.", detail=details)


def parse_insert(body: bytes) -> InsertRequest:
    """Validate a JSON body in one pass; any problem is an ``InvalidInput``."""
    try:
        return InsertRequest.model_validate_json(body)
    except ValidationError as exc:
        raise _invalid(problems(exc, ("body",)), "request body", 1) from None


def parse_insert_item(item: Any, index: int) -> InsertRequest:
    """Validate one already-parsed batch item (same verdicts as ``parse_insert``)."""
    try:
        return InsertRequest.model_validate(item)
    except ValidationError as exc:
        raise _invalid(problems(exc, ("body", "items", index)), "item", 3) from None


def parse_batch(body: bytes, max_items: int) -> list[Any]:
    """The raw items of a batch body; a malformed body or item count is an ``InvalidInput``."""
    try:
        document = from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        detail = [{"loc": ["body"], "msg": str(exc), "type": "json_invalid"}]
        raise InvalidInput("Invalid request body: not valid JSON.", detail=detail) from None
    items = document.get("items") if isinstance(document, dict) else None
    if not isinstance(items, list) or not 1 <= len(items) <= max_items:
        detail = [
            {
                "loc": ["body", "items"],
                "msg": f"must be a list of 1 to {max_items} insert bodies",
                "type": "value_error",
            }
        ]
        raise InvalidInput(
            f"Invalid request body: items must be a list of 1 to {max_items} insert bodies.",
            detail=detail,
        )
    return items
