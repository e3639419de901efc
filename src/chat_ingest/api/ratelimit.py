"""Rate limiting per API key with the ``limits`` library (sliding window counter).

In-memory storage counts per process; Redis storage (``RATE_LIMIT_STORAGE=redis://...``) gives
every instance and worker one shared budget. When Redis cannot be reached the request goes
through (logged): an outage of the limiter must not become an outage of the service.
"""

import logging
import math
import time

from coredis import ConnectionPool
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError

log = logging.getLogger(__name__)
KEY_PREFIX = "chat_ingest_rate"


class RateLimitExceeded(Exception):
    """The caller used up its budget; ``headers`` say when to come back."""

    def __init__(
        self,
        headers: dict[str, str],
        message: str = "Rate limit exceeded; retry after the number of seconds in Retry-After.",
    ) -> None:
        super().__init__(message)
        self.headers = headers


class RateLimiter:
    """A budget per identity (an API key, or ``ip:<address>``) in memory or Redis."""

    def __init__(self, limit: str, storage_uri: str, key_prefix: str = KEY_PREFIX) -> None:
        self.item: RateLimitItem = parse(limit)
        self._redis_pool: ConnectionPool | None = None
        storage: Storage = MemoryStorage()
        if not storage_uri.startswith("memory://"):
            self._redis_pool = ConnectionPool.from_url(
                storage_uri, connect_timeout=1, stream_timeout=1
            )
            storage = RedisStorage(
                f"async+{storage_uri}",
                wrap_exceptions=True,
                key_prefix=key_prefix,
                connection_pool=self._redis_pool,  # type: ignore[arg-type]  # the bridge takes it
            )
        self.strategy = SlidingWindowCounterRateLimiter(storage)

    def close(self) -> None:
        if self._redis_pool is not None:
            self._redis_pool.disconnect()

    async def hit(self, identity: str) -> dict[str, str]:
        """Count one request for ``identity``; return the ``RateLimit-*`` headers, or raise
        ``RateLimitExceeded`` when the budget is spent."""
        try:
            allowed = await self.strategy.hit(self.item, identity)
            stats = await self.strategy.get_window_stats(self.item, identity)
        except StorageError as exc:
            log.warning("rate limit storage unavailable, request let through: %s", exc)
            return {}
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        headers = {
            "RateLimit-Limit": str(self.item.amount),
            "RateLimit-Remaining": str(stats.remaining),
            "RateLimit-Reset": str(reset),
        }
        if not allowed:
            raise RateLimitExceeded(headers | {"Retry-After": str(reset)})
        return headers

    async def check(self, identity: str) -> None:
        """``RateLimitExceeded`` when ``identity``'s budget is spent; consumes nothing (for the
        budget of failed authentications, spent by ``hit_quietly``)."""
        try:
            if await self.strategy.test(self.item, identity):
                return
            stats = await self.strategy.get_window_stats(self.item, identity)
        except StorageError as exc:
            log.warning("rate limit storage unavailable, request let through: %s", exc)
            return
        reset = str(max(1, math.ceil(stats.reset_time - time.time())))
        message = "Too many failed authentications from this address; retry later."
        raise RateLimitExceeded({"Retry-After": reset}, message)

    async def hit_quietly(self, identity: str) -> None:
        """Spend one unit of ``identity``'s budget without raising."""
        try:
            await self.strategy.hit(self.item, identity)
        except StorageError as exc:
            log.warning("rate limit storage unavailable: %s", exc)
