"""The group committer's queueing rules, with a plain function as the write (the database
side is in tests/integration/test_group_commit.py)."""

import asyncio
from collections.abc import Sequence

import pytest

from chat_ingest.errors import DatabaseUnavailable, ServiceBusy
from chat_ingest.service.group_commit import GroupCommitter

pytestmark = pytest.mark.asyncio


class Writer:
    """Writes each item as its own double after ``delay``; raises for items in ``refused``."""

    def __init__(self, delay: float = 0.0, refused: frozenset[int] = frozenset()) -> None:
        self.delay = delay
        self.refused = refused
        self.groups: list[list[int]] = []
        self.written: list[int] = []

    async def __call__(self, items: Sequence[int]) -> list[int]:
        self.groups.append(list(items))
        await asyncio.sleep(self.delay)
        if self.refused & set(items):
            raise ValueError("refused")
        self.written += items
        return [2 * item for item in items]


async def test_a_lone_item_is_written_at_once() -> None:
    writer = Writer()
    committer = GroupCommitter(writer, max_group=10, max_queue=10, time_budget=10)
    started = asyncio.get_running_loop().time()
    assert await committer.submit(1) == 2
    assert asyncio.get_running_loop().time() - started < 0.05
    assert writer.groups == [[1]]
    await committer.close()


async def test_items_arriving_while_a_group_is_written_form_the_next_group() -> None:
    writer = Writer(delay=0.05)
    committer = GroupCommitter(writer, max_group=100, max_queue=100, time_budget=10)
    first = asyncio.create_task(committer.submit(0))
    await asyncio.sleep(0.01)  # the first group (of one) is now in flight
    rest = await asyncio.gather(*(committer.submit(i) for i in range(1, 8)))
    assert await first == 0
    assert rest == [2 * i for i in range(1, 8)]
    assert writer.groups == [[0], list(range(1, 8))]
    await committer.close()


async def test_groups_are_bounded_and_keep_arrival_order() -> None:
    writer = Writer(delay=0.01)
    committer = GroupCommitter(writer, max_group=3, max_queue=100, time_budget=10)
    assert await asyncio.gather(*(committer.submit(i) for i in range(8))) == [
        2 * i for i in range(8)
    ]
    assert writer.groups == [[0, 1, 2], [3, 4, 5], [6, 7]]
    await committer.close()


async def test_a_refused_item_fails_alone_and_the_others_are_written() -> None:
    writer = Writer(refused=frozenset({5}))
    committer = GroupCommitter(writer, max_group=100, max_queue=100, time_budget=10)
    results = await asyncio.gather(*(committer.submit(i) for i in range(8)), return_exceptions=True)
    assert [r for r in results if isinstance(r, Exception)] == [results[5]]
    assert isinstance(results[5], ValueError)
    assert sorted(writer.written) == [0, 1, 2, 3, 4, 6, 7]  # each written exactly once
    assert [2 * i for i in range(8) if i != 5] == [r for r in results if isinstance(r, int)]
    await committer.close()


async def test_database_unavailable_is_every_items_answer_without_splitting() -> None:
    calls: list[list[int]] = []

    async def unavailable(items: Sequence[int]) -> list[int]:
        calls.append(list(items))
        raise DatabaseUnavailable("down")

    committer = GroupCommitter(unavailable, max_group=100, max_queue=100, time_budget=10)
    results = await asyncio.gather(*(committer.submit(i) for i in range(4)), return_exceptions=True)
    assert all(isinstance(r, DatabaseUnavailable) for r in results)
    assert calls == [[0, 1, 2, 3]]
    await committer.close()


async def test_a_full_queue_refuses_at_once() -> None:
    writer = Writer(delay=0.05)
    committer = GroupCommitter(writer, max_group=2, max_queue=3, time_budget=10)
    in_flight = asyncio.create_task(committer.submit(0))
    await asyncio.sleep(0.01)
    queued = [asyncio.create_task(committer.submit(i)) for i in (1, 2, 3)]
    await asyncio.sleep(0)
    with pytest.raises(ServiceBusy):
        await committer.submit(4)
    assert await in_flight == 0
    assert await asyncio.gather(*queued) == [2, 4, 6]
    await committer.close()


async def test_close_writes_everything_accepted_then_refuses() -> None:
    writer = Writer(delay=0.02)
    committer = GroupCommitter(writer, max_group=2, max_queue=100, time_budget=10)
    accepted = [asyncio.create_task(committer.submit(i)) for i in range(5)]
    await asyncio.sleep(0)
    await committer.close()
    assert all(task.done() for task in accepted)
    assert [task.result() for task in accepted] == [0, 2, 4, 6, 8]
    with pytest.raises(ServiceBusy):
        await committer.submit(9)


async def test_a_write_that_answers_wrongly_fails_its_group_and_the_committer_goes_on() -> None:
    calls = 0

    async def short_by_one(items: Sequence[int]) -> list[int]:
        nonlocal calls
        calls += 1
        return [2 * item for item in items][: -1 if calls == 1 else None]

    committer = GroupCommitter(short_by_one, max_group=100, max_queue=100, time_budget=10)
    results = await asyncio.gather(*(committer.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert await committer.submit(5) == 10
    await committer.close()


async def test_a_cancelled_committer_leaves_no_submitter_waiting() -> None:
    writer = Writer(delay=10)
    committer = GroupCommitter(writer, max_group=1, max_queue=100, time_budget=10)
    submitted = [asyncio.create_task(committer.submit(i)) for i in range(3)]
    await asyncio.sleep(0.01)
    assert committer._task is not None
    committer._task.cancel()
    done, _ = await asyncio.wait(submitted, timeout=1)
    assert done == set(submitted)
    assert all(task.cancelled() for task in submitted)


async def test_no_record_waits_past_its_time_budget() -> None:
    """A slow first group is cut off at its record's deadline; records queued behind it that
    are out of time by then are answered without being written."""
    writer = Writer(delay=10)
    committer = GroupCommitter(writer, max_group=1, max_queue=100, time_budget=0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    results = await asyncio.gather(*(committer.submit(i) for i in range(3)), return_exceptions=True)
    assert loop.time() - started < 0.4
    assert all(isinstance(r, DatabaseUnavailable) for r in results)
    assert writer.groups == [[0]]  # the others were never sent to the database
    assert writer.written == []
    await committer.close()
