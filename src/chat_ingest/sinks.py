"""Where ``chat-ingest import`` sends its chunks: straight into the database, or to a running
service's batch endpoint."""

import asyncio
import random
from typing import Any

import httpx

from chat_ingest.db.unit_of_work import Database
from chat_ingest.errors import ChatIngestError
from chat_ingest.importer import Verdict
from chat_ingest.service.insert import InsertOutcome, ItemResult, store_items
from chat_ingest.service.records import InsertPolicy

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


class SinkError(Exception):
    """The destination refused a whole chunk; the import stops (re-running it is safe)."""


def _verdict(result: ItemResult) -> Verdict:
    if isinstance(result, InsertOutcome):
        return Verdict(created=result.created)
    return Verdict(error=result.message)


class DatabaseSink:
    """Through the same service code as the batch endpoint, one transaction per chunk."""

    def __init__(self, database: Database, policy: InsertPolicy) -> None:
        self.database = database
        self.policy = policy

    async def store(self, items: list[dict[str, Any]]) -> list[Verdict]:
        try:
            results = await store_items(self.database, items, self.policy)
        except ChatIngestError as exc:
            raise SinkError(exc.message) from exc
        return [_verdict(result) for result in results]


class HttpSink:
    """POSTs each chunk to ``/api/chat/insert/batch``, retrying what is safe to retry (the
    lines are keyed, so a resent chunk cannot duplicate anything)."""

    def __init__(self, base_url: str, api_key: str | None, attempts: int = 6) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=120)
        self.attempts = attempts

    async def store(self, items: list[dict[str, Any]]) -> list[Verdict]:
        body = await self._post({"items": items})
        return [
            Verdict(created=bool(r["created"])) if r["success"] else Verdict(error=r["error"])
            for r in body["results"]
        ]

    async def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        for attempt in range(1, self.attempts + 1):
            try:
                response = await self.http.post("/api/chat/insert/batch", json=payload)
            except httpx.TransportError as exc:
                if attempt == self.attempts:
                    raise SinkError(f"cannot reach the service: {exc}") from exc
                await asyncio.sleep(_backoff(attempt, None))
                continue
            if response.status_code == 200:
                return dict(response.json())
            if response.status_code not in RETRYABLE_STATUSES or attempt == self.attempts:
                raise SinkError(f"the service answered {response.status_code}: {response.text}")
            await asyncio.sleep(_backoff(attempt, response.headers.get("retry-after")))
        raise AssertionError("unreachable: the loop returns or raises")

    async def aclose(self) -> None:
        await self.http.aclose()


def _backoff(attempt: int, retry_after: str | None) -> float:
    if retry_after is not None and retry_after.isdigit():
        return float(retry_after)
    return random.uniform(0, min(30.0, 0.5 * 2**attempt))
