"""Where ``chat-ingest import`` sends its chunks: straight into the database, or to a running
service's batch endpoint."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from chat_ingest.client import AsyncChatIngestClient, PayloadTooLargeError
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


# ``{"items":[`` + ``]}``: what a batch body adds around its items (and a comma between two).
BATCH_ENVELOPE_BYTES = len(b'{"items":[]}')


@dataclass
class BatchLimits:
    """What the service accepts in one batch request (its MAX_BODY_BYTES and MAX_BATCH_ITEMS)."""

    max_body_bytes: int
    max_items: int

    def fits_alone(self, size: int) -> bool:
        return BATCH_ENVELOPE_BYTES + size <= self.max_body_bytes

    def lower_body_limit(self, detail: Any, refused_size: int) -> None:
        """After a 413 for a ``refused_size``-byte body: take the service's own limit from its
        answer (``detail.max_body_bytes``), or else assume half of what it refused."""
        told = detail.get("max_body_bytes") if isinstance(detail, dict) else None
        learned = told if isinstance(told, int) and told > 0 else refused_size // 2
        self.max_body_bytes = min(self.max_body_bytes, learned, refused_size - 1)


def batch_bytes(sizes: list[int]) -> int:
    """The size of a batch body holding items of these encoded sizes."""
    return BATCH_ENVELOPE_BYTES + sum(sizes) + max(len(sizes) - 1, 0)


def plan_batches(sizes: list[int], limits: BatchLimits) -> Iterator[list[int]]:
    """Consecutive runs of item indexes, each within ``limits``. An item too large to fit
    even alone comes out as a run of its own (the caller rejects it without sending it)."""
    batch: list[int] = []
    used = BATCH_ENVELOPE_BYTES
    for index, size in enumerate(sizes):
        grown = used + size + (1 if batch else 0)
        if batch and (grown > limits.max_body_bytes or len(batch) == limits.max_items):
            yield batch
            batch, grown = [], BATCH_ENVELOPE_BYTES + size
        batch.append(index)
        used = grown
        if not limits.fits_alone(size):
            yield batch
            batch, used = [], BATCH_ENVELOPE_BYTES
    if batch:
        yield batch


class HttpSink:
    """POSTs each chunk to ``/api/chat/insert/batch`` with the Python client, which retries
    what is safe to retry (the lines are keyed, so a resent chunk cannot duplicate).

    A chunk is split into batches that fit ``limits``. A 413 means the service's limit is
    lower than assumed: the limit is lowered, the batch split in halves and each half sent;
    a single item that the service still refuses is rejected alone and the import goes on."""

    def __init__(self, base_url: str, api_key: str | None, limits: BatchLimits) -> None:
        self.client = AsyncChatIngestClient(base_url, api_key=api_key, timeout=120, max_retries=6)
        self.limits = limits

    async def store(self, items: list[dict[str, Any]]) -> list[Verdict]:
        sizes = [len(orjson.dumps(item)) for item in items]
        verdicts: dict[int, Verdict] = {}
        for batch in plan_batches(sizes, self.limits):
            await self._send([(i, items[i], sizes[i]) for i in batch], verdicts)
        return [verdicts[i] for i in range(len(items))]

    async def _send(
        self, batch: list[tuple[int, dict[str, Any], int]], verdicts: dict[int, Verdict]
    ) -> None:
        size = batch_bytes([item_size for _, _, item_size in batch])
        if len(batch) == 1 and size > self.limits.max_body_bytes:
            verdicts[batch[0][0]] = Verdict(error=_too_large(size, self.limits.max_body_bytes))
            return
        try:
            result = await self.client.insert_batch([item for _, item, _ in batch])
        except PayloadTooLargeError as exc:
            self.limits.lower_body_limit(exc.detail, size)
            if len(batch) == 1:
                verdicts[batch[0][0]] = Verdict(error=_too_large(size, None))
                return
            half = len(batch) // 2
            await self._send(batch[:half], verdicts)
            await self._send(batch[half:], verdicts)
            return
        except ClientError as exc:
            raise SinkError(f"the service did not take a batch: {exc}") from exc
        for (index, _, _), r in zip(batch, result.results, strict=True):
            verdicts[index] = (
                Verdict(created=bool(r.created)) if r.success else Verdict(error=r.error)
            )

    async def aclose(self) -> None:
        await self.client.aclose()


def _too_large(size: int, limit: int | None) -> str:
    known = f" (MAX_BODY_BYTES {limit})" if limit is not None else ""
    return f"413: the line needs a {size}-byte request, more than the service accepts{known}"
