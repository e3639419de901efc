"""Storing question/answer records, one or a batch: plan → write → settle.

A single insert is a batch of one, so both follow the same rules:

1. plan every record before any transaction (pure checks and its ids: a retry must write the
   same ids, or messages with equal ``created_at`` would change order);
2. in one retried unit of work (``write_records``): lock the given conversations and read
   what is stored for the records (``Store.lock_snapshot``); ``plan_writes`` decides who
   conflicts (409), who replays a stored message, who repeats an earlier record, who is new;
3. the store creates the new conversations, already counting their messages; if one
   appeared meanwhile (a concurrent creator), the whole transaction runs again
   (``ConcurrentChange``);
4. it inserts the messages ignoring duplicate keys; only if some were duplicates are the
   stored ones read, to answer replays (same content) or 409 (other content);
5. it inserts the files of the new messages and adds them to the counters of the
   conversations that already existed; ``settle`` gives each record its result.
"""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from chat_ingest.db.unit_of_work import Database
from chat_ingest.errors import ChatIngestError, ConcurrentChange
from chat_ingest.schemas import InsertRequest, parse_insert_item
from chat_ingest.service.access import Caller
from chat_ingest.service.group_commit import GroupCommitter
from chat_ingest.service.records import InsertPolicy, plan_record
from chat_ingest.stores.base import (
    InsertOutcome,
    ItemResult,
    Key,
    PlannedRecord,
    Store,
    StoredMessage,
)
from chat_ingest.stores.plan import (
    fresh_inserts,
    keys_to_recheck,
    message_count_deltas,
    plan_writes,
    settle,
)

__all__ = [
    "InsertCommitter",
    "InsertOutcome",
    "ItemResult",
    "SingleInserts",
    "group_writer",
    "store_items",
    "store_requests",
    "write_records",
]


async def store_items(
    database: Database, store: Store, items: Sequence[Any], policy: InsertPolicy, caller: Caller
) -> list[ItemResult]:
    """Validate raw (parsed JSON) items one by one (an app the caller may not write is a
    ``Forbidden`` item) and store the valid ones in one unit of work; return one result per
    item, at its index. The batch endpoint and the importer's database sink go through here."""
    results: dict[int, ItemResult] = {}
    valid: list[tuple[int, InsertRequest]] = []
    for index, item in enumerate(items):
        try:
            request = parse_insert_item(item, index)
            caller.require_app(request.app_id)
            valid.append((index, request))
        except ChatIngestError as error:
            results[index] = error
    stored = await store_requests(database, store, [request for _, request in valid], policy)
    for (index, _), result in zip(valid, stored, strict=True):
        results[index] = result
    return [results[index] for index in range(len(items))]


InsertCommitter = GroupCommitter[PlannedRecord, ItemResult]


def group_writer(
    database: Database, store: Store
) -> Callable[[Sequence[PlannedRecord]], Awaitable[list[ItemResult]]]:
    """How an ``InsertCommitter`` writes a group of single inserts: one ``write_records`` unit
    of work, one result per record (a record's own failure is its result, not the group's)."""

    async def write_group(records: Sequence[PlannedRecord]) -> list[ItemResult]:
        return await database.run(lambda connection: write_records(connection, store, records))

    return write_group


class SingleInserts:
    """``POST /api/chat/insert``'s records: each is planned (ids included) and queued for the
    next group its committer writes; the caller gets that record's own result."""

    def __init__(self, committer: InsertCommitter, policy: InsertPolicy) -> None:
        self.committer = committer
        self.policy = policy

    async def insert(self, request: InsertRequest) -> InsertOutcome:
        """Store one record; its failure is raised."""
        result = await self.committer.submit(plan_record(request, self.policy))
        if isinstance(result, ChatIngestError):
            raise result
        return result

    async def close(self) -> None:
        """Refuse new records; return once every accepted one is written."""
        await self.committer.close()


async def store_requests(
    database: Database, store: Store, requests: Sequence[InsertRequest], policy: InsertPolicy
) -> list[ItemResult]:
    """Plan ``requests`` (ids included) outside the retried unit of work, then write the
    plannable ones in it; one result per request, at its index."""
    results: dict[int, ItemResult] = {}
    planned: list[tuple[int, PlannedRecord]] = []
    for index, request in enumerate(requests):
        try:
            planned.append((index, plan_record(request, policy)))
        except ChatIngestError as error:
            results[index] = error
    if planned:
        records = [record for _, record in planned]
        written = await database.run(lambda connection: write_records(connection, store, records))
        for (index, _), result in zip(planned, written, strict=True):
            results[index] = result
    return [results[index] for index in range(len(requests))]


async def write_records(
    connection: AsyncConnection, store: Store, records: Sequence[PlannedRecord]
) -> list[ItemResult]:
    """The unit of work: write ``records`` (in list order) and return one result per record,
    at its index. It may run again on a transient error, so it decides no ids and has no
    side effect outside the transaction."""
    results: dict[int, ItemResult] = {}
    storable: list[tuple[int, PlannedRecord]] = []
    for index, record in enumerate(await store.resolve(connection, records)):
        if isinstance(record, ChatIngestError):
            results[index] = record
            continue
        try:
            store.check_size(connection, record)
            storable.append((index, record))
        except ChatIngestError as error:
            results[index] = error
    written = await _write_plan(connection, store, [record for _, record in storable])
    results.update(zip((index for index, _ in storable), written, strict=True))
    return [results[index] for index in range(len(records))]


async def _write_plan(
    connection: AsyncConnection, store: Store, records: Sequence[PlannedRecord]
) -> list[ItemResult]:
    snapshot = await store.lock_snapshot(connection, records)
    plan = plan_writes(records, snapshot)
    created = await store.create_conversations(connection, plan.new_conversations)
    if created != len(plan.new_conversations):
        raise ConcurrentChange("A conversation was created concurrently; retrying.")
    accepted = [records[index] for index in plan.accepted]
    inserted = await store.insert_messages(connection, accepted)
    stored: Mapping[Key, StoredMessage] = {}
    if inserted != len(accepted):
        stored = await store.find_messages_by_key(connection, keys_to_recheck(plan))
    fresh = fresh_inserts(plan, stored)
    if len(fresh) != inserted:  # a duplicate no key explains: a message id stored meanwhile
        raise ConcurrentChange("A message id was stored concurrently; retrying.")
    await store.insert_files(connection, [records[index] for index in fresh])
    await store.count_messages(connection, message_count_deltas(plan, fresh))
    return settle(plan, fresh, stored)
