"""Engine creation with the per-backend connection setup the insert path relies on."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from chat_ingest.db import local_infile

MYSQL_CLIENT_FOUND_ROWS = 2  # the protocol's CLIENT_FOUND_ROWS capability bit
MAX_STATEMENT_BYTES_KEY = "max_statement_bytes"  # in each pooled connection's ``info``


@dataclass(frozen=True)
class EngineOptions:
    pool_size: int = 20
    max_overflow: int = 10
    timeout: float = 10.0
    pool_recycle: int = 1800
    pre_ping: bool = True


@dataclass(frozen=True)
class TimestampRange:
    """What the backend's timestamp columns can hold."""

    earliest: datetime
    latest: datetime


# MySQL TIMESTAMP holds 1970-01-01 00:00:01 .. 2038-01-19 03:14:07 UTC.
MYSQL_TIMESTAMPS = TimestampRange(
    datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), datetime(2038, 1, 19, 3, 14, 7, tzinfo=UTC)
)
WIDE_TIMESTAMPS = TimestampRange(datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC))


def is_mysql(url: URL) -> bool:
    return url.get_backend_name() in ("mysql", "mariadb")


def timestamp_range(url: URL) -> TimestampRange:
    return MYSQL_TIMESTAMPS if is_mysql(url) else WIDE_TIMESTAMPS


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _connect_args(url: URL, timeout: float) -> dict[str, Any]:
    backend = url.get_backend_name()
    if backend in ("mysql", "mariadb"):
        return {
            "connect_timeout": max(1, int(timeout)),
            "charset": "utf8mb4",
            "init_command": "SET time_zone = '+00:00'",
        }
    if backend == "postgresql":
        return {"timeout": timeout, "server_settings": {"timezone": "UTC"}}
    return {"timeout": timeout}


def create_engine(database_url: str, options: EngineOptions | None = None) -> AsyncEngine:
    """Create the service's engine.

    MySQL connections run at READ COMMITTED (no gap locks between racing inserts) and
    without CLIENT_FOUND_ROWS, so an ``ON DUPLICATE KEY UPDATE id = id`` that hits an
    existing row reports 0 affected rows: that is how an insert tells "created" from
    "already there" in one round trip.
    """
    options = options or EngineOptions()
    url = make_url(database_url)
    kwargs: dict[str, Any] = {
        "json_serializer": _json_dumps,
        "json_deserializer": orjson.loads,
        "pool_pre_ping": options.pre_ping,
        "pool_reset_on_return": None,  # see _rollback_only_if_needed
        "hide_parameters": True,  # errors and logs must never carry chat text
        "connect_args": _connect_args(url, options.timeout),
    }
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise ValueError("SQLite needs a database file; in-memory databases are not shared")
    kwargs |= {
        "pool_size": options.pool_size,
        "max_overflow": options.max_overflow,
        "pool_timeout": options.timeout,
        "pool_recycle": options.pool_recycle,
    }
    if is_mysql(url):
        kwargs["isolation_level"] = "READ COMMITTED"
        if local_infile.enabled(url.get_driver_name()):
            local_infile.install()
    engine = create_async_engine(url, **kwargs)
    _install_connection_setup(engine, url)
    return engine


def _install_connection_setup(engine: AsyncEngine, url: URL) -> None:
    @event.listens_for(engine.sync_engine, "reset")
    def _rollback_only_if_needed(dbapi_connection: Any, record: Any, state: Any) -> None:
        """The pool's default reset sends a ROLLBACK for every connection it takes back: a
        round trip per request, although ``engine.begin()`` has already committed. The MySQL
        drivers know from the server's status flags whether a transaction is still open;
        other drivers are always rolled back."""
        in_transaction = getattr(dbapi_connection.driver_connection, "get_transaction_status", None)
        if state.transaction_was_reset or (in_transaction is not None and not in_transaction()):
            return
        dbapi_connection.rollback()

    if is_mysql(url):

        @event.listens_for(engine.sync_engine, "do_connect")
        def _without_found_rows(dialect: Any, conn_rec: Any, cargs: Any, cparams: Any) -> None:
            cparams["client_flag"] = cparams.get("client_flag", 0) & ~MYSQL_CLIENT_FOUND_ROWS
            # LOAD DATA LOCAL for the bulk path; safe: see db.local_infile.
            cparams["local_infile"] = local_infile.enabled(url.get_driver_name())

        @event.listens_for(engine.sync_engine, "connect")
        def _remember_packet_limit(dbapi_connection: Any, connection_record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT @@max_allowed_packet")
            connection_record.info[MAX_STATEMENT_BYTES_KEY] = int(cursor.fetchone()[0])
            cursor.close()

    elif url.get_backend_name() == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
            cursor = dbapi_connection.cursor()
            for pragma in (
                "PRAGMA foreign_keys = ON",
                "PRAGMA journal_mode = WAL",
                "PRAGMA synchronous = NORMAL",
                "PRAGMA busy_timeout = 10000",
            ):
                cursor.execute(pragma)
            cursor.close()
