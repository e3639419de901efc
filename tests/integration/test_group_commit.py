"""Group commit on each real backend: records that share a transaction keep the single-insert
contract as if each had been alone.

Faults are injected in the database itself: a trigger refuses one record's message, or
raises a deadlock the first time it sees a record (its counter lives outside the
transaction), and a connection is killed by the server while its group waits for a lock.
"""

import asyncio
import gc
import itertools
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
import pytest_asyncio
from sqlalchemy import event, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chat_ingest.db.models import conversations
from chat_ingest.db.unit_of_work import Database
from chat_ingest.errors import IdempotencyConflict, OwnershipConflict, ServiceBusy
from chat_ingest.runtime import insert_policy
from chat_ingest.schemas import parse_insert
from chat_ingest.service.group_commit import GroupCommitter
from chat_ingest.service.insert import InsertCommitter, InsertOutcome, ItemResult, group_writer
from chat_ingest.service.records import plan_record
from chat_ingest.stores.base import PlannedRecord
from chat_ingest.stores.seed import SeedStore
from tests.conftest import DatabaseFactory, ServiceClient, _migrated_engine, make_settings, unique
from tests.integration.rows import conversation_row, count_rows, message_rows

pytestmark = pytest.mark.asyncio

REFUSED = "REFUSED BY TRIGGER"
DEADLOCK_ONCE = "DEADLOCK ONCE"

MYSQL_FAULTS = [
    "CREATE TABLE fault_counter (n INT NOT NULL) ENGINE=MyISAM",  # not rolled back
    "INSERT INTO fault_counter VALUES (0)",
    f"""CREATE TRIGGER inject_faults BEFORE INSERT ON messages FOR EACH ROW BEGIN
          IF NEW.query = '{REFUSED}' THEN
            SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by a test trigger';
          END IF;
          IF NEW.query = '{DEADLOCK_ONCE}' THEN
            UPDATE fault_counter SET n = n + 1;
            IF (SELECT n FROM fault_counter) = 1 THEN
              SIGNAL SQLSTATE '40001' SET MYSQL_ERRNO = 1213, MESSAGE_TEXT = 'injected deadlock';
            END IF;
          END IF;
        END""",
]
POSTGRES_FAULTS = [
    "CREATE SEQUENCE fault_counter",  # nextval is never rolled back
    f"""CREATE FUNCTION inject_faults() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
          IF NEW.query = '{REFUSED}' THEN
            RAISE EXCEPTION 'refused by a test trigger' USING ERRCODE = '45000';
          END IF;
          IF NEW.query = '{DEADLOCK_ONCE}' AND nextval('fault_counter') = 1 THEN
            RAISE EXCEPTION 'injected deadlock' USING ERRCODE = '40P01';
          END IF;
          RETURN NEW;
        END $$""",
    "CREATE TRIGGER inject_faults BEFORE INSERT ON messages"
    " FOR EACH ROW EXECUTE FUNCTION inject_faults()",
]
SQLITE_FAULTS = [  # fault_once() counts in the test process (see fault_engine)
    f"""CREATE TRIGGER inject_faults BEFORE INSERT ON messages WHEN NEW.query = '{REFUSED}'
        BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END""",
    f"""CREATE TRIGGER inject_lock_error BEFORE INSERT ON messages
        WHEN NEW.query = '{DEADLOCK_ONCE}' AND fault_once() = 1
        BEGIN SELECT RAISE(ABORT, 'database is locked'); END""",
]
FAULTS = {"mysql": MYSQL_FAULTS, "postgresql": POSTGRES_FAULTS, "sqlite": SQLITE_FAULTS}


