"""Storing question/answer records, one or a batch, in the caller's transaction.

A single insert is a batch of one, so both follow the same rules:

1. plan every record (pure checks; a record that cannot be stored fails alone);
2. lock the given conversations that exist (``FOR UPDATE``, in id order) and read owners;
3. settle each record in list order: another owner → 409; a client_message_id already used
   earlier in the batch → a replay of that record (or 409 if the content differs);
4. create the new conversations, already counting their messages; if one appeared meanwhile
   (a concurrent creator), the whole transaction is run again (``ConcurrentChange``);
5. insert all messages ignoring duplicate keys; only if some were duplicates, read the stored
   ones to answer replays (same content) or 409 (other content);
6. insert the files of the new messages, and add the new messages to the counters of the
   conversations that already existed, all in a handful of statements.
"""

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from chat_ingest import repository
from chat_ingest.db.models import conversations, message_files, messages
from chat_ingest.db.unit_of_work import Database
from chat_ingest.errors import (
    ChatIngestError,
    ConcurrentChange,
    IdempotencyConflict,
    OwnershipConflict,
)
from chat_ingest.schemas import InsertRequest, parse_insert_item
from chat_ingest.service.access import Caller
from chat_ingest.service.records import InsertPolicy, Record, plan_record


@dataclass(frozen=True)
class InsertOutcome:
    conversation_id: str
    message_id: str
    created: bool
    conversation_created: bool


ItemResult = InsertOutcome | ChatIngestError
Owner = tuple[str, str]


async def store_items(
    database: Database, items: Sequence[Any], policy: InsertPolicy, caller: Caller
) -> list[ItemResult]:
    """Validate raw (parsed JSON) items one by one (an app the caller may not write is a
    ``Forbidden`` item) and store the valid ones in one unit of work; return one result per
    item, at its index. The batch endpoint and the importer's database sink go through here."""
    results: list[ItemResult | None] = [None] * len(items)
    valid: list[tuple[int, InsertRequest]] = []
    for index, item in enumerate(items):
        try:
            request = parse_insert_item(item, index)
            caller.require_app(request.app_id)
            valid.append((index, request))
        except ChatIngestError as error:
            results[index] = error
    if valid:
        requests = [request for _, request in valid]
        stored = await database.run(lambda connection: insert_records(connection, requests, policy))
        for (index, _), result in zip(valid, stored, strict=True):
            results[index] = result
    return [_settled(result) for result in results]


def group_writer(
    database: Database, policy: InsertPolicy
) -> Callable[[Sequence[InsertRequest]], Awaitable[list[ItemResult]]]:
    """How group commit writes a group of single inserts: one unit of work, one result per
    record (a record's own failure is its result, not the group's)."""

    async def write_group(requests: Sequence[InsertRequest]) -> list[ItemResult]:
        return await database.run(lambda connection: insert_records(connection, requests, policy))

    return write_group


async def insert_records(
    connection: AsyncConnection, requests: Sequence[InsertRequest], policy: InsertPolicy
) -> list[ItemResult]:
    """Store ``requests`` (in list order) and return one result per request, at its index."""
    results: list[ItemResult | None] = [None] * len(requests)
    limit = repository.max_statement_bytes(connection)
    planned: list[tuple[int, Record]] = []
    for index, request in enumerate(requests):
        try:
            planned.append((index, plan_record(request, policy, limit)))
        except ChatIngestError as error:
            results[index] = error
    given_ids = {record.conversation_id for _, record in planned if record.conversation_id_given}
    existing = await repository.lock_conversation_owners(connection, sorted(given_ids))
    batch = _Batch(existing, results)
    for index, record in planned:
        batch.admit(index, record)
    await batch.write(connection)
    return [_settled(result) for result in results]


def _settled(result: ItemResult | None) -> ItemResult:
    if result is None:
        raise AssertionError("every record ends with a result")
    return result


