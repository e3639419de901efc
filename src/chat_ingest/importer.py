"""JSON Lines in and out, with line numbers. No HTTP and no SQL: where the records go is a
``Sink`` (see ``sinks.py``).

Re-running an import is safe: every line is keyed. A line without ``client_message_id`` gets
one derived from its line number and content, and a line without ``conversation_id`` gets a
derived conversation id too (idempotency is scoped to a conversation), so a second run of the
same file finds every record already stored.
"""

import asyncio
import hashlib
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import orjson
from pydantic_core import from_json


@dataclass(frozen=True)
class Line:
    number: int  # 1-based, counting every line of the input
    data: bytes

    @property
    def text(self) -> str:
        """The line as read, for people (undecodable bytes shown as U+FFFD)."""
        return self.data.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Verdict:
    """What became of one line: stored (``created`` or a duplicate) or rejected (``error``)."""

    created: bool = False
    error: str | None = None


class Sink(Protocol):
    async def store(self, items: list[dict[str, Any]]) -> list[Verdict]:
        """Store ``items``, returning one verdict per item in order."""


@dataclass
class Tally:
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0

    def __str__(self) -> str:
        return f"inserted {self.inserted}, duplicates {self.duplicates}, rejected {self.rejected}"


class RejectFile:
    """Rejected lines as JSON Lines ``{"line", "error", "raw"}``; the file is started afresh
    on every run so it only ever describes the last one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] = path.open("wb")

    def write(self, line: Line, error: str) -> None:
        entry = {"line": line.number, "error": error, "raw": line.text}
        self._file.write(orjson.dumps(entry) + b"\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_lines(stream: Iterable[bytes]) -> Iterator[Line]:
    """Non-blank lines with their numbers, streamed (memory stays flat in the input's size)."""
    for number, raw in enumerate(stream, start=1):
        data = raw.rstrip(b"\r\n")
        if data.strip():
            yield Line(number, data)


def chunks(lines: Iterable[Line], size: int) -> Iterator[list[Line]]:
    chunk: list[Line] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class LineError(ValueError):
    """The line is not a JSON object."""


def keyed_item(line: Line) -> dict[str, Any]:
    """The line's insert body, with ``conversation_id``/``client_message_id`` derived from its
    number and content where it has none."""
    try:
        item = from_json(line.data, allow_inf_nan=False)
    except ValueError as exc:
        raise LineError(f"not valid JSON: {exc}") from None
    if not isinstance(item, dict):
        raise LineError("a line must be a JSON object (one insert body)")
    digest = hashlib.sha256(b"%d\n%b" % (line.number, line.data)).hexdigest()
    if item.get("conversation_id") is None:
        item["conversation_id"] = str(uuid.UUID(digest[:32]))
    if item.get("client_message_id") is None:
        item["client_message_id"] = f"line-{digest[32:]}"
    return item


CHUNKS_IN_FLIGHT = 2  # one chunk is validated while the database writes the previous one


async def import_lines(
    lines: Iterable[Line],
    sink: Sink,
    rejects: RejectFile,
    chunk_size: int,
    on_progress: Callable[[int], None] = lambda done: None,
) -> Tally:
    """Send ``lines`` to ``sink`` in chunks; count what happened and record the rejects.

    Up to ``CHUNKS_IN_FLIGHT`` chunks are stored concurrently (each is its own transaction;
    their message ids are decided in file order before it starts, so a chunk that is retried
    keeps a conversation's messages in file order) and their verdicts are taken in file
    order."""
    tally = Tally()
    in_flight: deque[tuple[list[Line], asyncio.Task[dict[int, Verdict]]]] = deque()
    try:
        for chunk in chunks(lines, chunk_size):
            in_flight.append((chunk, asyncio.create_task(_store_chunk(chunk, sink))))
            if len(in_flight) == CHUNKS_IN_FLIGHT:
                await _settle_oldest(in_flight, tally, rejects, on_progress)
        while in_flight:
            await _settle_oldest(in_flight, tally, rejects, on_progress)
    finally:
        for _, task in in_flight:
            task.cancel()
    return tally


async def _store_chunk(chunk: list[Line], sink: Sink) -> dict[int, Verdict]:
    verdicts: dict[int, Verdict] = {}
    sendable: list[tuple[Line, dict[str, Any]]] = []
    for line in chunk:
        try:
            sendable.append((line, keyed_item(line)))
        except LineError as exc:
            verdicts[line.number] = Verdict(error=str(exc))
    if sendable:
        stored = await sink.store([item for _, item in sendable])
        for (line, _), verdict in zip(sendable, stored, strict=True):
            verdicts[line.number] = verdict
    return verdicts


async def _settle_oldest(
    in_flight: deque[tuple[list[Line], asyncio.Task[dict[int, Verdict]]]],
    tally: Tally,
    rejects: RejectFile,
    on_progress: Callable[[int], None],
) -> None:
    chunk, task = in_flight.popleft()
    verdicts = await task
    for line in chunk:  # in line order, so the reject file reads like the input
        _count(tally, rejects, line, verdicts[line.number])
    on_progress(len(chunk))


def _count(tally: Tally, rejects: RejectFile, line: Line, verdict: Verdict) -> None:
    if verdict.error is not None:
        rejects.write(line, verdict.error)
        tally.rejected += 1
    elif verdict.created:
        tally.inserted += 1
    else:
        tally.duplicates += 1


async def export_lines(
    bodies: AsyncIterator[dict[str, Any]], write: Callable[[bytes], object]
) -> int:
    """Write each insert body as one JSON line; return how many were written."""
    count = 0
    async for body in bodies:
        write(orjson.dumps(body) + b"\n")
        count += 1
    return count
