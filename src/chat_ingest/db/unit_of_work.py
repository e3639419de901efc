"""One transaction per unit of work, retried on transient database errors.

A unit of work is an async function of an open connection. It runs inside
``BEGIN ... COMMIT``; a deadlock, lock-wait timeout or lost connection rolls it back and runs
it again from the start (so it must not have side effects outside the transaction). When the
database stays unreachable, or the whole thing takes longer than the time budget, the caller
gets ``DatabaseUnavailable`` (a 503 at the HTTP edge): never a hang, never half a write.
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
# 40001 serialization failure, 40P01 deadlock, 55P03 lock not available, 57P01..03 shutdown.
POSTGRES_TRANSIENT_STATES = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03"})
SQLITE_TRANSIENT_MESSAGES = ("database is locked", "database table is locked", "unable to open")


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


def is_transient(exc: BaseException) -> bool:
    """Whether running the same transaction again may succeed."""
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


async def _with_retries(
    engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]], attempts: int
) -> T:
    attempt = 0
    while True:
        try:
            async with engine.begin() as connection:
                return await work(connection)
        except (DBAPIError, OSError, PoolTimeoutError, ConcurrentChange) as exc:
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
                type(exc.orig if isinstance(exc, DBAPIError) else exc).__name__,
            )
            if attempt == attempts:
                raise DatabaseUnavailable("The database is unavailable; retry later.") from exc
            await asyncio.sleep(_backoff(attempt))