class _Batch:
    """The records admitted to one transaction, and the writes they add up to."""

    def __init__(self, existing: dict[str, Owner], results: list[ItemResult | None]) -> None:
        self.existing = existing
        self.owners: dict[str, Owner] = dict(existing)
        self.results = results
        self.accepted: list[tuple[int, Record]] = []
        self.first_with_key: dict[tuple[str, str], tuple[int, Record]] = {}
        self.echoes: list[tuple[int, Record]] = []
        self.announced: set[str] = set()  # new conversations already reported as created

    def admit(self, index: int, record: Record) -> None:
        owner = self.owners.setdefault(record.conversation_id, record.owner)
        if owner != record.owner:
            self.results[index] = OwnershipConflict(
                "conversation_id already exists for another app_id or user_id.",
                detail={"conversation_id": record.conversation_id},
            )
        elif record.key is not None and record.key in self.first_with_key:
            self.echoes.append((index, record))
        else:
            if record.key is not None:
                self.first_with_key[record.key] = (index, record)
            self.accepted.append((index, record))

    async def write(self, connection: AsyncConnection) -> None:
        new_conversations = await self._create_conversations(connection)
        inserted = await repository.insert_ignoring_duplicates(
            connection, messages, [record.message for _, record in self.accepted]
        )
        stored = await self._stored_duplicates(connection, inserted)
        created = [
            self._settle(i, record, stored, new_conversations) for i, record in self.accepted
        ]
        new_records = [
            record
            for record, was_created in zip(self.accepted, created, strict=True)
            if was_created
        ]
        if len(new_records) != inserted:
            raise AssertionError("inserted messages and settled records disagree")
        for index, record in self.echoes:
            self.results[index] = self._settle_echo(record, stored)
        files = [row for _, record in new_records for row in record.file_rows()]
        await repository.insert_rows(connection, message_files, files)
        await repository.count_new_messages(
            connection, self._new_counts(new_records, new_conversations)
        )

    async def _create_conversations(self, connection: AsyncConnection) -> set[str]:
        """Create the conversations that did not exist, each counting its messages here."""
        starting: dict[str, list[Record]] = defaultdict(list)
        for _, record in self.accepted:
            if record.conversation_id not in self.existing:
                starting[record.conversation_id].append(record)
        rows = [
            records[0].conversation_row(len(records), max(r.created_at for r in records))
            for records in starting.values()
        ]
        if await repository.insert_ignoring_duplicates(connection, conversations, rows) != len(
            rows
        ):
            raise ConcurrentChange("A conversation was created concurrently; retrying.")
        return set(starting)

    async def _stored_duplicates(
        self, connection: AsyncConnection, inserted: int
    ) -> dict[tuple[str, str], repository.AnyRow]:
        """The stored messages behind the keys that hit duplicates (none in the usual case)."""
        if inserted == len(self.accepted):
            return {}
        keys = [
            record.key
            for _, record in self.accepted
            if record.key is not None and record.conversation_id in self.existing
        ]
        return await repository.find_messages_by_client_ids(connection, keys)

    def _settle(
        self,
        index: int,
        record: Record,
        stored: dict[tuple[str, str], repository.AnyRow],
        new_conversations: set[str],
    ) -> bool:
        """Record the result of an accepted record; return whether its message is new."""
        row = stored.get(record.key) if record.key is not None else None
        if row is None or row.id == record.message["id"]:
            first_in_new = (
                record.conversation_id in new_conversations
                and record.conversation_id not in self.announced
            )
            self.announced.add(record.conversation_id)
            self.results[index] = InsertOutcome(
                record.conversation_id, record.message["id"], True, first_in_new
            )
            return True
        self.results[index] = _replay(record, row.id, row.query, row.answer)
        return False

    def _settle_echo(
        self, record: Record, stored: dict[tuple[str, str], repository.AnyRow]
    ) -> ItemResult:
        """A record whose key an earlier record of this batch already used."""
        assert record.key is not None
        first_index, first = self.first_with_key[record.key]
        first_result = self.results[first_index]
        if isinstance(first_result, InsertOutcome):
            message_id, query, answer = (
                first_result.message_id,
                first.request.query,
                first.request.answer,
            )
        else:  # the first one clashed with what was stored: compare with that
            row = stored[record.key]
            message_id, query, answer = row.id, row.query, row.answer
        return _replay(record, message_id, query, answer)

    def _new_counts(
        self, new_records: list[tuple[int, Record]], new_conversations: set[str]
    ) -> dict[str, tuple[int, datetime]]:
        counts: dict[str, tuple[int, datetime]] = {}
        for _, record in new_records:
            if record.conversation_id in new_conversations:
                continue
            count, latest = counts.get(record.conversation_id, (0, record.created_at))
            counts[record.conversation_id] = (count + 1, max(latest, record.created_at))
        return counts


def _replay(record: Record, message_id: str, query: str, answer: str) -> ItemResult:
    if record.same_content(query, answer):
        return InsertOutcome(record.conversation_id, str(message_id), False, False)
    return IdempotencyConflict(
        "client_message_id was already used in this conversation for another query or answer.",
        detail={"conversation_id": record.conversation_id, "message_id": str(message_id)},
    )
