"""Pure ASGI middleware (cheaper per request than Starlette's BaseHTTPMiddleware)."""

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("chat_ingest.access")
REQUEST_ID_HEADER = b"x-request-id"
_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class BodyTooLarge(Exception):
    """The request body passed the configured limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body is larger than {limit} bytes.")
        self.limit = limit


def _incoming_request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            candidate = value.decode("latin-1")
            if _ACCEPTABLE_REQUEST_ID.match(candidate):
                return str(candidate)
    return uuid.uuid4().hex


def request_id_of(scope: Scope) -> str:
    return str(scope.get("state", {}).get("request_id", ""))


class RequestContextMiddleware:
    """Gives every request an id (echoing a sane ``X-Request-ID``), puts it on every response,
    caps the body at ``max_body_bytes`` and logs one line per request."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER, request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, self._limited(scope, receive), send_with_id)
        finally:
            self._log(scope, request_id, status, time.perf_counter() - started)

    def _limited(self, scope: Scope, receive: Receive) -> Receive:
        limit = self.max_body_bytes
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:

                async def refuse() -> Message:
                    raise BodyTooLarge(limit)

                return refuse
        return receive_within_limit

    @staticmethod
    def _log(scope: Scope, request_id: str, status: int, seconds: float) -> None:
        route: Any = scope.get("route")
        log.info(
            "request",
            extra={
                "request_id": request_id,
                "method": scope["method"],
                "route": getattr(route, "path", "unmatched"),
                "status": status,
                "latency_ms": round(seconds * 1000, 2),
            },
        )
