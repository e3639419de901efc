"""Opaque, signed page cursors for keyset pagination.

A cursor carries the last row's sort key ``(timestamp, id)``. It is signed with HMAC-SHA256
over the key *and* the listing it belongs to (a conversation's messages, or one app's and
user's conversations), so a cursor that was forged, altered or taken from another listing is
refused instead of being turned into SQL. Every instance signing with the same key can
continue a listing another instance started.
"""

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

_SIGNATURE_BYTES = 16
_MAX_CURSOR_CHARS = 512


class InvalidCursor(ValueError):
    """The cursor was not issued by this service for this listing."""


@dataclass(frozen=True)
class Position:
    """Where a page ended: the sort key of its last row."""

    timestamp: datetime
    id: str


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def derive_key(seed: str) -> bytes:
    """A signing key derived from ``seed`` (e.g. the database URL all instances share)."""
    return hashlib.sha256(b"chat-ingest cursor key\x00" + seed.encode()).digest()


class CursorSigner:
    """Issues and checks cursors; ``scope`` names the listing a cursor belongs to."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _signature(self, scope: str, payload: bytes) -> bytes:
        message = scope.encode() + b"\x00" + payload
        return hmac.new(self._key, message, hashlib.sha256).digest()[:_SIGNATURE_BYTES]

    def issue(self, scope: str, position: Position) -> str:
        payload = orjson.dumps([position.timestamp.isoformat(), position.id])
        return f"{_b64encode(payload)}.{_b64encode(self._signature(scope, payload))}"

    def read(self, scope: str, cursor: str) -> Position:
        """The position ``cursor`` stands for; ``InvalidCursor`` unless this signer issued it
        for ``scope``."""
        try:
            if len(cursor) > _MAX_CURSOR_CHARS:
                raise ValueError("too long")
            encoded_payload, encoded_signature = cursor.split(".")
            payload = _b64decode(encoded_payload)
            signature = _b64decode(encoded_signature)
        except (ValueError, UnicodeEncodeError):
            raise InvalidCursor("malformed cursor") from None
        if not hmac.compare_digest(signature, self._signature(scope, payload)):
            raise InvalidCursor("cursor was not issued for this listing")
        return _position(payload)


def _position(payload: bytes) -> Position:
    """The signed payload as a position. A payload of another shape (signed with a leaked or
    guessed key) is refused like any bad cursor, never trusted into SQL."""
    try:
        timestamp, row_id = orjson.loads(payload)
        if not isinstance(timestamp, str) or not isinstance(row_id, str) or len(row_id) > 64:
            raise ValueError("unexpected payload")
        moment = datetime.fromisoformat(timestamp)
        if moment.tzinfo is None:
            raise ValueError("naive timestamp")
        return Position(moment.astimezone(UTC), row_id)
    except (ValueError, TypeError, OverflowError):
        raise InvalidCursor("malformed cursor") from None
