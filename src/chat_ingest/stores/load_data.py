"""MySQL/MariaDB's bulk path: ``LOAD DATA LOCAL INFILE`` of many rows at once.

The server reads the rows as tab-separated text instead of parsing a megabyte of SQL per
multi-row INSERT, and the client escapes four characters instead of building SQL literals
(measured, alternated with multi-row INSERTs: the import of 100,000 new conversations +11%
as the median of three rounds; loading without the warnings check below was +28%).

With ``LOCAL`` the server cannot stop the client mid-file, so it treats every problem the way
``IGNORE`` would: a duplicate key skips the row, a too-long value is cut short, a missing
parent skips the row, each with a warning. So the load runs inside a savepoint, and unless it
ended with no warning at all (then it did exactly what a strict multi-row INSERT would have
done), it is rolled back to the savepoint and the rows are written by the multi-row INSERT,
which gives duplicates and bad values their exact meaning. New rows (a first import, a
backfill) take the fast path; a replayed chunk (a re-run: its message keys are found stored
only by the insert itself), a race or bad data take both, the load undone.

Loading straight into the table rather than through a staging table was measured: a stage
(``LOAD`` into a temporary table, ``INSERT ... SELECT``, ``DELETE``) made the same import
about 20% *slower* than multi-row INSERTs on this 2-core machine: the server wrote every row
twice.

A server may answer *any* statement with "send me file X", and a driver that obeys reads
whatever X names. The driver's file sender is replaced (``db.local_infile``): it never opens a
file, and sends only the bytes this module offered for the statement it is running. A server
or connection that refuses ``LOCAL`` (``local_infile`` off) gets multi-row INSERTs, and the
first connection to find out says so once in the log.
"""

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from chat_ingest.db import local_infile
from chat_ingest.stores.bind import bind_processors

LOAD_MIN_ROWS = 100  # below this, a multi-row INSERT is as quick and two statements fewer
MAY_LOAD_KEY = "chat_ingest_may_load"  # in connection.info: False once LOCAL was refused
SAVEPOINT = "chat_ingest_load"
# The server's ways of refusing LOCAL (local_infile off, or the client did not ask for it):
# "...disabled the local infile capability" (MariaDB 10.5+), "loading local data is disabled"
# (MySQL 8), "not allowed with this version" (older servers).
REFUSED_LOCAL = {4166, 3948, 1148}

log = logging.getLogger(__name__)
_told = False


def worth_loading(connection: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> bool:
    return (
        connection.dialect.name in ("mysql", "mariadb")
        and len(rows) >= LOAD_MIN_ROWS
        and local_infile.enabled(connection.dialect.driver)
        and connection.info.get(MAY_LOAD_KEY, True)
    )


async def load_insert(
    connection: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> int | None:
    """Insert ``rows`` (all with the same keys); return how many were inserted (all of them),
    or None if they must be written another way: ``LOCAL`` was refused, or the load met a
    duplicate or a value it had to adjust, and was undone."""
    columns = tuple(rows[0])
    quote = connection.dialect.identifier_preparer.quote
    listed = ", ".join(quote(column) for column in columns)
    await connection.exec_driver_sql(f"SAVEPOINT {SAVEPOINT}")
    with local_infile.offering(_tab_separated(connection, table, columns, rows)) as name:
        try:
            result = await connection.exec_driver_sql(
                f"LOAD DATA LOCAL INFILE '{name}' INTO TABLE {quote(table.name)} "
                f"CHARACTER SET utf8mb4 ({listed})"
            )
        except DBAPIError as exc:
            if _refused_local(exc):
                _fall_back(connection)
                return None
            raise
    if await connection.scalar(text("SELECT @@warning_count")):
        await connection.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")
        return None
    return int(result.rowcount)


def _tab_separated(
    connection: AsyncConnection,
    table: Table,
    columns: tuple[str, ...],
    rows: Sequence[Mapping[str, Any]],
) -> bytes:
    """``rows`` in LOAD DATA's default format: tab between fields, newline after each row,
    backslash escapes, ``\\N`` for NULL; values bound as an INSERT would bind them.

    Written as plain loops with the common case (a string) first: this runs for every value
    of a bulk load, and was the importer's largest single cost as generator expressions."""
    processors = bind_processors(connection.dialect, table, columns)
    values_of = itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)
    lines = []
    for row in rows:
        fields = []
        for value, process in zip(values_of(row), processors, strict=True):
            if process is not None:
                value = process(value)
            fields.append(_escaped(value) if value.__class__ is str else _field(value))
        lines.append("\t".join(fields))
    lines.append("")
    return "\n".join(lines).encode()


def _field(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return _escaped(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, int | float | Decimal):
        return str(value)
    raise TypeError(f"no LOAD DATA spelling for {type(value).__name__}")


def _escaped(text: str) -> str:
    # Plain replace() calls: each is one fast scan, and most values need none of them.
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if "\t" in text:
        text = text.replace("\t", "\\t")
    if "\n" in text:
        text = text.replace("\n", "\\n")
    if "\0" in text:
        text = text.replace("\0", "\\0")
    return text


def _refused_local(exc: DBAPIError) -> bool:
    args: tuple[Any, ...] = getattr(exc.orig, "args", ())
    return bool(args) and args[0] in REFUSED_LOCAL


def _fall_back(connection: AsyncConnection) -> None:
    connection.info[MAY_LOAD_KEY] = False
    global _told
    if not _told:
        _told = True
        log.warning(
            "The MySQL server or connection refuses LOAD DATA LOCAL INFILE: bulk writes use "
            "multi-row INSERTs instead (SET GLOBAL local_infile = ON to speed them up)."
        )
