"""The database's own ceiling for the rows the service writes: straight through asyncmy, no
HTTP and no service code."""

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import asyncmy
import uuid_utils

CONVERSATION_SQL = (
    "INSERT INTO conversations (id, app_id, name, status, inputs, from_end_user_id, from_source,"
    " dialogue_count, created_at, updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
)
MESSAGE_SQL = (
    "INSERT INTO messages (id, conversation_id, app_id, model_provider, model_id, inputs, query,"
    " message, message_tokens, answer, answer_tokens, provider_response_latency, total_price,"
    " currency, status, message_metadata, client_message_id, created_at, updated_at) VALUES"
    " (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
)
FILE_SQL = (
    "INSERT INTO message_files (id, message_id, type, transfer_method, url, belongs_to,"
    " upload_file_id, created_by_role, created_by, created_at) VALUES"
    " (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
)


def rows(body: dict[str, Any]) -> tuple[tuple[Any, ...], tuple[Any, ...], list[tuple[Any, ...]]]:
    now = _created_at(body)
    conv_id, msg_id = _v7(), _v7()
    inputs = json.dumps(body["inputs"])
    conversation = (
        conv_id, body["app_id"], "Conversation", "normal", inputs, body["user_id"], "api", 1,
        now, now,
    )  # fmt: skip
    message = (
        msg_id, conv_id, body["app_id"], body["model_provider"], body["model_id"], inputs,
        body["query"], json.dumps({"content": body["query"]}), 0, body["answer"], 0,
        body["metadata"]["latency"], 0, "USD", "normal", json.dumps(body["metadata"]), None,
        now, now,
    )  # fmt: skip
    files = [
        (_v7(), msg_id, f.get("type", "document"), f.get("transfer_method", "local_file"),
         f["url"], f.get("belongs_to", "user"), None,
         "end_user" if f.get("belongs_to", "user") == "user" else "assistant",
         body["user_id"], now)
        for f in body.get("files", [])
    ]  # fmt: skip
    return conversation, message, files


def _created_at(body: dict[str, Any]) -> datetime:
    """The body's ``created_at`` (ISO 8601 in UTC), else now; naive UTC, to the second."""
    given = body.get("created_at")
    moment = datetime.fromisoformat(given) if given else datetime.now(UTC)
    return moment.astimezone(UTC).replace(microsecond=0, tzinfo=None)


def _v7() -> str:
    """UUIDv7 from the same source as the service, so the keys are alike."""
    return str(uuid_utils.uuid7())


async def _connect(dsn: dict[str, Any]) -> Any:
    connection = await asyncmy.connect(**dsn, autocommit=False, charset="utf8mb4")
    async with connection.cursor() as cursor:
        await cursor.execute("SET time_zone = '+00:00'")
        await cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    return connection


async def per_transaction(
    dsn: dict[str, Any], bodies: list[dict[str, Any]], connections: int, seconds: float
) -> float:
    """One transaction per logical insert (conversation + message + files) at ``connections``
    concurrent connections; returns inserts per second."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        nonlocal done
        connection = await _connect(dsn)
        n = offset
        async with connection.cursor() as cursor:
            while time.perf_counter() < deadline:
                conversation, message, files = rows(bodies[n % len(bodies)])
                await cursor.execute(CONVERSATION_SQL, conversation)
                await cursor.execute(MESSAGE_SQL, message)
                if files:
                    await cursor.executemany(FILE_SQL, files)
                await connection.commit()
                done += 1
                n += connections
        connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(connections)))
    return done / (time.perf_counter() - started)


async def multi_row(
    dsn: dict[str, Any], bodies: list[dict[str, Any]], batch: int, batches: int, in_flight: int = 2
) -> float:
    """Multi-row INSERTs of ``batch`` logical inserts per transaction, ``in_flight`` batches at
    a time (as the batch benchmark and the importer run); inserts per second."""
    queue = list(range(batches))

    async def worker() -> None:
        connection = await _connect(dsn)
        async with connection.cursor() as cursor:
            while queue:
                b = queue.pop()
                planned = [rows(bodies[(b * batch + i) % len(bodies)]) for i in range(batch)]
                await cursor.executemany(CONVERSATION_SQL, [p[0] for p in planned])
                await cursor.executemany(MESSAGE_SQL, [p[1] for p in planned])
                files = [f for p in planned for f in p[2]]
                if files:
                    await cursor.executemany(FILE_SQL, files)
                await connection.commit()
        connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return batch * batches / (time.perf_counter() - started)
