"""Planning and settling a batch of records: pure functions, no database.

A unit of work reads a ``Snapshot`` (``lock_snapshot``), asks ``plan_writes`` who is new, a
replay or a conflict, lets the store write the plan, and turns what the store reports into
one result per record with ``settle``. Records of one conversation are judged in list order.
"""

from collections.abc import Mapping, Sequence

from chat_ingest.errors import IdempotencyConflict, OwnershipConflict
from chat_ingest.stores.base import (
    CountDelta,
    InsertOutcome,
    ItemResult,
    Key,
    NewConversation,
    PlannedRecord,
    Snapshot,
    StoredMessage,
    WritePlan,
)


def conversations_to_lock(records: Sequence[PlannedRecord]) -> list[str]:
    """The given conversation ids, in the order their locks are taken (sorted, so that two
    batches never wait on each other in a cycle). Generated ids are new: nothing to lock."""
    return sorted({record.conversation_id for record in records if record.conversation_id_given})


def message_ids_to_read(records: Sequence[PlannedRecord]) -> list[str]:
    """The message ids callers gave, which may already be stored."""
    return sorted({record.message_id for record in records if record.message_id_given})


def plan_writes(records: Sequence[PlannedRecord], snapshot: Snapshot) -> WritePlan:
    """Decide, in list order, which records conflict, replay a stored message, repeat an
    earlier record of the batch, or are written (and which conversations they create)."""
    owners = dict(snapshot.owners)
    decided: dict[int, ItemResult] = {}
    accepted: list[int] = []
    echoes: dict[int, int] = {}
    first_with: dict[Key | str, int] = {}
    for index, record in enumerate(records):
        stored = snapshot.messages.get(record.message_id) if record.message_id_given else None
        if stored is not None:
            decided[index] = _against_stored_id(record, stored)
        elif owners.setdefault(record.conversation_id, record.owner) != record.owner:
            decided[index] = OwnershipConflict(
                "conversation_id already exists for another app_id or user_id.",
                detail={"conversation_id": record.conversation_id},
            )
        elif (earlier := _earlier(record, first_with)) is not None:
            echoes[index] = earlier
        else:
            if record.key is not None:
                first_with[record.key] = index
            if record.message_id_given:
                first_with[record.message_id] = index
            accepted.append(index)
    new = _new_conversations(records, accepted, snapshot)
    return WritePlan(records, decided, accepted, echoes, new)


def _earlier(record: PlannedRecord, first_with: Mapping[Key | str, int]) -> int | None:
    if record.key is not None and record.key in first_with:
        return first_with[record.key]
    if record.message_id_given:
        return first_with.get(record.message_id)
    return None


def _new_conversations(
    records: Sequence[PlannedRecord], accepted: Sequence[int], snapshot: Snapshot
) -> list[NewConversation]:
    """Each new conversation is built from its oldest message (the first listed among equals)."""
    starting: dict[str, list[PlannedRecord]] = {}
    for index in accepted:
        record = records[index]
        if record.conversation_id not in snapshot.owners:
            starting.setdefault(record.conversation_id, []).append(record)
    return [
        NewConversation(
            first=min(group, key=lambda record: record.created_at),
            dialogue_count=len(group),
            updated_at=max(record.created_at for record in group),
        )
        for group in starting.values()
    ]


def keys_to_recheck(plan: WritePlan) -> list[Key]:
    """The keys of accepted records in conversations that existed: only those can hit a stored
    message (a conversation this batch created has none)."""
    created = plan.created_conversation_ids
    return [
        key
        for index in plan.accepted
        if (key := plan.records[index].key) is not None and key[0] not in created
    ]


def fresh_inserts(plan: WritePlan, stored: Mapping[Key, StoredMessage]) -> list[int]:
    """The accepted records whose message was created (not one already stored by key)."""
    fresh = []
    for index in plan.accepted:
        record = plan.records[index]
        row = stored.get(record.key) if record.key is not None else None
        if row is None or row.id == record.message_id:
            fresh.append(index)
    return fresh


def message_count_deltas(plan: WritePlan, fresh: Sequence[int]) -> dict[str, CountDelta]:
    """What the new messages add to conversations that existed (new ones already count)."""
    created = plan.created_conversation_ids
    deltas: dict[str, CountDelta] = {}
    for index in fresh:
        record = plan.records[index]
        if record.conversation_id in created:
            continue
        delta = deltas.get(record.conversation_id, CountDelta(0, record.created_at))
        deltas[record.conversation_id] = CountDelta(
            delta.count + 1, max(delta.latest, record.created_at)
        )
    return deltas


def settle(
    plan: WritePlan, fresh: Sequence[int], stored: Mapping[Key, StoredMessage]
) -> list[ItemResult]:
    """One result per record, at its index; ``conversation_created`` is true for the first
    record written into each created conversation."""
    results: dict[int, ItemResult] = dict(plan.decided)
    created = plan.created_conversation_ids
    announced: set[str] = set()
    written = set(fresh)
    for index in plan.accepted:
        record = plan.records[index]
        if index in written:
            first = record.conversation_id in created and record.conversation_id not in announced
            announced.add(record.conversation_id)
            results[index] = InsertOutcome(record.conversation_id, record.message_id, True, first)
        else:
            assert record.key is not None  # only a key can have hit a stored message
            results[index] = _against_stored_key(record, stored[record.key])
    for index, earlier in sorted(plan.echoes.items()):
        results[index] = _echo(plan.records[index], plan.records[earlier], results[earlier], stored)
    return [results[index] for index in range(len(plan.records))]


def _same_conversation(record: PlannedRecord, conversation_id: str, owner: tuple[str, str]) -> bool:
    """A record without a conversation_id matches any conversation of its own user."""
    if record.conversation_id_given:
        return record.conversation_id == conversation_id and record.owner == owner
    return record.owner == owner


def _against_stored_id(record: PlannedRecord, stored: StoredMessage) -> ItemResult:
    if _same_conversation(record, stored.conversation_id, stored.owner) and record.same_content(
        stored.query, stored.answer
    ):
        return InsertOutcome(stored.conversation_id, stored.id, False, False)
    return IdempotencyConflict(
        "message_id is already used by a message of another conversation, query or answer.",
        detail={"message_id": stored.id, "conversation_id": stored.conversation_id},
    )


def _against_stored_key(record: PlannedRecord, stored: StoredMessage) -> ItemResult:
    if record.same_content(stored.query, stored.answer):
        return InsertOutcome(record.conversation_id, stored.id, False, False)
    return IdempotencyConflict(
        "client_message_id was already used in this conversation for another query or answer.",
        detail={"conversation_id": record.conversation_id, "message_id": stored.id},
    )


def _echo(
    record: PlannedRecord,
    earlier: PlannedRecord,
    earlier_result: ItemResult,
    stored: Mapping[Key, StoredMessage],
) -> ItemResult:
    """A record repeating the key or message id of an earlier record of the batch: judged
    against what that key or id now stands for."""
    if record.key is not None and record.key == earlier.key:
        if isinstance(earlier_result, InsertOutcome) and earlier_result.created:
            return _against_stored_key(record, _as_stored(earlier, earlier_result))
        if record.key in stored:
            return _against_stored_key(record, stored[record.key])
    if isinstance(earlier_result, InsertOutcome):
        return _against_stored_id(record, _as_stored(earlier, earlier_result))
    return earlier_result


def _as_stored(record: PlannedRecord, result: InsertOutcome) -> StoredMessage:
    return StoredMessage(
        result.message_id,
        result.conversation_id,
        record.owner,
        record.request.query,
        record.request.answer,
    )
