"""The start-up check of a Dify database: read which of the layout's tables and columns exist
(from ``information_schema``, never changing anything) and build the tables from them."""

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection

from chat_ingest.errors import DifySchemaMismatch
from chat_ingest.stores.dify.tables import COLUMNS, DifyTables, MissingInDify, build_tables

_CURRENT_SCHEMA = {"postgresql": "current_schema()", "mysql": "DATABASE()", "mariadb": "DATABASE()"}


async def present_columns(connection: AsyncConnection) -> dict[str, set[str]]:
    """The layout's tables that exist in the connected schema, with all their columns."""
    schema = _CURRENT_SCHEMA[connection.dialect.name]
    statement = text(
        "SELECT table_name, column_name FROM information_schema.columns"
        f" WHERE table_schema = {schema} AND table_name IN :tables"
    ).bindparams(bindparam("tables", expanding=True))
    present: dict[str, set[str]] = {}
    for table, column in await connection.execute(statement, {"tables": list(COLUMNS)}):
        present.setdefault(str(table), set()).add(str(column))
    return present


async def inspect_dify_schema(connection: AsyncConnection) -> DifyTables:
    """The tables to write, or ``DifySchemaMismatch`` naming the first missing one."""
    try:
        return build_tables(await present_columns(connection))
    except MissingInDify as missing:
        what = "table" if "." not in str(missing) else "column"
        raise DifySchemaMismatch(
            f"TABLE_LAYOUT=dify: the database has no {what} {missing}; is DATABASE_URL a "
            "Dify (1.10 or later) database?",
            detail={"missing": str(missing)},
        ) from None
