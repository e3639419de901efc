"""Row values as the dialect would bind them in an INSERT, for the bulk paths (``COPY``,
``LOAD DATA``) that hand rows to the database without SQLAlchemy's statement execution: the
same JSON serialisation, decimal rounding and UTC timestamps, so every path stores the same
bytes."""

from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import Dialect, Table

Processor = Callable[[Any], Any] | None


def bound_values(
    dialect: Dialect, table: Table, columns: tuple[str, ...], rows: Sequence[Mapping[str, Any]]
) -> list[tuple[Any, ...]]:
    """Each row's ``columns``, in order, processed as bind parameters of ``table``."""
    processors = bind_processors(dialect, table, columns)
    return [
        tuple(
            value if process is None else process(value)
            for value, process in zip((row[c] for c in columns), processors, strict=True)
        )
        for row in rows
    ]


@cache
def bind_processors(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> list[Processor]:
    """Each column's bind processing, as the dialect would apply it to an INSERT."""
    return [
        table.c[column].type.dialect_impl(dialect).bind_processor(dialect) for column in columns
    ]
