"""export → import into an empty database reproduces the same rows (issue 9), on every backend
and from one backend to another, with a history shaped like an operator's: lines of ~100
conversations interleaved like a log, every 4th conversation backfilled (``created_at`` with
``Z``, ``+08:00`` or no offset, out of line order, many equal), the others stamped at import,
~8% of lines without ``client_message_id``, ~10% with files. Chunks are small, so every
conversation spans several chunks, two of them in flight (and, on PostgreSQL, each chunk
goes through COPY)."""

import itertools
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from chat_ingest.db import migrate
from chat_ingest.db.engine import create_engine
from chat_ingest.db.models import conversations, message_files, messages
from chat_ingest.db.unit_of_work import Database
from chat_ingest.importer import Line, RejectFile, Tally, export_lines, import_lines
from chat_ingest.runtime import insert_policy, open_store
from chat_ingest.sinks import DatabaseSink
from chat_ingest.stores.seed import SeedStore
from tests.conftest import DatabaseFactory, _migrated_engine, make_settings, unique

pytestmark = pytest.mark.asyncio
CONVERSATIONS, TURNS, CHUNK = 100, 12, 150
BACKFILLED_AT = datetime(2023, 6, 1, tzinfo=UTC)
OFFSETS = ("Z", "+08:00", "")


def _stamp(moment: datetime, style: str) -> str:
    if style == "+08:00":
        return moment.astimezone(timezone(timedelta(hours=8))).isoformat()
    naive = moment.replace(tzinfo=None).isoformat()
    return naive + style  # "Z" or naive


def _turn(rng: random.Random, app_id: str, c: int, t: int, line: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "app_id": app_id,
        "user_id": f"user-{c % 7}",
        "conversation_id": f"{app_id}-conv-{c}",
        "client_message_id": f"turn-{t}",
        "query": f"第{t}个问题 of conversation {c} 🙂",
        "answer": f"answer {t}: " + "回答" * rng.randrange(1, 20),
        "inputs": {"turn": t, "topic": f"topic-{c}"},
        "metadata": {"latency": rng.randrange(0, 5000) / 1000, "line": line},
    }
    if c % 3 == 0:
        body["conversation_name"] = f"对话 {c}"
    if c % 4 == 0:  # backfilled: a few distinct seconds, out of line order
        moment = BACKFILLED_AT + timedelta(hours=c, seconds=rng.randrange(4))
        body["created_at"] = _stamp(moment, OFFSETS[line % 3])
    if rng.random() < 0.08:
        del body["client_message_id"]
    if rng.random() < 0.10:
        body["files"] = [
            {"url": f"https://files.example/{c}/{t}/{n}.png", "type": kind, "belongs_to": who}
            for n, (kind, who) in enumerate([("image", "user"), ("document", "assistant")])
        ][: rng.randrange(1, 3)]
    if rng.random() < 0.2:
        body |= {"message_tokens": t, "answer_tokens": 2 * t, "total_price": "0.000125"}
    return body


def history(app_id: str, seed: int = 9) -> list[Line]:
    """The lines of ``CONVERSATIONS`` conversations by ``TURNS`` turns, interleaved at random
    (each conversation's turns stay in order)."""
    rng = random.Random(seed)
    pending = [[(c, t) for t in range(TURNS)] for c in range(CONVERSATIONS)]
    order: list[tuple[int, int]] = []
    while pending:
        queue = rng.choice(pending)
        order.append(queue.pop(0))
        if not queue:
            pending.remove(queue)
    return [
        Line(number, orjson.dumps(_turn(rng, app_id, c, t, number)))
        for number, (c, t) in enumerate(order, start=1)
    ]


async def import_into(engine: AsyncEngine, lines: list[Line], tmp_path: Path) -> Tally:
    settings = make_settings(engine.url.render_as_string(hide_password=False))
    sink = DatabaseSink(
        Database(engine), await open_store(settings, engine), insert_policy(settings)
    )
    rejects = RejectFile(tmp_path / f"rejects-{unique()}.jsonl")
    try:
        return await import_lines(lines, sink, rejects, chunk_size=CHUNK)
    finally:
        rejects.close()


async def export_from(engine: AsyncEngine, app_id: str) -> list[Line]:
    written: list[bytes] = []
    bodies = SeedStore().export_messages(engine, app_id, None, None)
    await export_lines(bodies, written.append)
    return [Line(number, data.rstrip(b"\n")) for number, data in enumerate(written, start=1)]


async def stored(engine: AsyncEngine, app_id: str) -> dict[str, Any]:
    """Every row of the app, in the order each database reads it back (messages: per
    conversation in ``(created_at, id)`` order); only file ids, generated, are left out."""
    m, f = messages.c, message_files.c
    async with engine.connect() as connection:
        convs = await connection.execute(
            select(conversations).where(conversations.c.app_id == app_id).order_by("id")
        )
        msgs = await connection.execute(
            select(messages)
            .where(m.app_id == app_id)
            .order_by(m.conversation_id, m.created_at, m.id)
        )
        files = await connection.execute(
            select(message_files)
            .join(messages, f.message_id == m.id)
            .where(m.app_id == app_id)
            .order_by(f.message_id, f.id)
        )
        return {
            "conversations": [dict(row._mapping) for row in convs],
            "messages": [dict(row._mapping) for row in msgs],
            "files": [{k: v for k, v in row._mapping.items() if k != "id"} for row in files],
        }


