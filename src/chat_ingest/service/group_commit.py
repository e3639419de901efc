"""Group commit: concurrent single inserts share one transaction.

Every submitted record waits in one queue. One committer task takes what is queued (up to
``max_group`` records) and writes it as one group through ``write_group`` (one unit of work,
the set-based path batches use); records that arrive meanwhile form the next group. There is
no timer: a lone record is written at once, and groups grow only as fast as the database is
slow.

Each submitter gets its own record's result, as if it had been written alone:

- ``write_group`` returns one result per record (a 409 or a replay is a result, not an
  exception), so one record's conflict never touches the others;
- when the whole group fails with something other than ``DatabaseUnavailable`` (the database
  refused a statement: a value it rejects, a trigger, a constraint), the group is split in
  halves and each half written again on its own, down to the record that fails alone, so the
  culprit gets the error and every other record is stored;
- ``DatabaseUnavailable`` (transient failures already retried, time budget spent) is every
  record's answer: none of them could have been written alone either.

The queue is bounded: past ``max_queue`` waiting records a submission is refused at once
(``ServiceBusy``, a 503 with ``Retry-After``) instead of waiting without limit. Each record has
``time_budget`` seconds (``DB_TIMEOUT``) from submission, queueing and writing included: a
group's write is cut off at its oldest record's deadline, and a record still queued at its
deadline is answered ``DatabaseUnavailable`` without being written. ``close`` refuses new
records and returns once everything accepted has been written.
"""

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from chat_ingest.errors import DatabaseUnavailable, ServiceBusy

Item = TypeVar("Item")
Result = TypeVar("Result")
log = logging.getLogger(__name__)

_OUT_OF_TIME = "The database did not answer in time; retry later."
WriteGroup = Callable[[Sequence[Item]], Awaitable[Sequence[Result]]]


class _Waiting(Generic[Item, Result]):
    __slots__ = ("deadline", "future", "item")

    def __init__(self, item: Item, deadline: float) -> None:
        self.item = item
        self.deadline = deadline
        self.future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()

    def settle(self, result: Result | BaseException) -> None:
        if self.future.done():  # the submitter went away (client disconnected): nothing to tell
            return
        if isinstance(result, BaseException):
            self.future.set_exception(result)
        else:
            self.future.set_result(result)


class GroupCommitter(Generic[Item, Result]):
    """Writes submitted items in shared transactions; see the module's docstring."""

    def __init__(
        self,
        write_group: WriteGroup[Item, Result],
        *,
        max_group: int,
        max_queue: int,
        time_budget: float,
    ) -> None:
        if max_group < 1 or max_queue < 1 or time_budget <= 0:
            raise ValueError("max_group, max_queue and time_budget must be positive")
        self._write_group = write_group
        self.max_group = max_group
        self.max_queue = max_queue
        self.time_budget = time_budget
        self._queue: deque[_Waiting[Item, Result]] = deque()
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        """Write ``item`` (in the next group) and return its own result once committed."""
        if self._closing:
            raise ServiceBusy("The service is shutting down; retry on another instance.")
        if len(self._queue) >= self.max_queue:
            raise ServiceBusy("Too many records are waiting to be written; retry later.")
        if self._task is None:
            self._task = asyncio.create_task(self._commit_forever(), name="group-commit")
        deadline = asyncio.get_running_loop().time() + self.time_budget
        waiting: _Waiting[Item, Result] = _Waiting(item, deadline)
        self._queue.append(waiting)
        self._wake.set()
        return await waiting.future

    async def close(self) -> None:
        """Refuse new records; return when every accepted record has been written."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _commit_forever(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            group = self._next_group()
            try:
                await self._commit(group)
            except Exception as exc:  # a bug, not a database answer: fail this group, go on
                log.exception("group commit failed unexpectedly")
                for waiting in group:
                    waiting.settle(exc)
            except BaseException:  # cancelled (the loop is closing): nobody must wait forever
                for waiting in [*group, *self._queue]:
                    waiting.future.cancel()
                raise

    def _next_group(self) -> list[_Waiting[Item, Result]]:
        """Up to ``max_group`` queued records, oldest first; those that waited past their
        deadline are answered 503 instead (they were never written)."""
        now = asyncio.get_running_loop().time()
        group: list[_Waiting[Item, Result]] = []
        while self._queue and len(group) < self.max_group:
            waiting = self._queue.popleft()
            if waiting.deadline > now:
                group.append(waiting)
            else:
                waiting.settle(DatabaseUnavailable(_OUT_OF_TIME))
        return group

    async def _commit(self, group: list[_Waiting[Item, Result]]) -> None:
        if not group:
            return
        remaining = min(waiting.deadline for waiting in group) - asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(remaining):  # no record waits past its own budget
                results = await self._write_group([waiting.item for waiting in group])
        except TimeoutError:
            for waiting in group:
                waiting.settle(DatabaseUnavailable(_OUT_OF_TIME))
        except DatabaseUnavailable as exc:
            for waiting in group:
                waiting.settle(exc)
        except Exception as exc:
            if len(group) == 1:
                group[0].settle(exc)
                return
            log.warning(
                "a group of %d records failed (%s); writing it again in halves",
                len(group),
                type(exc).__name__,
            )
            middle = len(group) // 2
            await self._commit(group[:middle])
            await self._commit(group[middle:])
        else:
            if len(results) != len(group):
                raise RuntimeError(f"{len(results)} results for a group of {len(group)} records")
            for waiting, result in zip(group, results, strict=True):
                waiting.settle(result)
