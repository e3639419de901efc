"""Column types as Dify declares them (``api/models/types.py``): ``StringUUID`` is ``uuid`` on
PostgreSQL and ``char(36)`` on MySQL; timestamps are naive UTC."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CHAR, DateTime, Dialect
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator, TypeEngine

from chat_ingest.db.engine import TimestampRange


class StringUUID(TypeDecorator[str]):
    """A hyphenated UUID string in and out, whatever the column type."""

    impl = CHAR(36)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.UUID(as_uuid=False))
        return dialect.type_descriptor(CHAR(36))

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(value)


class NaiveUTC(TypeDecorator[datetime]):
    """Dify's ``timestamp without time zone``/``datetime`` columns hold naive UTC; callers
    give and get aware UTC values."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is None:
            return value
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# What Dify's columns hold: MySQL ``datetime`` from year 1000, PostgreSQL ``timestamp`` wider.
DATETIME_RANGE = TimestampRange(
    datetime(1000, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC)
)
