"""What the sync and async clients share: each API call as data, and the retry policy.

Both clients only differ in how they send a ``Call`` and how they sleep.
"""

import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic_core import to_jsonable_python

from chat_ingest.client._errors import ChatIngestError, error_from_response
from chat_ingest.client._models import (
    BatchResult,
    Conversation,
    ConversationPage,
    InsertResult,
    MessagePage,
)
from chat_ingest.ids import new_id

R = TypeVar("R")
MAX_RETRY_DELAY_SECONDS = 30.0


@dataclass(frozen=True)
class Call(Generic[R]):
    """One HTTP exchange: what to send and how to read a successful answer."""

    method: str
    path: str
    parse: Callable[[Any], R]
    json: Any = None
    params: Mapping[str, Any] | None = None

    def result(self, response: httpx.Response) -> R:
        """The parsed result of a 2xx response; the matching ``ChatIngestError`` otherwise."""
        if not response.is_success:
            raise error_from_response(response)
        return self.parse(response.json())


def prepared_insert(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The insert body, with the ids that make it safe to send more than once.

    A ``client_message_id`` makes a resent message a replay instead of a duplicate; a
    ``conversation_id`` chosen here makes a resent first message land in the same new
    conversation instead of starting another one.
    """
    body = {name: value for name, value in fields.items() if value is not None}
    body.setdefault("conversation_id", new_id())
    body.setdefault("client_message_id", new_id())
    return dict(to_jsonable_python(body))


def insert(fields: Mapping[str, Any]) -> Call[InsertResult]:
    body = prepared_insert(fields)
    return Call("POST", "/api/chat/insert", InsertResult.model_validate, json=body)


def insert_batch(items: Iterable[Mapping[str, Any]]) -> Call[BatchResult]:
    body = {"items": [prepared_insert(item) for item in items]}
    return Call("POST", "/api/chat/insert/batch", BatchResult.model_validate, json=body)


def _conversation_path(conversation_id: str) -> str:
    return f"/api/chat/{quote(conversation_id, safe='')}"


def get_conversation(conversation_id: str) -> Call[Conversation]:
    return Call("GET", _conversation_path(conversation_id), Conversation.model_validate)


def _page_params(limit: int, cursor: str | None, **filters: str | None) -> dict[str, Any]:
    params = {"limit": limit, "cursor": cursor, **filters}
    return {name: value for name, value in params.items() if value is not None}


def list_messages(conversation_id: str, limit: int, cursor: str | None) -> Call[MessagePage]:
    path = f"{_conversation_path(conversation_id)}/messages"
    return Call("GET", path, MessagePage.model_validate, params=_page_params(limit, cursor))


def list_conversations(
    app_id: str, user_id: str | None, limit: int, cursor: str | None
) -> Call[ConversationPage]:
    params = _page_params(limit, cursor, app_id=app_id, user_id=user_id)
    return Call("GET", "/api/chat/conversations", ConversationPage.model_validate, params=params)


@dataclass(frozen=True)
class RetryPolicy:
    """Up to ``max_retries`` retries of errors that may pass (no response, 429, 503).

    The wait is the service's ``Retry-After`` when it gives one, else exponential backoff
    with jitter: ``backoff * 2**attempt`` scaled by a random 50-100%, so that many clients
    cut off together do not come back together.
    """

    max_retries: int
    backoff: float

    def delay(self, attempt: int, error: ChatIngestError) -> float | None:
        """Seconds to wait before retry number ``attempt + 1``; None to give up."""
        if not error.retryable or attempt >= self.max_retries:
            return None
        if error.retry_after is not None:
            return min(error.retry_after, MAX_RETRY_DELAY_SECONDS)
        exponential = self.backoff * 2.0**attempt * random.uniform(0.5, 1.0)
        return min(exponential, MAX_RETRY_DELAY_SECONDS)


def headers(api_key: str | None) -> dict[str, str]:
    return {} if api_key is None else {"Authorization": f"Bearer {api_key}"}
