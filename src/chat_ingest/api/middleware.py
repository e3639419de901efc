"""Pure ASGI middleware (cheaper per request than Starlette's BaseHTTPMiddleware)."""

import asyncio
import logging
import os
import re
import time
from typing import Any

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chat_ingest import metrics

log = logging.getLogger("chat_ingest.access")
REQUEST_ID_HEADER = b"x-request-id"
CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that left before the answer
_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_PLAIN_ROUTES = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
_INTERNAL_ERROR = orjson.dumps(
    {"success": False, "error": "Internal server error.", "detail": None}
)


class BodyTooLarge(Exception):
    """The request body passed the configured limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body is larger than {limit} bytes.")
        self.limit = limit

    def body(self) -> bytes:
        """The JSON error body (the same one ``api/errors.py`` sends)."""
        detail = {"max_body_bytes": self.limit}
        return orjson.dumps({"success": False, "error": str(self), "detail": detail})


class BodyTimeout(Exception):
    """The client did not send its whole body in time (a slow or stalled client)."""


def _incoming_request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            candidate = value.decode("latin-1")
            if _ACCEPTABLE_REQUEST_ID.match(candidate):
                return str(candidate)
    return os.urandom(16).hex()  # as random as uuid4().hex, without building a UUID


class RequestContextMiddleware:
    """Per request: an id (echoing a sane ``X-Request-ID``) on every response, a body capped
    at ``max_body_bytes`` and received whole within ``body_timeout`` seconds (one deadline for
    the whole body, so a client trickling a byte at a time cannot hold the request open), one
    log line, a 499 for a client that left mid-request, and a bare JSON 500 for anything
    unexpected (logged once, with the request id, never sent to the client)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, body_timeout: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope)
        id_header = (REQUEST_ID_HEADER, request_id.encode())
        started = time.perf_counter()
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = _rate_limit_headers(scope, message.get("headers", []))
                message["headers"] = [*message.get("headers", []), *extra, id_header]
            await send(message)

        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            # Refused before any route runs, so the limit holds for every route, GET included.
            too_large = BodyTooLarge(self.max_body_bytes)
            await _send_json(send_with_id, 413, too_large.body())
            self._finish(scope, request_id, 413, time.perf_counter() - started)
            return
        try:
            await self.app(scope, self._guarded(receive), send_with_id)
        except ClientDisconnect:
            # Nobody is left to answer: not a server error, and no traceback in the log.
            status = status or CLIENT_CLOSED_REQUEST
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id})
            if status is None:
                await _send_json(send_with_id, 500, _INTERNAL_ERROR)
        finally:
            self._finish(scope, request_id, status or 500, time.perf_counter() - started)

    def _guarded(self, receive: Receive) -> Receive:
        limit = self.max_body_bytes
        received = 0
        body_complete = False
        deadline = asyncio.get_running_loop().time() + self.body_timeout

        async def receive_guarded() -> Message:
            nonlocal received, body_complete
            if body_complete:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(
                    f"The request body was not received within {self.body_timeout:g} seconds."
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_complete = not message.get("more_body", False)
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        return receive_guarded

    @staticmethod
    def _finish(scope: Scope, request_id: str, status: int, seconds: float) -> None:
        """One access log line and the route's metrics. Labels and log fields are the route
        template, never the raw path or query string (which may carry ids or secrets)."""
        route_template = _route_template(scope)
        metrics.observe_request(scope["method"], route_template, status, seconds)
        state: dict[str, Any] = scope.get("state") or {}
        log.info(
            "request",
            extra={
                "request_id": request_id,
                "method": scope["method"],
                "route": route_template,
                "status": status,
                "latency_ms": round(seconds * 1000, 2),
                "app_id": state.get("app_id"),
                "key_id": state.get("key_id"),
            },
        )


def _route_template(scope: Scope) -> str:
    """The matched route's path template; FastAPI's own pages (/docs, /openapi.json) are plain
    Starlette routes that the router does not record in the scope, so their path is used."""
    route = scope.get("route")
    if route is not None:
        return str(route.path)
    path = str(scope.get("path", ""))
    return path if path in _PLAIN_ROUTES else "unmatched"


def _rate_limit_headers(
    scope: Scope, present: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """The ``RateLimit-*`` headers of a request that consumed budget, on whatever response it
    ends with (an error response is built afresh, without the route's headers)."""
    state: dict[str, Any] = scope.get("state") or {}
    headers: dict[str, str] = state.get("rate_limit_headers") or {}
    names = {name.lower() for name, _ in present}
    return [
        (name.lower().encode(), value.encode())
        for name, value in headers.items()
        if name.lower().encode() not in names
    ]


async def _send_json(send: Send, status: int, body: bytes) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