@pytest_asyncio.fixture(scope="module")
async def fault_engine(
    database_factory: DatabaseFactory, backend: str
) -> AsyncIterator[AsyncEngine]:
    """A database of its own with the fault-injecting triggers installed."""
    engine = await _migrated_engine(database_factory)
    if backend == "sqlite":
        calls = itertools.count(1)

        @event.listens_for(engine.sync_engine, "connect")
        def _fault_once(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.create_function("fault_once", 0, lambda: next(calls))

        await engine.dispose()  # connections opened from now on have the function
    async with engine.begin() as connection:
        for statement in FAULTS[backend]:
            await connection.exec_driver_sql(statement)
    yield engine
    await engine.dispose()


class Instance:
    """One service instance's group committer, writing through the real insert path, and the
    sizes of the groups it wrote."""

    def __init__(self, engine: AsyncEngine, **limits: int) -> None:
        settings = make_settings(engine.url.render_as_string(hide_password=False))
        self.policy = insert_policy(settings)
        write = group_writer(Database(engine), SeedStore())
        self.groups: list[int] = []

        async def counted(records: Sequence[PlannedRecord]) -> Sequence[ItemResult]:
            self.groups.append(len(records))
            return await write(records)

        self.committer: InsertCommitter = GroupCommitter(
            counted,
            max_group=limits.get("max_group", 100),
            max_queue=limits.get("max_queue", 100),
            time_budget=settings.db_timeout,
        )

    def submit(self, body: dict[str, Any]) -> Awaitable[ItemResult]:
        return self.committer.submit(plan_record(parse_insert(orjson.dumps(body)), self.policy))

    async def submit_all(self, *bodies: dict[str, Any]) -> list[Any]:
        """Submit every body at once (they are all queued before the first group starts)."""
        return await asyncio.gather(*(self.submit(b) for b in bodies), return_exceptions=True)


def record(app_id: str, query: str = "问题", **fields: Any) -> dict[str, Any]:
    return {"app_id": app_id, "user_id": "user-1", "query": query, "answer": "回答"} | fields


def created(result: Any) -> InsertOutcome:
    assert isinstance(result, InsertOutcome), result
    assert result.created
    return result


async def test_a_record_the_database_refuses_fails_alone(fault_engine: AsyncEngine) -> None:
    app_id = unique("refuse")
    instance = Instance(fault_engine)
    bodies = [record(app_id, f"good {n}") for n in range(10)]
    bodies.insert(4, record(app_id, REFUSED))
    results = await instance.submit_all(*bodies)
    assert instance.groups[0] == 11  # they did share the first transaction
    assert isinstance(results[4], DBAPIError)  # what the record alone would have raised
    good = [created(r) for i, r in enumerate(results) if i != 4]
    assert await count_rows(fault_engine, app_id) == (10, 10)
    for outcome in good:
        assert outcome.conversation_created
        row = await conversation_row(fault_engine, outcome.conversation_id)
        assert row is not None and row["dialogue_count"] == 1
    await instance.committer.close()


async def test_replays_and_conflicts_inside_one_group(fault_engine: AsyncEngine) -> None:
    app_id, conversation_id = unique("mix"), unique("conv")
    instance = Instance(fault_engine)
    [first] = await instance.submit_all(
        record(app_id, "q0", conversation_id=conversation_id, client_message_id="k0")
    )
    first = created(first)
    results = await instance.submit_all(
        record(app_id, "q1", conversation_id=conversation_id, client_message_id="k1"),
        record(app_id, "q1", conversation_id=conversation_id, client_message_id="k1"),
        record(app_id, "other", conversation_id=conversation_id, client_message_id="k1"),
        record(app_id, "q0", conversation_id=conversation_id, client_message_id="k0"),
        record(app_id, "other", conversation_id=conversation_id, client_message_id="k0"),
        record(app_id, "q2", conversation_id=conversation_id, user_id="someone-else"),
        record(app_id, "q3", conversation_id=conversation_id),
    )
    assert instance.groups == [1, 7]
    new_k1, replay_k1, conflict_k1, replay_k0, conflict_k0, foreign, plain = results
    new_k1 = created(new_k1)
    assert replay_k1 == InsertOutcome(conversation_id, new_k1.message_id, False, False)
    assert isinstance(conflict_k1, IdempotencyConflict)
    assert replay_k0 == InsertOutcome(conversation_id, first.message_id, False, False)
    assert isinstance(conflict_k0, IdempotencyConflict)
    assert isinstance(foreign, OwnershipConflict)
    assert not created(plain).conversation_created
    row = await conversation_row(fault_engine, conversation_id)
    assert row is not None and row["dialogue_count"] == 3  # k0, k1 and the plain one
    stored = await message_rows(fault_engine, conversation_id)
    assert [m["query"] for m in stored] == ["q0", "q1", "q3"]
    await instance.committer.close()


async def test_two_records_creating_one_conversation_in_one_group(
    fault_engine: AsyncEngine,
) -> None:
    app_id, conversation_id = unique("same"), unique("conv")
    instance = Instance(fault_engine)
    results = await instance.submit_all(
        record(app_id, "a", conversation_id=conversation_id),
        record(app_id, "b", conversation_id=conversation_id),
    )
    assert instance.groups == [2]
    outcomes = [created(r) for r in results]
    assert sorted(o.conversation_created for o in outcomes) == [False, True]
    row = await conversation_row(fault_engine, conversation_id)
    assert row is not None and row["dialogue_count"] == 2
    await instance.committer.close()
    gc.collect()  # the killed socket is reclaimed here, under this test's warning filters


async def test_two_records_creating_one_conversation_in_two_groups(
    fault_engine: AsyncEngine,
) -> None:
    """Two instances (two committers) race to create the same conversation: with two
    different messages, and with the same client_message_id."""
    app_id = unique("race")
    one, two = Instance(fault_engine), Instance(fault_engine)
    for _ in range(3):  # several rounds: the race goes either way
        conversation_id = unique("conv")
        [a], [b] = await asyncio.gather(
            one.submit_all(record(app_id, "a", conversation_id=conversation_id)),
            two.submit_all(record(app_id, "b", conversation_id=conversation_id)),
        )
        assert created(a).message_id != created(b).message_id
        assert a.conversation_created != b.conversation_created
        row = await conversation_row(fault_engine, conversation_id)
        assert row is not None and row["dialogue_count"] == 2

        conversation_id = unique("conv")
        same = record(app_id, "q", conversation_id=conversation_id, client_message_id="k")
        [c], [d] = await asyncio.gather(one.submit_all(same), two.submit_all(same))
        assert isinstance(c, InsertOutcome) and isinstance(d, InsertOutcome)
        assert c.message_id == d.message_id and c.created != d.created
        assert c.conversation_created != d.conversation_created
        row = await conversation_row(fault_engine, conversation_id)
        assert row is not None and row["dialogue_count"] == 1
    assert len(one.groups) == len(two.groups) == 6  # every record went in a group of its own
    await one.committer.close()
    await two.committer.close()


@asynccontextmanager
async def holding(engine: AsyncEngine, conversation_id: str) -> AsyncIterator[None]:
    """Keep a write lock on the conversation (on SQLite: the database's write lock) until the
    block ends, so that a group touching it waits meanwhile."""
    async with engine.connect() as holder:
        await holder.execute(
            update(conversations)
            .where(conversations.c.id == conversation_id)
            .values(name=conversations.c.name)
        )
        yield
        await holder.rollback()


async def existing_conversation(instance: Instance, app_id: str) -> str:
    conversation_id = unique("conv")
    [result] = await instance.submit_all(record(app_id, "q0", conversation_id=conversation_id))
    created(result)
    return conversation_id


async def kill_the_lock_waiter(connection: AsyncConnection, backend: str) -> None:
    """Have the server drop the connection of the transaction that waits for a lock in this
    database (the group's)."""
    if backend == "postgresql":
        find = (
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'"
        )
        kill = "SELECT pg_terminate_backend({})"
    else:
        find = (
            "SELECT id FROM information_schema.processlist WHERE db = DATABASE()"
            " AND id <> CONNECTION_ID() AND info LIKE '%FOR UPDATE%'"
        )
        kill = "KILL {}"
    for _ in range(100):
        waiter = await connection.scalar(text(find))
        if waiter is not None:
            await connection.execute(text(kill.format(int(waiter))))
            return
        await connection.rollback()  # PostgreSQL's statistics are a snapshot per transaction
        await asyncio.sleep(0.05)
    raise AssertionError("no transaction waited for the lock")


async def test_a_deadlock_mid_group_is_retried_without_loss_or_doubles(
    fault_engine: AsyncEngine, backend: str
) -> None:
    app_id = unique("deadlock")
    instance = Instance(fault_engine)
    bodies = [record(app_id, f"good {n}") for n in range(4)]
    results = await instance.submit_all(*bodies[:2], record(app_id, DEADLOCK_ONCE), *bodies[2:])
    assert instance.groups == [5]
    assert all(created(r).conversation_created for r in results)
    assert await count_rows(fault_engine, app_id) == (5, 5)
    counter = {
        "postgresql": "SELECT last_value FROM fault_counter",
        "mysql": "SELECT n FROM fault_counter",
        "sqlite": "SELECT fault_once() - 1",
    }
    async with fault_engine.connect() as connection:
        assert await connection.scalar(text(counter[backend])) == 2  # failed once, then passed
    await instance.committer.close()


@pytest.mark.backends("mysql", "postgresql")  # SQLite is a file: no connection to lose
@pytest.mark.filterwarnings("ignore::ResourceWarning")  # the killed connection's socket
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_connection_lost_mid_group_is_retried_without_loss_or_doubles(
    fault_engine: AsyncEngine, backend: str
) -> None:
    app_id = unique("lost")
    instance = Instance(fault_engine)
    conversation_id = await existing_conversation(instance, app_id)
    async with holding(fault_engine, conversation_id), fault_engine.connect() as admin:
        group = asyncio.create_task(
            instance.submit_all(
                record(app_id, "new 1"),
                record(app_id, "turn", conversation_id=conversation_id, client_message_id="k"),
                record(app_id, "new 2"),
            )
        )
        await kill_the_lock_waiter(admin, backend)
    results = await group
    assert all(isinstance(r, InsertOutcome) and r.created for r in results), results
    assert await count_rows(fault_engine, app_id) == (3, 4)
    row = await conversation_row(fault_engine, conversation_id)
    assert row is not None and row["dialogue_count"] == 2
    await instance.committer.close()
    gc.collect()  # the killed socket is reclaimed here, under this test's warning filters


async def test_shutdown_writes_the_records_already_queued(fault_engine: AsyncEngine) -> None:
    app_id = unique("drain")
    instance = Instance(fault_engine, max_group=2)
    conversation_id = await existing_conversation(instance, app_id)
    async with holding(fault_engine, conversation_id):
        blocked = asyncio.create_task(
            instance.submit_all(record(app_id, "turn", conversation_id=conversation_id))
        )
        await asyncio.sleep(0.5)  # its group is in flight, waiting for the lock
        queued = asyncio.create_task(
            instance.submit_all(*(record(app_id, f"q{n}") for n in range(5)))
        )
        await asyncio.sleep(0.2)
        closing = asyncio.create_task(instance.committer.close())
        await asyncio.sleep(0.2)
        assert not closing.done()
        with pytest.raises(ServiceBusy):
            await instance.submit(record(app_id, "late"))
    await closing
    done, _ = await asyncio.wait([blocked, queued], timeout=0.5)
    assert done == {blocked, queued}
    assert all(created(r) for r in [*blocked.result(), *queued.result()])
    assert instance.groups == [1, 1, 2, 2, 1]
    assert await count_rows(fault_engine, app_id) == (6, 7)


async def test_each_request_keeps_its_own_status_and_overload_is_a_503(
    database_url: str, engine: AsyncEngine
) -> None:
    settings = make_settings(database_url, group_commit_max_records=2, group_commit_max_queue=2)
    app_id = unique("http")
    conversation_id = unique("conv")
    async with ServiceClient(settings) as http:
        post = lambda b: http.post("/api/chat/insert", json=b)  # noqa: E731
        assert (await post(record(app_id, conversation_id=conversation_id))).status_code == 200
        async with holding(engine, conversation_id):
            blocked = asyncio.create_task(post(record(app_id, conversation_id=conversation_id)))
            await asyncio.sleep(0.5)  # its group is in flight, waiting for the lock
            queued = [
                asyncio.create_task(post(record(app_id, "new"))),
                asyncio.create_task(
                    post(record(app_id, conversation_id=conversation_id, user_id="u2"))
                ),
            ]
            await asyncio.sleep(0.3)
            refused = await post(record(app_id, "one too many"))
            assert refused.status_code == 503
            assert refused.headers["retry-after"]
            assert refused.json()["success"] is False
        statuses = [r.status_code for r in await asyncio.gather(blocked, *queued)]
    assert statuses == [200, 200, 409]
    assert await count_rows(engine, app_id) == (2, 3)
