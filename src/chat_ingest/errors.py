"""Domain exceptions. Nothing here knows about HTTP: ``api/errors.py`` maps them to responses."""

from typing import Any


class ChatIngestError(Exception):
    """Base of every error the service raises on purpose."""

    def __init__(self, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class InvalidInput(ChatIngestError):
    """The request is malformed or breaks a field rule; nothing was written."""


class RecordTooLarge(ChatIngestError):
    """The record is larger than the database accepts in one statement."""


class NotFound(ChatIngestError):
    """The requested record does not exist (or is not visible to the caller)."""


class OwnershipConflict(ChatIngestError):
    """The conversation exists but belongs to another app or end user."""


class IdempotencyConflict(ChatIngestError):
    """The client_message_id was already used for a message with other content."""


class ConcurrentChange(ChatIngestError):
    """Another transaction created a row this one was about to create; run it again."""


class DatabaseUnavailable(ChatIngestError):
    """The database could not be reached or kept failing transiently; safe to retry later."""


class ServiceBusy(ChatIngestError):
    """Too much work is already waiting (or the service is stopping); safe to retry later."""


class Unauthenticated(ChatIngestError):
    """No API key, or one that is unknown or revoked, while access control is on."""


class Forbidden(ChatIngestError):
    """The API key is valid but not scoped to the app it tried to use."""


class UnsupportedMediaType(ChatIngestError):
    """The body is not in the one format the service reads: uncompressed JSON, labelled so."""


class DifySchemaMismatch(ChatIngestError):
    """``TABLE_LAYOUT=dify`` on a database that lacks a table or column the layout needs."""
