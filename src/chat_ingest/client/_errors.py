"""The client's exception hierarchy: one class per status the service answers."""

import email.utils
from datetime import UTC, datetime
from typing import Any

import httpx


class ChatIngestError(Exception):
    """Base of every error the client raises.

    ``status`` is the HTTP status (None when no response arrived), ``error`` the service's
    one-sentence explanation, ``detail`` its machine-readable detail (for a 400, a list of
    ``{loc, msg, type}``), ``request_id`` the ``X-Request-ID`` to quote in a bug report.
    """

    retryable = False

    def __init__(
        self,
        error: str,
        *,
        status: int | None = None,
        detail: Any = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(error if status is None else f"{status}: {error}")
        self.error = error
        self.status = status
        self.detail = detail
        self.request_id = request_id
        self.retry_after = retry_after


class ValidationError(ChatIngestError):
    """400: the request was invalid; nothing was written."""


class AuthenticationError(ChatIngestError):
    """401: missing or unknown API key."""


class PermissionDeniedError(ChatIngestError):
    """403: the API key may not act on this app."""


class NotFoundError(ChatIngestError):
    """404: no such conversation (or not visible to this key)."""


class ConflictError(ChatIngestError):
    """409: the conversation belongs to another app or user, or the client_message_id was
    used for other content."""


class PayloadTooLargeError(ChatIngestError):
    """413: the body is larger than the service accepts."""


class RateLimitedError(ChatIngestError):
    """429: too many requests; retried after ``Retry-After``."""

    retryable = True


class ServerError(ChatIngestError):
    """A 5xx other than 503."""


class ServiceUnavailableError(ServerError):
    """503: the database is unavailable; retried after ``Retry-After``."""

    retryable = True


class TransportError(ChatIngestError):
    """No response: connection refused or reset, timeout, connection closed mid-request."""

    retryable = True


_ERROR_OF_STATUS: dict[int, type[ChatIngestError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    429: RateLimitedError,
    503: ServiceUnavailableError,
}


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds, given as a number of seconds or an HTTP date."""
    if value is None:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_from_response(response: httpx.Response) -> ChatIngestError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    status = response.status_code
    default = ServerError if status >= 500 else ChatIngestError
    error_class = _ERROR_OF_STATUS.get(status, default)
    return error_class(
        str(body.get("error") or response.reason_phrase or "HTTP error"),
        status=status,
        detail=body.get("detail"),
        request_id=response.headers.get("x-request-id"),
        retry_after=_retry_after(response.headers.get("retry-after")),
    )


def error_from_transport(exc: httpx.TransportError) -> TransportError:
    return TransportError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
