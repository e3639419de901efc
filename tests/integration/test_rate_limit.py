"""Rate limits per key: 429 with Retry-After and RateLimit-* headers; a Redis store shared by
several instances (the real Redis on this machine).

Budgets here are hourly: a sliding window counter can let one request through just after a
window boundary, which a per-minute budget would meet in a test run now and then.
"""

import os
import uuid

import pytest

from chat_ingest.api.ratelimit import RateLimiter, RateLimitExceeded
from tests.conftest import ServiceClient, make_settings, unique

pytestmark = pytest.mark.asyncio
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def _spend(limiter: RateLimiter, identity: str, times: int) -> list[bool]:
    allowed = []
    for _ in range(times):
        try:
            await limiter.hit(identity)
            allowed.append(True)
        except RateLimitExceeded:
            allowed.append(False)
    return allowed


async def test_instances_sharing_redis_share_one_budget() -> None:
    first, second = RateLimiter("4/hour", REDIS_URL), RateLimiter("4/hour", REDIS_URL)
    identity = f"test-{uuid.uuid4().hex}"
    assert await _spend(first, identity, 2) == [True, True]
    assert await _spend(second, identity, 3) == [True, True, False]
    assert await _spend(first, identity, 1) == [False]
    assert await _spend(first, f"other-{identity}", 1) == [True]
    first.close()
    second.close()


async def test_memory_store_counts_per_process() -> None:
    first, second = RateLimiter("1/hour", "memory://"), RateLimiter("1/hour", "memory://")
    assert await _spend(first, "k", 2) == [True, False]
    assert await _spend(second, "k", 1) == [True]


async def test_an_unreachable_redis_lets_requests_through() -> None:
    limiter = RateLimiter("1/hour", "redis://127.0.0.1:1/0")
    assert await limiter.hit("k") == {}
    limiter.close()


async def test_429_carries_retry_after_and_ratelimit_headers(database_url: str) -> None:
    settings = make_settings(
        database_url,
        rate_limit="2/hour",
        api_keys="rate-key-1-0123456789abcdef=*,rate-key-2-0123456789abcdef=*",
    )
    body = {"app_id": unique("app"), "user_id": "u", "query": "q", "answer": "a"}
    async with ServiceClient(settings) as http:
        responses = [
            await http.post(
                "/api/chat/insert", json=body, headers=_auth("rate-key-1-0123456789abcdef")
            )
            for _ in range(3)
        ]
        other_key = await http.post(
            "/api/chat/insert", json=body, headers=_auth("rate-key-2-0123456789abcdef")
        )
    ok, _, limited = responses
    assert ok.status_code == 200 and ok.headers["ratelimit-limit"] == "2"
    assert ok.headers["ratelimit-remaining"] == "1"
    assert limited.status_code == 429 and limited.json()["success"] is False
    assert 1 <= int(limited.headers["retry-after"]) <= 3600
    assert limited.headers["ratelimit-remaining"] == "0"
    assert other_key.status_code == 200


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_requests_over_the_limit_write_nothing(database_url: str) -> None:
    settings = make_settings(
        database_url, rate_limit="1/hour", api_keys="rate-key-3-0123456789abcdef=*"
    )
    async with ServiceClient(settings) as http:
        first = await http.post(
            "/api/chat/insert", json=_body(), headers=_auth("rate-key-3-0123456789abcdef")
        )
        conversation_id = unique("conv")
        second = await http.post(
            "/api/chat/insert",
            json=_body(conversation_id=conversation_id),
            headers=_auth("rate-key-3-0123456789abcdef"),
        )
        lookup = await http.get(
            f"/api/chat/{conversation_id}", headers=_auth("rate-key-3-0123456789abcdef")
        )
    assert (first.status_code, second.status_code, lookup.status_code) == (200, 429, 429)


def _body(**fields: str) -> dict[str, str]:
    return {"app_id": unique("app"), "user_id": "u", "query": "q", "answer": "a"} | fields
