"""RequestContextMiddleware on a bare ASGI app: stalled and trickling bodies, clients that
leave mid-body, unexpected errors."""

import asyncio
import logging
from typing import Any

import pytest
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from chat_ingest import metrics
from chat_ingest.api.middleware import BodyTimeout, RequestContextMiddleware

pytestmark = pytest.mark.asyncio
SCOPE: Scope = {"type": "http", "method": "POST", "path": "/", "headers": []}


async def _call(app: Any, receive: Receive, body_timeout: float = 5.0) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    wrapped = RequestContextMiddleware(app, max_body_bytes=1000, body_timeout=body_timeout)
    await wrapped(dict(SCOPE), receive, send)
    return sent


async def test_stalled_body_raises_body_timeout() -> None:
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

    sent = await _call(app, never, body_timeout=0.05)
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


async def test_a_trickling_body_meets_one_deadline_for_the_whole_body() -> None:
    """Each chunk arrives well within the timeout, the body as a whole does not."""
    seen: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await Request(scope, receive).body()
        except BodyTimeout as exc:
            seen.append(exc)
            raise

    async def one_byte_at_a_time() -> Message:
        await asyncio.sleep(0.05)
        return {"type": "http.request", "body": b"x", "more_body": True}

    started = asyncio.get_running_loop().time()
    await _call(app, one_byte_at_a_time, body_timeout=0.3)
    assert len(seen) == 1
    assert asyncio.get_running_loop().time() - started < 1.0


async def test_a_client_gone_mid_body_is_499_without_an_error_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await Request(scope, receive).body()

    messages = iter(
        [
            {"type": "http.request", "body": b"{", "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> Message:
        return next(messages)

    counted = metrics.HTTP_REQUESTS.labels("POST", "unmatched", "499")
    before = counted._value.get()
    with caplog.at_level(logging.INFO):
        sent = await _call(app, receive)
    assert sent == []  # nobody to answer
    assert counted._value.get() == before + 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert [r for r in caplog.records if getattr(r, "status", None) == 499]
