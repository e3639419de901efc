"""The one table that turns exceptions into SPEC's JSON error bodies and status codes.

Anything not listed here is unexpected: ``RequestContextMiddleware`` logs it and answers a
bare 500.
"""

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from chat_ingest.api.middleware import BodyTimeout, BodyTooLarge
from chat_ingest.api.ratelimit import RateLimitExceeded
from chat_ingest.errors import (
    ChatIngestError,
    DatabaseUnavailable,
    Forbidden,
    IdempotencyConflict,
    InvalidInput,
    NotFound,
    OwnershipConflict,
    RecordTooLarge,
    ServiceBusy,
    Unauthenticated,
    UnsupportedMediaType,
)

RETRY_AFTER_SECONDS = "2"

STATUS_OF: dict[type[ChatIngestError], int] = {
    InvalidInput: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    OwnershipConflict: 409,
    IdempotencyConflict: 409,
    RecordTooLarge: 413,
    UnsupportedMediaType: 415,
    DatabaseUnavailable: 503,
    ServiceBusy: 503,
}
HEADERS_OF_STATUS: dict[int, dict[str, str]] = {
    401: {"WWW-Authenticate": "Bearer"},
    503: {"Retry-After": RETRY_AFTER_SECONDS},
}


def error_response(
    status: int, message: str, detail: Any = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {"success": False, "error": message, "detail": detail}
    return JSONResponse(body, status_code=status, headers=headers)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ChatIngestError)
    status = STATUS_OF.get(type(exc), 500)
    return error_response(status, exc.message, exc.detail, HEADERS_OF_STATUS.get(status))


async def _request_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
        for error in exc.errors()
    ]
    where = ".".join(str(part) for part in details[0]["loc"]) if details else "request"
    message = details[0]["msg"] if details else "invalid"
    return error_response(400, f"Invalid request: {where}: {message}.", details)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = {404: "Not found.", 405: "Method not allowed."}.get(exc.status_code, str(exc.detail))
    return error_response(exc.status_code, message, headers=exc.headers)


async def _body_too_large(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BodyTooLarge)
    return Response(exc.body(), status_code=413, media_type="application/json")


async def _rate_limited(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimitExceeded)
    return error_response(429, str(exc), headers=exc.headers)


async def _body_timeout(request: Request, exc: Exception) -> JSONResponse:
    return error_response(408, str(exc))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ChatIngestError, _domain_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(BodyTooLarge, _body_too_large)
    app.add_exception_handler(BodyTimeout, _body_timeout)
    app.add_exception_handler(RateLimitExceeded, _rate_limited)
