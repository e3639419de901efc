"""Column types that behave the same on MySQL/MariaDB, PostgreSQL and SQLite."""

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Numeric, String, Text
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.types import TypeDecorator, TypeEngine

LongText = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
# Plain JSON on PostgreSQL too: it keeps documents as sent (JSONB would turn 1e19 into an
# integer, -0.0 into 0 and reorder keys), as MySQL/MariaDB do.
Json = JSON()


class ExactDecimal(TypeDecorator[Decimal]):
    """``DECIMAL(precision, scale)``, rounded half up to ``scale`` on the way in.

    SQLite has no exact decimal type (NUMERIC columns hold floats), so there the value is
    stored as its decimal text.
    """

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__(precision, scale, asdecimal=True)
        self.precision = precision
        self.scale = scale
        self._quantum = Decimal(1).scaleb(-scale)

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(self.precision + 2))
        return dialect.type_descriptor(Numeric(self.precision, self.scale))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        exact = Decimal(value).quantize(self._quantum, rounding=ROUND_HALF_UP)
        return str(exact) if dialect.name == "sqlite" else exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value).quantize(self._quantum)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out.

    MySQL gets the design's ``TIMESTAMP`` (the session runs at ``+00:00``), PostgreSQL
    ``timestamptz``, SQLite naive UTC text. Whatever the driver hands back, callers always
    receive an aware UTC value.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.TIMESTAMP())
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