def check_source_is_telling(rows: dict[str, Any], lines: list[Line]) -> None:
    """The source holds what makes a round trip hard: conversations whose own created_at or
    inputs are not their oldest message's, messages with equal created_at, files, messages
    without client_message_id; and every conversation lists its turns in file order."""
    by_conversation: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in rows["messages"]:
        by_conversation[message["conversation_id"]].append(message)
    assert len(rows["messages"]) == len(lines) == CONVERSATIONS * TURNS
    differing = tied = 0
    for conversation in rows["conversations"]:
        turns = by_conversation[conversation["id"]]
        assert conversation["dialogue_count"] == len(turns) == TURNS
        differing += _differs(conversation, turns[0])
        tied += len({turn["created_at"] for turn in turns}) < len(turns)
        if int(conversation["id"].rsplit("-", 1)[1]) % 4:  # stamped at import
            assert [turn["inputs"]["turn"] for turn in turns] == list(range(TURNS))
    assert differing >= 5
    assert tied >= CONVERSATIONS // 2
    assert sum(m["client_message_id"] is None for m in rows["messages"]) == 0  # keyed by import
    assert 50 <= len(rows["files"]) <= 250


def _differs(conversation: dict[str, Any], oldest: dict[str, Any]) -> bool:
    return (conversation["created_at"], conversation["inputs"]) != (
        oldest["created_at"],
        oldest["inputs"],
    )


async def test_export_then_import_gives_the_same_rows(
    database_factory: DatabaseFactory, tmp_path: Path
) -> None:
    app_id = unique("trip")
    lines = history(app_id)
    source, copy = (
        await _migrated_engine(database_factory),
        await _migrated_engine(database_factory),
    )
    try:
        tally = await import_into(source, lines, tmp_path)
        assert (tally.inserted, tally.rejected) == (len(lines), 0)
        before = await stored(source, app_id)
        check_source_is_telling(before, lines)
        exported = await export_from(source, app_id)
        again = await import_into(copy, exported, tmp_path)
        assert (again.inserted, again.duplicates, again.rejected) == (len(lines), 0, 0)
        assert await stored(copy, app_id) == before
        replay = await import_into(copy, exported, tmp_path)
        assert (replay.inserted, replay.duplicates, replay.rejected) == (0, len(lines), 0)
        assert await stored(copy, app_id) == before
    finally:
        await source.dispose()
        await copy.dispose()


async def test_a_line_reusing_a_stored_message_id_is_rejected_naming_it(
    database_factory: DatabaseFactory, tmp_path: Path
) -> None:
    engine = await _migrated_engine(database_factory)
    app_id = unique("clash")
    first = {"app_id": app_id, "user_id": "u", "conversation_id": unique("c"), "query": "q"}
    try:
        await import_into(engine, [Line(1, orjson.dumps(first | {"answer": "a"}))], tmp_path)
        [line] = await export_from(engine, app_id)
        clash = orjson.loads(line.data) | {"answer": "another answer", "client_message_id": None}
        rejects = tmp_path / "clash.jsonl"
        settings = make_settings(engine.url.render_as_string(hide_password=False))
        sink = DatabaseSink(
            Database(engine), await open_store(settings, engine), insert_policy(settings)
        )
        reject_file = RejectFile(rejects)
        tally = await import_lines([Line(7, orjson.dumps(clash))], sink, reject_file, 10)
        reject_file.close()
    finally:
        await engine.dispose()
    assert (tally.inserted, tally.duplicates, tally.rejected) == (0, 0, 1)
    [entry] = [orjson.loads(x) for x in rejects.read_bytes().splitlines()]
    assert entry["line"] == 7 and "message_id" in entry["error"]


async def test_round_trip_from_sqlite_through_mariadb_to_postgresql(tmp_path: Path) -> None:
    factories = [DatabaseFactory(name, tmp_path) for name in ("sqlite", "mysql", "postgresql")]
    engines = [create_engine(await factory.new_url()) for factory in factories]
    app_id = unique("move")
    lines = history(app_id, seed=4)
    try:
        for engine in engines:
            await migrate.upgrade(engine)
        await import_into(engines[0], lines, tmp_path)
        original = await stored(engines[0], app_id)
        check_source_is_telling(original, lines)
        for source, target in itertools.pairwise(engines):
            tally = await import_into(target, await export_from(source, app_id), tmp_path)
            assert (tally.inserted, tally.rejected) == (len(lines), 0)
            assert await stored(target, app_id) == original, target.dialect.name
    finally:
        for engine in engines:
            await engine.dispose()
        for factory in factories:
            await factory.drop_all()
