"""One transaction per unit of work, retried on transient database errors.

A unit of work is an async function of an open connection. It runs inside
``BEGIN ... COMMIT``; a deadlock, lock-wait timeout or lost connection rolls it back and runs
it again from the start (so it must not have side effects outside the transaction). A database
that cannot take the work *now* (read-only during a failover, out of connections, shutting
down) is not retried in place: the caller gets ``DatabaseUnavailable`` at once, as it does when
the database stays unreachable or the whole thing outlasts the time budget (a 503 with
``Retry-After`` at the HTTP edge): never a hang, never half a write, never a 500.
"""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chat_ingest.errors import ConcurrentChange, DatabaseUnavailable

T = TypeVar("T")
log = logging.getLogger(__name__)

# 1205 lock wait timeout, 1213 deadlock, 2002/2003 cannot connect, 2006/2013 server gone or
# connection lost, 4031 idle disconnect (MySQL 8), 1927 connection killed (MariaDB).
MYSQL_TRANSIENT_CODES = frozenset({1205, 1213, 2002, 2003, 2006, 2013, 4031, 1927})
# 40001 serialization failure, 40P01 deadlock, 55P03 lock not available, 57P01..03 shutdown
# (a pooled connection the server terminated: a new one may work), class 08 connection errors.
POSTGRES_TRANSIENT_STATES = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03"})
SQLITE_TRANSIENT_MESSAGES = ("database is locked", "database table is locked", "unable to open")

# The database refuses work for now; retrying in place would only add load, but a retry in a
# moment (a failover over, connections freed) may succeed. MySQL/MariaDB: 1290/1836 read-only
# (--read-only, --super-read-only), 1792 read-only transaction, 1040 too many connections,
# 1203/1226 user over max_user_connections or another resource limit, 1053 shutdown in
# progress, 1047/1184 not accepting commands, 1317 query interrupted, 1158..1161 network
# errors, 3100 a replication hook refused the commit.
MYSQL_UNAVAILABLE_CODES = frozenset(
    {1040, 1047, 1053, 1158, 1159, 1160, 1161, 1184, 1203, 1226, 1290, 1317, 1792, 1836, 3100}
)
# PostgreSQL: 25006 read-only transaction (a standby, or default_transaction_read_only),
# class 53 insufficient resources (53300 too many connections, 53100 disk full, 53200 out of
# memory), 57P04/57P05 database dropped / idle session timeout, class 58 system errors,
# 40003 statement completion unknown.
POSTGRES_UNAVAILABLE_STATES = frozenset({"25006", "57P04", "57P05", "40003"})
POSTGRES_UNAVAILABLE_CLASSES = ("53", "58")


def _error_code(exc: DBAPIError) -> int | str | None:
    """MySQL drivers put the server's error number first in ``args``; asyncpg's adapted errors
    carry the SQLSTATE."""
    orig = exc.orig
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        return args[0]
    for attribute in ("sqlstate", "pgcode"):
        state = getattr(orig, attribute, None)
        if isinstance(state, str):
            return state
    return None


def describe(exc: DBAPIError) -> str:
    """The server's or driver's own one-line reason, with its error code when it has one."""
    orig = exc.orig
    args: tuple[object, ...] = getattr(orig, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):
        return f"{args[1]} (error {args[0]})"
    lines = str(orig).strip().splitlines()
    reason = lines[0] if lines else type(orig).__name__
    state = getattr(orig, "sqlstate", None)
    return f"{reason} (SQLSTATE {state})" if isinstance(state, str) else reason


def is_transient(exc: BaseException) -> bool:
    """Whether running the same transaction again at once may succeed."""
    if isinstance(exc, OSError | ConnectionError | PoolTimeoutError | ConcurrentChange):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    code = _error_code(exc)
    if isinstance(code, int):
        return code in MYSQL_TRANSIENT_CODES
    if isinstance(code, str):
        return code in POSTGRES_TRANSIENT_STATES or code.startswith("08")
    return any(text in str(exc.orig).lower() for text in SQLITE_TRANSIENT_MESSAGES)


def is_unavailable(exc: BaseException) -> bool:
    """Whether the database refuses work for now (read-only, out of connections, shutting
    down): not worth retrying inside this request, worth a 503 the caller retries later."""
    if not isinstance(exc, DBAPIError):
        return False
    code = _error_code(exc)
    if isinstance(code, int):
        return code in MYSQL_UNAVAILABLE_CODES
    if isinstance(code, str):
        return code in POSTGRES_UNAVAILABLE_STATES or code.startswith(POSTGRES_UNAVAILABLE_CLASSES)
    return False


def _describe(exc: BaseException) -> str:
    """The error's class and code, never its message (it may quote SQL or parameters)."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    code = _error_code(exc) if isinstance(exc, DBAPIError) else None
    return type(orig).__name__ + (f" {code}" if code is not None else "")


def _backoff(attempt: int) -> float:
    """Exponential backoff with full jitter: 0..25 ms, 0..50 ms, 0..100 ms, ..."""
    return random.uniform(0, 0.025 * 2**attempt)


class Database:
    """The engine plus the retry policy every unit of work runs under."""

    def __init__(self, engine: AsyncEngine, *, attempts: int = 4, time_budget: float = 10.0):
        self.engine = engine
        self.attempts = attempts
        self.time_budget = time_budget

    async def run(
        self, work: Callable[[AsyncConnection], Awaitable[T]], *, retry: bool = True
    ) -> T:
        """Run ``work`` in one transaction, retrying transient failures within the time budget."""
        try:
            async with asyncio.timeout(self.time_budget):
                return await _with_retries(self.engine, work, self.attempts if retry else 1)
        except TimeoutError:
            raise DatabaseUnavailable("The database did not answer in time; retry later.") from None


async def _connect(engine: AsyncEngine) -> AsyncConnection:
    """A connection from the pool. A driver that fails in an unexpected way while connecting
    (asyncmy raises ``RuntimeError`` when the server hangs up during the handshake, as MariaDB
    does when it is out of connections) means the database cannot be used now: a 503, not a
    500 that clients would not retry."""
    connection = engine.connect()
    try:
        return await connection.start()
    except (DBAPIError, OSError, PoolTimeoutError):
        raise
    except Exception as exc:
        log.warning("could not connect to the database: %s", _describe(exc))
        raise DatabaseUnavailable(
            "The database cannot take this request now; retry later."
        ) from exc


async def _run_once(engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    connection = await _connect(engine)
    try:
        async with connection.begin():
            return await work(connection)
    finally:
        await connection.close()


async def _with_retries(
    engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]], attempts: int
) -> T:
    attempt = 0
    while True:
        try:
            return await _run_once(engine, work)
        except (DBAPIError, OSError, PoolTimeoutError, ConcurrentChange) as exc:
            if is_unavailable(exc):
                log.warning("database unavailable: %s", _describe(exc))
                raise DatabaseUnavailable(
                    "The database cannot take this request now; retry later."
                ) from exc
            if not is_transient(exc):
                raise
            attempt += 1
            # Losing a race to create a row is routine, not worth an operator's attention.
            level = logging.DEBUG if isinstance(exc, ConcurrentChange) else logging.WARNING
            log.log(
                level,
                "transient database error (attempt %d of %d): %s",
                attempt,
                attempts,
                _describe(exc),
            )
            if attempt == attempts:
                raise DatabaseUnavailable("The database is unavailable; retry later.") from exc
            await asyncio.sleep(_backoff(attempt))
