"""The asyncio client: the same calls as ``ChatIngestClient``, awaited."""

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from chat_ingest.client import _calls
from chat_ingest.client._calls import Call, RetryPolicy
from chat_ingest.client._errors import ChatIngestError, error_from_transport
from chat_ingest.client._models import (
    BatchResult,
    Conversation,
    ConversationPage,
    InsertResult,
    Message,
    MessagePage,
)

R = TypeVar("R")


class AsyncChatIngestClient:
    """The asyncio twin of ``ChatIngestClient``; see its methods for what they do.

    ``transport`` replaces httpx's network transport (for tests).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        backoff: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url, timeout=timeout, headers=_calls.headers(api_key), transport=transport
        )
        self._retry = RetryPolicy(max_retries, backoff)

    async def _send(self, call: Call[R]) -> R:
        for attempt in itertools.count():
            try:
                response = await self._http.request(
                    call.method, call.path, json=call.json, params=call.params
                )
                return call.result(response)
            except httpx.TransportError as exc:
                error: ChatIngestError = error_from_transport(exc)
            except ChatIngestError as exc:
                error = exc
            delay = self._retry.delay(attempt, error)
            if delay is None:
                raise error
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def insert(self, **fields: Any) -> InsertResult:
        """Insert one record (keyword arguments named as the insert body's fields).

        A ``client_message_id`` (and, for a new conversation, a ``conversation_id``) is
        generated when not given, and every retry resends the same body: a retried insert
        can never store the message twice.
        """
        return await self._send(_calls.insert(fields))

    async def insert_batch(self, items: Iterable[Mapping[str, Any]]) -> BatchResult:
        """Insert many records in one request (ids filled in per item as for ``insert``)."""
        return await self._send(_calls.insert_batch(items))

    async def get_conversation(self, conversation_id: str) -> Conversation:
        return await self._send(_calls.get_conversation(conversation_id))

    async def list_messages(
        self, conversation_id: str, *, limit: int = 20, cursor: str | None = None
    ) -> MessagePage:
        return await self._send(_calls.list_messages(conversation_id, limit, cursor))

    async def iter_messages(
        self, conversation_id: str, *, page_size: int = 100
    ) -> AsyncIterator[Message]:
        """Every message of the conversation, oldest first, fetching page after page."""
        cursor = None
        while True:
            page = await self.list_messages(conversation_id, limit=page_size, cursor=cursor)
            for message in page.data:
                yield message
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def list_conversations(
        self,
        app_id: str,
        *,
        user_id: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> ConversationPage:
        return await self._send(_calls.list_conversations(app_id, user_id, limit, cursor))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
