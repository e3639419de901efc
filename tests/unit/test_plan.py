"""plan → settle without a database: who is new, a replay or a conflict, and the results."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from chat_ingest.db.engine import WIDE_TIMESTAMPS
from chat_ingest.errors import IdempotencyConflict, OwnershipConflict
from chat_ingest.ids import new_id
from chat_ingest.schemas import InsertRequest
from chat_ingest.service.records import InsertPolicy, plan_record
from chat_ingest.stores.base import (
    CountDelta,
    InsertOutcome,
    PlannedRecord,
    Snapshot,
    StoredMessage,
)
from chat_ingest.stores.plan import (
    conversations_to_lock,
    fresh_inserts,
    keys_to_recheck,
    message_count_deltas,
    message_ids_to_read,
    plan_writes,
    settle,
)

POLICY = InsertPolicy("custom", "custom-model", "USD", False, Decimal(0), WIDE_TIMESTAMPS)
T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
OWNER = ("app-1", "user-1")


def record(**fields: Any) -> PlannedRecord:
    body = {"app_id": "app-1", "user_id": "user-1", "query": "q", "answer": "a"} | fields
    return plan_record(InsertRequest.model_validate(body), POLICY)


def test_ids_are_decided_when_planned_in_list_order() -> None:
    first, second = record(), record()
    assert first.message_id < second.message_id  # UUIDv7: equal created_at keeps list order
    assert not first.conversation_id_given and not first.message_id_given
    given = new_id()
    assert record(message_id=given.upper()).message_id == given


def test_only_given_conversations_are_locked_and_given_ids_read() -> None:
    given = record(conversation_id="c-2", message_id=new_id())
    records = [record(conversation_id="c-9"), record(), given, record(conversation_id="c-2")]
    assert conversations_to_lock(records) == ["c-2", "c-9"]
    assert message_ids_to_read(records) == [given.message_id]


def test_a_new_conversation_is_built_from_its_oldest_message() -> None:
    later = record(conversation_id="c-1", created_at=(T0 + timedelta(hours=1)).isoformat())
    older = record(
        conversation_id="c-1", created_at=T0.isoformat(), conversation_name="n", inputs={"k": 1}
    )
    plan = plan_writes([later, older], Snapshot())
    [new] = plan.new_conversations
    assert new.first is older
    assert (new.dialogue_count, new.updated_at) == (2, T0 + timedelta(hours=1))
    results = settle(plan, fresh_inserts(plan, {}), {})
    assert [r.conversation_created for r in results if isinstance(r, InsertOutcome)] == [
        True,
        False,
    ]


def test_another_owner_conflicts_alone() -> None:
    theirs, mine = record(conversation_id="c-1"), record(conversation_id="c-2")
    plan = plan_writes([theirs, mine], Snapshot(owners={"c-1": ("app-1", "someone-else")}))
    assert isinstance(plan.decided[0], OwnershipConflict)
    assert list(plan.accepted) == [1]
    assert plan.created_conversation_ids == {"c-2"}


def test_a_repeated_key_in_one_batch_replays_or_conflicts() -> None:
    first = record(conversation_id="c-1", client_message_id="k")
    same = record(conversation_id="c-1", client_message_id="k")
    other = record(conversation_id="c-1", client_message_id="k", answer="different")
    plan = plan_writes([first, same, other], Snapshot())
    assert list(plan.accepted) == [0] and dict(plan.echoes) == {1: 0, 2: 0}
    created, replay, conflict = settle(plan, fresh_inserts(plan, {}), {})
    assert isinstance(created, InsertOutcome) and created.created
    assert replay == InsertOutcome("c-1", first.message_id, False, False)
    assert isinstance(conflict, IdempotencyConflict)


def test_a_stored_key_in_an_existing_conversation_is_a_replay() -> None:
    replayed = record(conversation_id="c-1", client_message_id="k")
    new = record(conversation_id="c-1", client_message_id="k2")
    plan = plan_writes([replayed, new], Snapshot(owners={"c-1": OWNER}))
    assert keys_to_recheck(plan) == [("c-1", "k"), ("c-1", "k2")]
    stored = {("c-1", "k"): StoredMessage("m-old", "c-1", OWNER, "q", "a")}
    fresh = fresh_inserts(plan, stored)
    assert fresh == [1]
    assert message_count_deltas(plan, fresh) == {"c-1": CountDelta(1, new.created_at)}
    results = settle(plan, fresh, stored)
    assert results[0] == InsertOutcome("c-1", "m-old", False, False)
    assert results[1] == InsertOutcome("c-1", new.message_id, True, False)


def test_a_stored_message_id_replays_only_with_the_same_conversation_and_content() -> None:
    message_id = new_id()
    stored = StoredMessage(message_id, "c-1", OWNER, "q", "a")
    same = record(conversation_id="c-1", message_id=message_id)
    without_conversation = record(message_id=message_id)
    elsewhere = record(conversation_id="c-2", message_id=message_id)
    changed = record(conversation_id="c-1", message_id=message_id, query="other")
    other_user = record(conversation_id="c-1", message_id=message_id, user_id="user-2")
    plan = plan_writes(
        [same, without_conversation, elsewhere, changed, other_user],
        Snapshot(owners={"c-1": OWNER}, messages={message_id: stored}),
    )
    assert not plan.accepted and not plan.new_conversations
    replay = InsertOutcome("c-1", message_id, False, False)
    assert plan.decided[0] == replay and plan.decided[1] == replay
    for index in (2, 3, 4):
        conflict = plan.decided[index]
        assert isinstance(conflict, IdempotencyConflict)
        assert "message_id" in conflict.message


def test_a_repeated_message_id_in_one_batch() -> None:
    message_id = new_id()
    first = record(conversation_id="c-1", message_id=message_id)
    again = record(conversation_id="c-1", message_id=message_id)
    moved = record(conversation_id="c-3", message_id=message_id)
    plan = plan_writes([first, again, moved], Snapshot())
    assert list(plan.accepted) == [0]
    assert plan.created_conversation_ids == {"c-1"}  # the conflicting record creates nothing
    created, replay, conflict = settle(plan, fresh_inserts(plan, {}), {})
    assert created == InsertOutcome("c-1", message_id, True, True)
    assert replay == InsertOutcome("c-1", message_id, False, False)
    assert isinstance(conflict, IdempotencyConflict)


def test_counts_go_to_existing_conversations_only() -> None:
    late = T0 + timedelta(minutes=5)
    records = [
        record(conversation_id="old", created_at=late.isoformat()),
        record(conversation_id="old", created_at=T0.isoformat()),
        record(conversation_id="new"),
    ]
    plan = plan_writes(records, Snapshot(owners={"old": OWNER}))
    fresh = fresh_inserts(plan, {})
    assert fresh == [0, 1, 2]
    assert message_count_deltas(plan, fresh) == {"old": CountDelta(2, late)}
