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
(``ServiceBusy``, a 503 with ``Retry-After``) instead of waiting without limit. ``close``
refuses new records and returns once everything accepted has been written.
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

WriteGroup = Callable[[Sequence[Item]], Awaitable[Sequence[Result]]]


class _Waiting(Generic[Item, Result]):
    __slots__ = ("future", "item")

    def __init__(self, item: Item) -> None:
        self.item = item
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
        self, write_group: WriteGroup[Item, Result], *, max_group: int, max_queue: int
    ) -> None:
        if max_group < 1 or max_queue < 1:
            raise ValueError("max_group and max_queue must be at least 1")
        self._write_group = write_group
        self.max_group = max_group
        self.max_queue = max_queue
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
        waiting: _Waiting[Item, Result] = _Waiting(item)
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
            group = [self._queue.popleft() for _ in range(min(self.max_group, len(self._queue)))]
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

    async def _commit(self, group: list[_Waiting[Item, Result]]) -> None:
        try:
            results = await self._write_group([waiting.item for waiting in group])
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
