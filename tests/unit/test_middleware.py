"""RequestContextMiddleware on a bare ASGI app: stalled bodies and unexpected errors."""

import asyncio
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from chat_ingest.api import middleware
from chat_ingest.api.middleware import BodyTimeout, RequestContextMiddleware

pytestmark = pytest.mark.asyncio
SCOPE: Scope = {"type": "http", "method": "POST", "path": "/", "headers": []}


async def _call(app: Any, receive: Receive) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await RequestContextMiddleware(app, max_body_bytes=1000)(dict(SCOPE), receive, send)
    return sent


async def test_stalled_body_raises_body_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(middleware, "BODY_READ_TIMEOUT_SECONDS", 0.05)
    seen: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await receive()
        except BodyTimeout as exc:
            seen.append(exc)
            raise

    async def never() -> Message:
        await asyncio.sleep(10)
        return {"type": "http.disconnect"}

    sent = await _call(app, never)
    assert len(seen) == 1
    assert sent[0]["status"] == 500  # a bare app has no handler; the FastAPI app maps it to 408


async def test_unexpected_error_becomes_one_json_500_with_request_id() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("internals")

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    sent = await _call(app, receive)
    start, body = sent
    assert start["status"] == 500
    assert (b"x-request-id", start["headers"][-1][1]) == start["headers"][-1]
    assert body["body"] == b'{"success":false,"error":"Internal server error.","detail":null}'
