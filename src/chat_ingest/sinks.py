"""Where ``chat-ingest import`` sends its chunks: straight into the database, or to a running
service's batch endpoint."""

from typing import Any

from chat_ingest.client import AsyncChatIngestClient
from chat_ingest.client import ChatIngestError as ClientError
from chat_ingest.db.unit_of_work import Database
from chat_ingest.errors import ChatIngestError
from chat_ingest.importer import Verdict
from chat_ingest.service.access import OPEN_ACCESS
from chat_ingest.service.insert import InsertOutcome, ItemResult, store_items
from chat_ingest.service.records import InsertPolicy
from chat_ingest.stores.base import Store


class SinkError(Exception):
    """The destination refused a whole chunk; the import stops (re-running it is safe)."""


def _verdict(result: ItemResult) -> Verdict:
    if isinstance(result, InsertOutcome):
        return Verdict(created=result.created)
    return Verdict(error=result.message)


class DatabaseSink:
    """Through the same service code as the batch endpoint, one transaction per chunk. An
    operator with the database URL may write any app, so no key is checked."""

    def __init__(self, database: Database, store: Store, policy: InsertPolicy) -> None:
        self.database = database
        self.layout = store
        self.policy = policy

    async def store(self, items: list[dict[str, Any]]) -> list[Verdict]:
        try:
            results = await store_items(self.database, self.layout, items, self.policy, OPEN_ACCESS)
        except ChatIngestError as exc:
            raise SinkError(exc.message) from exc
        return [_verdict(result) for result in results]


class HttpSink:
    """POSTs each chunk to ``/api/chat/insert/batch`` with the Python client, which retries
    what is safe to retry (the lines are keyed, so a resent chunk cannot duplicate)."""

    def __init__(self, base_url: str, api_key: str | None) -> None:
        self.client = AsyncChatIngestClient(base_url, api_key=api_key, timeout=120, max_retries=6)

    async def store(self, items: list[dict[str, Any]]) -> list[Verdict]:
        try:
            result = await self.client.insert_batch(items)
        except ClientError as exc:
            raise SinkError(f"the service refused a chunk: {exc}") from exc
        return [
            Verdict(created=bool(r.created)) if r.success else Verdict(error=r.error)
            for r in result.results
        ]

    async def aclose(self) -> None:
        await self.client.aclose()
